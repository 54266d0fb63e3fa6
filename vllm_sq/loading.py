"""Checked weight loading: every smoothquant tensor is validated as it is read from the checkpoint.

vLLM's loaders fail on a misshaped tensor with a bare assertion and would happily copy a float
weight into an int8 parameter or accept a NaN scale; these wrappers turn each such case into an
error that names the layer and the tensor, and record which shards arrived so a missing one is
reported at the end of loading instead of leaving uninitialized memory in the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

QKV_SHARDS = {"q": 0, "k": 1, "v": 2}


class CheckpointError(ValueError):
    """A smoothquant checkpoint tensor is missing, misshaped or has invalid values."""


def _shard_ids(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[int | None]:
    shard = args[0] if args else kwargs.get("loaded_shard_id", kwargs.get("shard_id"))
    if shard is None:
        return [None]
    shards = shard if isinstance(shard, tuple) else (shard,)
    return [QKV_SHARDS.get(s, s) if isinstance(s, str) else int(s) for s in shards]


def check_scale_values(layer_name: str, tensor_name: str, scale: torch.Tensor) -> None:
    """Scales must be finite and positive: anything else silently corrupts every output."""
    values = scale.detach().float()
    if not torch.isfinite(values).all():
        raise CheckpointError(f"{layer_name}.{tensor_name}: contains NaN or inf ({values.flatten()[:8].tolist()}...)")
    if not (values > 0).all():
        raise CheckpointError(f"{layer_name}.{tensor_name}: contains non-positive values (min {values.min().item():g})")


def checked_loader(
    layer: torch.nn.Module, layer_name: str, tensor_name: str, loader: Callable[..., Any]
) -> Callable[..., Any]:
    """Wrap a vLLM weight loader for `layer_name.tensor_name` with dtype/value/shape checks."""

    def load(param: torch.nn.Parameter, loaded_weight: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        full_name = f"{layer_name}.{tensor_name}"
        if tensor_name == "weight":
            if loaded_weight.dtype != torch.int8:
                raise CheckpointError(
                    f"{full_name}: expected an int8 weight (quantization_config says smoothquant), found "
                    f"{loaded_weight.dtype}; was this checkpoint written by calibration.export?"
                )
        else:
            if not loaded_weight.is_floating_point():
                raise CheckpointError(f"{full_name}: expected a float32 scale, found {loaded_weight.dtype}")
            check_scale_values(layer_name, tensor_name, loaded_weight)
            loaded_weight = loaded_weight.float()
        try:
            result = loader(param, loaded_weight, *args, **kwargs)
        except (AssertionError, RuntimeError, IndexError) as exc:
            shard = f" (shard {args[0]!r})" if args else ""
            raise CheckpointError(
                f"{full_name}{shard}: checkpoint tensor of shape {tuple(loaded_weight.shape)} does not fit "
                f"parameter of shape {tuple(param.shape)} ({exc or type(exc).__name__})"
            ) from exc
        layer._sq_loaded.setdefault(tensor_name, set()).update(_shard_ids(args, kwargs))
        return result

    return load


def check_all_loaded(layer: torch.nn.Module, layer_name: str, tensor_names: list[str]) -> None:
    """Every tensor of every shard of a (fused) layer must have come from the checkpoint."""
    num_shards = len(layer.logical_widths)
    loaded: dict[str, set[int | None]] = getattr(layer, "_sq_loaded", {})
    for name in tensor_names:
        got = loaded.get(name, set())
        if None in got or (num_shards > 1 and got >= set(range(num_shards))) or (num_shards == 1 and got):
            continue
        missing = "all shards" if not got else f"shards {sorted(set(range(num_shards)) - got)}"
        raise CheckpointError(
            f"{layer_name}.{name}: missing from the checkpoint ({missing} of this fused layer were never loaded)"
        )


def is_dummy_load() -> bool:
    """True when vLLM fills weights itself (`load_format="dummy"`, used for benchmarks): no checkpoint tensors."""
    from vllm.config import get_current_vllm_config_or_none

    config = get_current_vllm_config_or_none()
    return config is not None and str(config.load_config.load_format).lower() == "dummy"


# Standard deviation of dummy int8 weights: per-channel quantization maps a row's largest |w| (~4.5 sigma of a
# roughly normal row) to 127.
DUMMY_INT8_STD = 28.0


def dummy_int8_(weight: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Fills an int8 tensor in place with values distributed like a quantized layer's (normal, std 28, clipped).

    The values matter for speed comparisons even though the kernels do not branch on them: the tensor cores' power
    follows how many bits toggle, and a GPU at its power limit lowers its clock for every kernel. vLLM's dummy load
    leaves int8 weights uninitialized (mostly zeros on fresh memory), so an engine whose weights are random draws
    more power than one whose weights are zeros (serve run 18: only the engine with random weights hit the H100's
    software power cap, and FlashAttention, the same kernel in both, ran 4-18% slower in it). Benchmarks fill every
    engine's int8 weights with this.
    """
    if weight.dtype != torch.int8:
        raise TypeError(f"dummy_int8_ fills int8 tensors (got {weight.dtype})")
    gen = torch.Generator(device=weight.device).manual_seed(seed)
    rows = max(1, (1 << 24) // max(1, weight[0].numel())) if weight.dim() > 0 else 1
    for part in (weight.split(rows) if weight.dim() > 0 else (weight,)):  # a float copy of 16M elements at a time
        values = torch.randn(part.shape, generator=gen, device=weight.device) * DUMMY_INT8_STD
        part.copy_(values.round_().clamp_(-127, 127).to(torch.int8))
    return weight


def fill_dummy_int8(weight: torch.Tensor, scale: torch.Tensor, input_scale: torch.Tensor | None = None) -> None:
    """Benchmark stand-ins for dummy loads: int8 weights distributed like real ones, scales that keep outputs O(|x|).

    vLLM's dummy init leaves int8 tensors uninitialized and writes uniform(-1e-3, 1e-3) into float ones,
    which would be negative scales.
    """
    dummy_int8_(weight)
    scale.fill_(1.0 / (DUMMY_INT8_STD * weight.shape[-1] ** 0.5))
    if input_scale is not None:
        input_scale.fill_(0.05)
