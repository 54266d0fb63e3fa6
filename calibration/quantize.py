"""INT8 quantization numerics of docs/checkpoint_format.md (the writer's and the reference's side).

Symmetric values use [-127, 127] (-128 unused), round half to even (`torch.round`), and a zero row or
tensor gets scale 1 so it quantizes to 0. All arithmetic is float32.
"""

from __future__ import annotations

import torch

QMAX = 127
WEIGHT_GRANULARITIES = ("per_channel", "per_tensor")
ACTIVATION_GRANULARITIES = ("per_token", "per_tensor")


def _safe(scale: torch.Tensor) -> torch.Tensor:
    return torch.where(scale == 0, torch.ones_like(scale), scale)


def weight_scale(w: torch.Tensor, granularity: str = "per_channel") -> torch.Tensor:
    """float32 `[N]` (per_channel) or `[1]` (per_tensor) scale of a `[N, K]` weight."""
    if granularity not in WEIGHT_GRANULARITIES:
        raise ValueError(f"weight granularity must be one of {WEIGHT_GRANULARITIES}, got {granularity!r}")
    w = w.detach().float()
    amax = w.abs().amax(dim=1) if granularity == "per_channel" else w.abs().amax().reshape(1)
    return _safe(amax / QMAX)


def quantize_weight(w: torch.Tensor, granularity: str = "per_channel") -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 `[N, K]`, float32 scale) with `w ~= q * scale[:, None]`."""
    if not w.dtype.is_floating_point:
        raise ValueError(f"cannot quantize a {w.dtype} weight: expected a floating-point tensor")
    if not torch.isfinite(w).all():
        raise ValueError("weight contains NaN or inf")
    scale = weight_scale(w, granularity)
    q = torch.round(w.detach().float() / scale[:, None]).clamp_(-QMAX, QMAX).to(torch.int8)
    return q, scale


def fake_quantize_weight(w: torch.Tensor, granularity: str = "per_channel") -> torch.Tensor:
    """float32 `dequantize(quantize(w))` without input checks (the inner loop of the alpha search)."""
    scale = weight_scale(w, granularity)[:, None]
    return torch.round(w.float() / scale).clamp_(-QMAX, QMAX).mul_(scale)


def dequantize_weight(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float().reshape(-1, 1)


def quantize_per_token(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric dynamic per-row: (int8 values, float32 scales `[..., 1]`)."""
    x = x.float()
    s = _safe(x.abs().amax(dim=-1, keepdim=True) / QMAX)
    return torch.round(x / s).clamp_(-QMAX, QMAX).to(torch.int8), s


def quantize_per_tensor(x: torch.Tensor, scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-tensor: dynamic (`scale=None`, max|x|/127) or static (the calibrated `input_scale`)."""
    x = x.float()
    s = _safe(x.abs().amax().reshape(1) / QMAX) if scale is None else scale.float().reshape(1).to(x.device)
    return torch.round(x / s).clamp_(-QMAX, QMAX).to(torch.int8), s


def quantize_per_token_asymmetric(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric dynamic per-row: (int8 values, float32 scales, int32 zero points), both `[..., 1]`.

    The range always includes 0 (`min = min(min x, 0)`, `max = max(max x, 0)`), so that the zero point
    `z = round(-128 - min / s)` with `s = (max - min) / 255` lies in [-128, 127] by construction and 0 is
    exactly representable; `q = clamp(round(x / s) + z, -128, 127)`, dequantized as `(q - z) * s`.
    Without the 0, a one-sided row such as [0.5, 3.5] would need z far outside int8 and would saturate.
    """
    x = x.float()
    xmin = x.amin(dim=-1, keepdim=True).clamp(max=0.0)
    xmax = x.amax(dim=-1, keepdim=True).clamp(min=0.0)
    s = _safe((xmax - xmin) / 255.0)
    z = torch.round(-128.0 - xmin / s).clamp_(-128, 127)
    q = (torch.round(x / s) + z).clamp_(-128, 127)
    return q.to(torch.int8), s, z.to(torch.int32)


def static_input_scale(act_scale: torch.Tensor, smooth: torch.Tensor | None = None) -> torch.Tensor:
    """`[1]` static scale `max|X_smoothed| / 127` from per-channel abs-max statistics (and smoothing factors)."""
    amax = act_scale.float() if smooth is None else act_scale.float() / smooth.float()
    return _safe(amax.amax().reshape(1) / QMAX)
