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
