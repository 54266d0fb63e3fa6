"""Activation quantization in plain torch ops, with the exact numerics of docs/checkpoint_format.md.

Used by the CPU reference kernel and, on CUDA, while vLLM traces the model for torch.compile: there
vLLM's norms and SiLU-and-mul are traced as native ops, and Inductor fuses them with these ops into one
kernel that writes the int8 activation directly (the norm/act + quant fusion), leaving only the GEMM as
an opaque custom op.
"""

from __future__ import annotations

import torch


def _safe(scale: torch.Tensor) -> torch.Tensor:
    """Scales of all-zero rows (or tensors) are replaced by 1: the row quantizes to 0."""
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def dynamic_per_tensor_scale(x: torch.Tensor) -> torch.Tensor:
    """Symmetric scale of the whole activation, float32 [1]."""
    return _safe(x.abs().amax().float().reshape(1) / 127.0)


def quantize_activation(
    x: torch.Tensor,
    *,
    dynamic: bool,
    per_token: bool,
    symmetric: bool,
    input_scale: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Quantize a 2-D activation [M, K].

    Returns (x_q int8 [M, K], scale float32 [M, 1] (per token) or [1, 1], zero point int32 [M, 1] or None).
    Symmetric: x_q = clamp(round(x / s), -127, 127) with s = max|x| / 127 (dynamic) or `input_scale`.
    Asymmetric (dynamic per token only): the range always includes 0 (lo = min(min x, 0), hi = max(max x, 0)),
    s = (hi - lo) / 255, z = round(-128 - lo / s) (in [-128, 127] by construction),
    x_q = clamp(round(x / s) + z, -128, 127). vLLM's own azp quant ops use the bare min/max instead (an
    int32 zero point outside int8 for one-sided rows), so asymmetric activations always use this function.
    """
    xf = x.float()
    if not symmetric:
        hi = xf.amax(dim=1, keepdim=True).clamp(min=0.0)
        lo = xf.amin(dim=1, keepdim=True).clamp(max=0.0)
        scale = _safe((hi - lo) / 255.0)
        zero = torch.round(-128.0 - lo / scale).clamp(-128, 127)
        q = (torch.round(xf / scale) + zero).clamp(-128, 127).to(torch.int8)
        return q, scale, zero.to(torch.int32)
    if not dynamic:
        if input_scale is None:
            raise ValueError("static activation quantization needs input_scale")
        scale = input_scale.float().reshape(1, 1)
    elif per_token:
        scale = _safe(xf.abs().amax(dim=1, keepdim=True) / 127.0)
    else:
        scale = dynamic_per_tensor_scale(xf).reshape(1, 1)
    return torch.round(xf / scale).clamp(-127, 127).to(torch.int8), scale, None
