"""What Inductor makes of the traced activation quantization (vllm_sq/kernels/quant_torch.py) under torch.compile.

With vLLM's INT8 kernels as the backend, the plugin traces quantization in torch ops after vLLM's natively traced
RMSNorm, so Inductor can write the int8 activation from the norm's kernel (with the project's kernels, the fusion
pass of vllm_sq/producer_fusion.py uses the fused CUDA ops instead). Checked here on the CPU backend (the GPU backend shares the scheduler that
decides the fusion): one fused kernel for residual-add + RMSNorm + dynamic per-token quantization, and its
numerics relative to docs/checkpoint_format.md.
"""

from __future__ import annotations

import pytest
import torch
from torch._inductor import config as inductor_config
from torch._inductor.utils import run_and_get_code

pytest.importorskip("vllm", reason="imports vLLM at module level; the GPU machine may run the kernel tests without it")

from vllm_sq.kernels.quant_torch import quantize_activation

EPS = 1e-6


def _add_rms_norm_quant(x, residual, w):
    """residual-add + RMSNorm as vLLM's native ops compute them (rounded to bf16 between steps) + quantization."""
    h = (x.float() + residual.float()).to(torch.bfloat16)
    hf = h.float()
    y = (hf * torch.rsqrt(hf.pow(2).mean(dim=-1, keepdim=True) + EPS)).to(torch.bfloat16) * w
    q, s, _ = quantize_activation(y, dynamic=True, per_token=True, symmetric=True)
    return q, s, h


@pytest.fixture(scope="module")
def inputs():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(33, 512, generator=gen).bfloat16()
    x[:, 7] *= 40  # an outlier channel, as in the models SmoothQuant targets
    residual = torch.randn(33, 512, generator=gen).bfloat16()
    w = (torch.rand(512, generator=gen) + 0.5).bfloat16()
    return x, residual, w


def _compiled(emulate: bool, args):
    torch._dynamo.reset()
    with inductor_config.patch(emulate_precision_casts=emulate):
        fn = torch.compile(_add_rms_norm_quant, backend="inductor", fullgraph=True)
        return run_and_get_code(fn, *args)


def test_norm_and_quantization_fuse_into_one_kernel(inputs):
    _, code = _compiled(False, inputs)
    src = "\n".join(code)
    kernels = {line.split("=")[0].strip() for line in src.splitlines()
               if "async_compile.cpp" in line and "=" in line}
    assert len(kernels) == 1, f"expected one fused kernel, Inductor generated {sorted(kernels)}"
    assert "int8_t*" in src, "the fused kernel does not write the int8 activation"


def test_fused_numerics_exact_with_emulated_casts_within_one_code_without(inputs):
    """Inductor keeps the norm in fp32 across the bf16 casts unless told to emulate them: codes move by <= 1."""
    ref_q, ref_s, ref_h = _add_rms_norm_quant(*inputs)
    (q, s, h), _ = _compiled(True, inputs)
    assert torch.equal(q, ref_q) and torch.equal(s, ref_s) and torch.equal(h, ref_h)
    (q, s, h), _ = _compiled(False, inputs)
    assert torch.equal(h, ref_h)
    assert int((q.int() - ref_q.int()).abs().max()) <= 1
    torch.testing.assert_close(s, ref_s, rtol=1e-2, atol=0)
