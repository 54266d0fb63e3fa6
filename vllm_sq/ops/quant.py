"""Activation quantization to int8, alone or fused into RMSNorm, residual-add + RMSNorm, LayerNorm, SiLU-and-mul.

Numerics as docs/checkpoint_format.md: s = max|x| / 127 per token (dynamic) or the given scale (static),
q = clamp(round_half_even(x / s), -127, 127); asymmetric: the range [min(x, 0), max(x, 0)] over 255 steps with a zero
point z, codes in [-128, 127].
`scale=None` means dynamic per-token; a float32 one-element tensor means static per-tensor.
"""

from __future__ import annotations

import torch

from vllm_sq.ops import _checks
from vllm_sq.ops._loader import require


def per_token_quant(x: torch.Tensor, symmetric: bool = True
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """x [M, K] bf16/fp16 -> (x_q int8 [M, K], scales float32 [M, 1], azp int32 [M] or None if symmetric)."""
    _checks.activation(x, "x")
    require()
    if symmetric:
        q, s = torch.ops.vllm_sq.per_token_quant(x)
        return q, s, None
    return torch.ops.vllm_sq.per_token_quant_azp(x)


def static_quant(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x [M, K] -> int8 [M, K] with a calibrated per-tensor scale (float32, one element)."""
    _checks.activation(x, "x")
    _checks.static_scale(scale)
    require()
    return torch.ops.vllm_sq.static_quant(x, scale)


def rms_norm_quant(x: torch.Tensor, weight: torch.Tensor, eps: float, scale: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 of RMSNorm(x) * weight (rounded to x's dtype first, as the unfused ops store it) and its scales.

    Scales are [M, 1] (dynamic) or [1, 1] (static, a copy of `scale`).
    """
    _checks.rms_norm_args(x, None, weight, scale)
    require()
    return torch.ops.vllm_sq.rms_norm_quant(x, weight, eps, scale)


def fused_add_rms_norm_quant(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float,
                             scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """residual <- x + residual (in place), then rms_norm_quant(residual, weight, eps, scale)."""
    _checks.rms_norm_args(x, residual, weight, scale)
    require()
    return torch.ops.vllm_sq.fused_add_rms_norm_quant(x, residual, weight, eps, scale)


def layer_norm_quant(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
                     scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 of LayerNorm(x) * weight + bias (fp32 statistics, rounded once to x's dtype) and its scales (OPT)."""
    _checks.layer_norm_args(x, weight, bias, scale)
    require()
    return torch.ops.vllm_sq.layer_norm_quant(x, weight, bias, eps, scale)


def silu_and_mul_quant(x: torch.Tensor, scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, 2D] = [gate | up] -> int8 of silu(gate) * up, [M, D], and its scales."""
    _checks.silu_and_mul_args(x, scale)
    require()
    return torch.ops.vllm_sq.silu_and_mul_quant(x, scale)
