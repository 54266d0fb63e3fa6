"""Six SiLU-and-mul + quant calls on [M, 2D] bf16 (ncu profiles the fourth): VLLM_SQ_SILU_EXP=... python3 s.py M D."""
import sys

import torch

from vllm_sq.ops import silu_and_mul_quant

m, d = int(sys.argv[1]), int(sys.argv[2])
xs = [torch.randn(m, 2 * d, device="cuda", dtype=torch.bfloat16) for _ in range(6)]
for x in xs:
    silu_and_mul_quant(x)
torch.cuda.synchronize()
