"""Fold SmoothQuant factors into a model, in place.

For a norm feeding linears L_1..L_n with input activation X, the factor per input channel j is

    s_j = max|X_j|^alpha / max_i max|W_i[:, j]|^(1 - alpha)

The norm's weight (and LayerNorm bias) is divided by s and every L_i's weight column j multiplied by s_j: the
float model computes the same function, but activation outliers have moved into the weights, which
quantize per output channel much better than activations do per token.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from calibration.registry import ResolvedGroup, reader_weight, resolve_groups, split_reader

MIN_SCALE = 1e-5


class SmoothingError(ValueError):
    pass


def check_alpha(alpha: float, where: str = "alpha") -> float:
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0.0 <= float(alpha) <= 1.0 \
            or math.isnan(alpha):
        raise SmoothingError(f"{where} must be a number in [0, 1], got {alpha!r}")
    return float(alpha)


def check_float_weights(model: nn.Module) -> None:
    """SmoothQuant starts from a floating-point model; an already quantized one cannot be smoothed again."""
    bad = [(n, p.dtype) for n, p in model.named_parameters() if not p.dtype.is_floating_point]
    if bad:
        raise SmoothingError(f"model weights must be floating point; {bad[0][0]} is {bad[0][1]} "
                             f"({len(bad)} non-float tensors). Start from the original float checkpoint.")


def group_act_scale(group: ResolvedGroup, act_scales: Mapping[str, torch.Tensor], in_features: int) -> torch.Tensor:
    """The input abs-max shared by a group's linears (they all read the same tensor), validated."""
    keys = [split_reader(n)[0] for n in group.linears]
    found = {n: act_scales[n] for n in keys if n in act_scales}
    if not found:
        raise SmoothingError(f"missing activation scales for {keys[0]} (readers of {group.source}); "
                             "the scales file does not belong to this model or was computed on another version")
    for name, t in found.items():
        if t.shape != (in_features,):
            raise SmoothingError(f"activation scale for {name} has shape {tuple(t.shape)}, expected "
                                 f"({in_features},)")
        if not torch.isfinite(t).all():
            raise SmoothingError(f"activation scale for {name} contains NaN or inf")
    return torch.stack([t.float() for t in found.values()]).amax(dim=0)


def reader_weights(model: nn.Module, group: ResolvedGroup) -> list[torch.Tensor]:
    """The weights that read the group's source; their last dimension is the input channel."""
    weights = [reader_weight(model, n) for n in group.linears]
    for n, w in zip(group.linears, weights):
        if w.dim() < 2 or w.shape[-1] != weights[0].shape[-1]:
            raise SmoothingError(f"{n} has no weight of input width {weights[0].shape[-1]} to smooth")
    return weights


def smoothing_factors(act_scale: torch.Tensor, weights: list[torch.Tensor], alpha: float) -> torch.Tensor:
    """s = act^alpha / max|W|^(1-alpha) per input channel, max over all linears of the group (float32)."""
    alpha = check_alpha(alpha)
    w_max = torch.stack([w.detach().abs().float().reshape(-1, w.shape[-1]).amax(dim=0).cpu()
                         for w in weights]).amax(dim=0)
    s = act_scale.float().clamp(min=MIN_SCALE).pow(alpha) / w_max.clamp(min=MIN_SCALE).pow(1.0 - alpha)
    return s.clamp(min=MIN_SCALE)


@torch.no_grad()
def apply_smoothing(model: nn.Module, group: ResolvedGroup, s: torch.Tensor) -> None:
    """Divide the source's output channels by `s` and multiply the readers' input columns by `s`."""
    source = model.get_submodule(group.source)
    for w in reader_weights(model, group):
        w.copy_((w.float() * s.to(w.device)).to(w.dtype))
    # A norm scales its output by weight (and adds bias); a linear source produces its output rows.
    if isinstance(source, nn.Linear):
        w = source.weight
        w.copy_((w.float() / s.to(w.device)[:, None]).to(w.dtype))
    else:
        w = getattr(source, "weight", None)
        if not isinstance(w, torch.Tensor) or w.shape != s.shape:
            raise SmoothingError(f"{group.source} has no per-channel weight of shape {tuple(s.shape)} to fold into")
        w.copy_((w.float() / s.to(w.device)).to(w.dtype))
    b = getattr(source, "bias", None)
    if isinstance(b, torch.Tensor):
        b.copy_((b.float() / s.to(b.device)).to(b.dtype))


def _alpha_for(alpha: float | Mapping[str, float], group: ResolvedGroup) -> float:
    if not isinstance(alpha, Mapping):
        return check_alpha(alpha)
    for key in (group.source, *group.linears):
        if key in alpha:
            return check_alpha(alpha[key], f"alpha for {key}")
    if "default" in alpha:
        return check_alpha(alpha["default"], "default alpha")
    raise SmoothingError(f"no alpha for {group.source} in the per-layer alphas (give it by the norm's name, one "
                         "of its linears' names, or a 'default' entry)")


def resolve_alphas(model: nn.Module, alpha: float | Mapping[str, float], *, smooth_all: bool = False
                   ) -> dict[str, float]:
    """The alpha each smoothing group gets, keyed by the group's source (norm) name."""
    return {g.source: _alpha_for(alpha, g) for g in resolve_groups(model, smooth_all=smooth_all)}


@torch.no_grad()
def smooth_model(model: nn.Module, act_scales: Mapping[str, torch.Tensor], alpha: float | Mapping[str, float] = 0.5,
                 *, smooth_all: bool = False) -> dict[str, torch.Tensor]:
    """Smooth every registry group of `model` in place; returns {group source name: s}.

    `alpha` is one number or a mapping from norm (or linear) names to alphas. `smooth_all` also smooths the
    layers normally only quantized (o_proj/down_proj/fc2), where the registry allows it; their inputs are
    the outputs of v_proj/up_proj/fc1, so those scales must be in `act_scales` too.
    """
    check_float_weights(model)
    groups = resolve_groups(model, smooth_all=smooth_all)
    resolved_alphas = {g.source: _alpha_for(alpha, g) for g in groups}  # validate all before changing anything
    factors = {}
    for g in groups:
        weights = reader_weights(model, g)
        act = group_act_scale(g, act_scales, weights[0].shape[-1])
        factors[g.source] = smoothing_factors(act, weights, resolved_alphas[g.source])
    for g in groups:
        apply_smoothing(model, g, factors[g.source])
    return factors


def smooth_lm(model: nn.Module, scales: Mapping[str, torch.Tensor], alpha: float = 0.5) -> None:
    """The original mit-han-lab/smoothquant entry point: smooth a Hugging Face model in place."""
    smooth_model(model, scales, alpha)
