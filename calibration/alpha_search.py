"""Per-layer migration strength: grid search of alpha per smoothing group (as Intel Neural Compressor does).

For every group, alpha is chosen to minimize the relative error of the group's quantized outputs,
sum_i ||Q(X/s) Q(W_i s)^T - X W_i^T||^2 / ||X W_i^T||^2, on activation rows captured from calibration data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import torch
from torch import nn

from calibration import quantize as Q
from calibration.act_scales import run_blocks
from calibration.registry import ResolvedGroup, resolve_groups, split_reader
from calibration.smooth import check_alpha, group_act_scale, reader_weights, smoothing_factors

DEFAULT_GRID = tuple(round(0.05 * i, 2) for i in range(21))


def load_alphas(path: str | os.PathLike[str]) -> dict[str, float]:
    """Per-layer alphas from JSON: {"<norm or linear name>": alpha, ..., "default": alpha (optional)}."""
    try:
        obj = json.loads(open(path).read())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read per-layer alphas from {path}: {exc}") from exc
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{path} must hold a JSON object mapping module names to alphas")
    return {str(k): check_alpha(v, f"alpha for {k} in {path}") for k, v in obj.items()}


def _fake_act(x: torch.Tensor, granularity: str, dynamic: bool, symmetric: bool, static: torch.Tensor | None
              ) -> torch.Tensor:
    if not symmetric:
        q, s, z = Q.quantize_per_token_asymmetric(x)
        return (q.float() - z.float()) * s
    if granularity == "per_token":
        q, s = Q.quantize_per_token(x)
    else:
        q, s = Q.quantize_per_tensor(x, None if dynamic else static)
    return q.float() * s


@torch.no_grad()
def capture_group_inputs(model: nn.Module, groups: list[ResolvedGroup], blocks: torch.Tensor, *,
                         batch_size: int = 8, max_rows: int = 512, seed: int = 0, progress: bool = True
                         ) -> dict[str, torch.Tensor]:
    """Up to `max_rows` input rows (float32, CPU) of each group's first linear."""
    rows: dict[str, list[torch.Tensor]] = {g.source: [] for g in groups}
    gen = torch.Generator().manual_seed(seed)
    per_batch = max(1, max_rows * batch_size // max(1, len(blocks)))

    def hook(source: str):
        def fn(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float().cpu()
            pick = torch.randperm(len(x), generator=gen)[:per_batch]
            rows[source].append(x[pick])
        return fn

    handles = [model.get_submodule(split_reader(g.linears[0])[0]).register_forward_pre_hook(hook(g.source))
               for g in groups]
    try:
        run_blocks(model, blocks, batch_size, "alpha-search data", progress)
    finally:
        for h in handles:
            h.remove()
    return {k: torch.cat(v)[:max_rows] for k, v in rows.items()}


def group_error(x: torch.Tensor, weights: list[torch.Tensor], act_scale: torch.Tensor, alpha: float, *,
                weight_granularity: str = "per_channel", activation_granularity: str = "per_token",
                activation_dynamic: bool = True, activation_symmetric: bool = True,
                reference: torch.Tensor | None = None) -> float:
    """Relative output error of the group's linears (concatenated), smoothed with `alpha` and quantized W8A8.

    `reference` (x @ W^T for the concatenated weights) may be passed in to save recomputing it per alpha.
    """
    s = smoothing_factors(act_scale, weights, alpha)
    static = None if activation_dynamic else Q.static_input_scale(act_scale, s)
    xq = _fake_act(x / s, activation_granularity, activation_dynamic, activation_symmetric, static)
    weights = [w.detach().float().cpu().reshape(-1, w.shape[-1]) for w in weights]
    w = torch.cat(weights)
    ref = x @ w.T if reference is None else reference
    # per-linear weight scales: quantize each linear's rows separately (per_tensor is per linear, not per group)
    wq = torch.cat([Q.fake_quantize_weight(wi.detach().float().cpu() * s, weight_granularity) for wi in weights])
    diff = xq @ wq.T - ref
    return float((diff * diff).sum() / (ref * ref).sum().clamp(min=1e-30))


@torch.no_grad()
def search_alphas(model: nn.Module, act_scales: Mapping[str, torch.Tensor], blocks: torch.Tensor, *,
                  grid: tuple[float, ...] = DEFAULT_GRID, smooth_all: bool = False, batch_size: int = 8,
                  max_rows: int = 512, progress: bool = True, **quant: object) -> dict[str, float]:
    """Best alpha per smoothing group (keyed by the group's source norm name) on calibration `blocks`."""
    for a in grid:
        check_alpha(a, "grid alpha")
    groups = resolve_groups(model, smooth_all=smooth_all)
    inputs = capture_group_inputs(model, groups, blocks, batch_size=batch_size, max_rows=max_rows,
                                  progress=progress)
    best: dict[str, float] = {}
    for g in groups:
        weights = [w.detach().float().cpu().reshape(-1, w.shape[-1]) for w in reader_weights(model, g)]
        act = group_act_scale(g, act_scales, weights[0].shape[-1])
        x = inputs[g.source]
        ref = x @ torch.cat([w.detach().float().cpu() for w in weights]).T
        errors = {a: group_error(x, weights, act, a, reference=ref, **quant) for a in grid}
        best[g.source] = min(errors, key=errors.get)
    return best
