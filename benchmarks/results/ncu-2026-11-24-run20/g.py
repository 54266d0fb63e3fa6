"""Four GEMMs of one forced configuration (ncu profiles the third): python3 g.py M N K CONFIG."""
import sys

import torch

from vllm_sq.ops import gemm_configs, int8_scaled_mm

m, n, k, name = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cfg = gemm_configs().index(name)
ws = [torch.randint(-127, 128, (n, k), device="cuda", dtype=torch.int8) for _ in range(4)]
a = torch.randint(-127, 128, (m, k), device="cuda", dtype=torch.int8)
sa = torch.rand(m, 1, device="cuda")
sb = torch.rand(n, 1, device="cuda")
for i in range(4):
    int8_scaled_mm(a, ws[i].t(), sa, sb, None, torch.bfloat16, config=cfg)
torch.cuda.synchronize()
