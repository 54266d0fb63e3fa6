"""Helpers shared by the kernel tests: GPU gating, reference quantization and output poisoning."""

from __future__ import annotations

import os

import pytest
import torch

from vllm_sq.ops import available

GPU_OK, GPU_REASON = available()

# Applied by the GPU test modules: collected everywhere, skipped (with the reason) where the ops cannot run.
gpu_only = [pytest.mark.gpu, pytest.mark.skipif(not GPU_OK, reason=GPU_REASON)]


def poison_allocator(nbytes: int = 1 << 28) -> None:
    """Fills free blocks of the caching allocator with NaN (0xFF bytes) so an unwritten output shows up.

    A no-op without the caching allocator (the memcheck run), where compute-sanitizer checks memory instead.
    """
    if os.environ.get("PYTORCH_NO_CUDA_MEMORY_CACHING") == "1":
        return
    junk = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    junk.fill_(0xFF)
    del junk


def _div(a: torch.Tensor, b: torch.Tensor | float) -> torch.Tensor:
    """IEEE float32 division a / b, as the kernels compute it.

    Computed in float64 and rounded once (exact for float32 operands); torch's CUDA division by a scalar
    multiplies by the reciprocal instead, which can differ in the last bit.
    """
    b = b.double() if isinstance(b, torch.Tensor) else float(b)
    return (a.double() / b).float()


def ref_quant_sym(v: torch.Tensor, scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """docs/checkpoint_format.md symmetric quantization in float32 (per-token if scale is None)."""
    v = v.float()
    if scale is None:
        s = _div(v.abs().amax(dim=-1, keepdim=True), 127)
        s = torch.where(s == 0, torch.ones_like(s), s)
    else:
        s = scale.reshape(1, 1).float()
    return _div(v, s).round().clamp(-127, 127).to(torch.int8), s


def ref_quant_asym(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """docs/checkpoint_format.md asymmetric per-token quantization in float32."""
    v = v.float()
    hi = v.amax(dim=-1, keepdim=True).clamp(min=0)  # the range always includes 0
    lo = v.amin(dim=-1, keepdim=True).clamp(max=0)
    s = _div(hi - lo, 255)
    s = torch.where(s == 0, torch.ones_like(s), s)
    z = (-128 - _div(lo, s)).round().clamp(-128, 127)
    q = (_div(v, s).round() + z).clamp(-128, 127).to(torch.int8)
    return q, s, z.reshape(-1).to(torch.int32)


GEMM_RTOL = {torch.bfloat16: 8e-3, torch.float16: 1e-3}


def gemm_inputs(m: int, n: int, k: int, per_token: bool, per_channel: bool, with_bias: bool, out_dtype, gen):
    """Random int8 a [M, K] and w [N, K], positive scales (per-token/per-channel or one), optional bias."""
    a = torch.randint(-127, 128, (m, k), dtype=torch.int8, device="cuda", generator=gen)
    w = torch.randint(-127, 128, (n, k), dtype=torch.int8, device="cuda", generator=gen)
    sa = torch.rand((m if per_token else 1, 1), device="cuda", generator=gen) * 0.02 + 1e-3
    sb = torch.rand((1, n if per_channel else 1), device="cuda", generator=gen) * 0.02 + 1e-3
    bias = (torch.randn(n, device="cuda", generator=gen) * 10).to(out_dtype) if with_bias else None
    return a, w, sa, sb, bias


def ref_scaled_mm(a, w, sa, sb, bias, azp=None, azp_adj=None) -> torch.Tensor:
    """int8_scaled_mm(_azp) in float64: sa * sb * (a @ w.T - azp * azp_adj) + bias."""
    acc = a.double() @ w.double().t()  # exact: |acc| < 2^53
    if azp is not None:
        acc = acc - azp.double()[:, None] * azp_adj.double()[None, :]
    y = sa.double().reshape(-1, 1) * sb.double().reshape(1, -1) * acc
    if bias is not None:
        y = y + bias.double()[None, :]
    return y


def assert_gemm_close(out: torch.Tensor, ref: torch.Tensor, out_dtype) -> None:
    """Every element within the output dtype's rounding of the reference, and none left unwritten (NaN)."""
    assert out.dtype == out_dtype and out.shape == ref.shape
    assert not torch.isnan(out).any(), "NaN in the output: an element was not written"
    err = (out.double() - ref).abs()
    tol = GEMM_RTOL[out_dtype] * ref.abs() + 1e-6 * ref.abs().max() + 1e-6
    bad = err > tol
    assert not bad.any(), f"{int(bad.sum())} of {out.numel()} elements off; worst {float(err.max()):.4g}"
    rel = float((out.double() - ref).norm() / ref.norm().clamp_min(1e-30))
    assert rel < GEMM_RTOL[out_dtype] / 2
