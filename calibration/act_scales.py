"""Per-channel input abs-max of every linear layer (the SmoothQuant activation statistics).

The result maps module names to float32 `[in_features]` tensors, the layout of the original
mit-han-lab/smoothquant `act_scales/*.pt` files, so scales computed there load here and vice versa.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from calibration.data import token_blocks


class NonFiniteActivationError(ValueError):
    pass


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def run_blocks(model: nn.Module, blocks: torch.Tensor, batch_size: int, desc: str, progress: bool = True) -> None:
    """Forward `blocks` through `model` in batches (no KV cache), for the side effects of hooks."""
    device = model_device(model)
    for start in tqdm(range(0, len(blocks), batch_size), desc=desc, disable=not progress, unit="batch"):
        model(input_ids=blocks[start:start + batch_size].to(device), use_cache=False)


def _observed_modules(model: nn.Module) -> list[str]:
    """Every nn.Linear, plus smoothing-group readers that are not nn.Linear (MoE routers, fused experts)."""
    from calibration.registry import UnsupportedArchitectureError, resolve_groups, split_reader

    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    config = getattr(model, "config", None)
    try:
        groups = resolve_groups(model) if config is not None else []
    except UnsupportedArchitectureError:  # statistics are still useful for models the registry does not know
        groups = []
    extra = {split_reader(r)[0] for g in groups for r in g.linears}
    return names + sorted(extra - set(names))


@torch.no_grad()
def collect_act_scales(
    model: nn.Module,
    tokenizer,
    texts: Iterable[str] | torch.Tensor,
    num_samples: int = 512,
    seq_len: int = 512,
    batch_size: int = 8,
    *,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Run `num_samples` blocks of `seq_len` tokens and return `{linear name: max|X| per input channel}`.

    `texts` may be strings (or a `datasets` column) or a ready `[n, seq_len]` tensor of token ids.
    Non-finite activations raise `NonFiniteActivationError` naming the first layer that sees them.
    """
    blocks = texts if isinstance(texts, torch.Tensor) else token_blocks(
        tokenizer, list(texts), num_samples=num_samples, seq_len=seq_len)
    scales: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def fn(_mod: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0].detach()
            x = x.reshape(-1, x.shape[-1]).abs()
            if not torch.isfinite(x).all():
                raise NonFiniteActivationError(f"non-finite (NaN/inf) input activations at {name}; the model "
                                               "overflows in its dtype on this data (try float32)")
            cur = x.amax(dim=0).float().cpu()
            scales[name] = cur if name not in scales else torch.maximum(scales[name], cur)
        return fn

    handles = [model.get_submodule(n).register_forward_pre_hook(hook(n)) for n in _observed_modules(model)]
    was_training = model.training
    model.eval()
    try:
        run_blocks(model, blocks, batch_size, "act-scales", progress)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return scales


def save_act_scales(scales: dict[str, torch.Tensor], path: str | os.PathLike[str]) -> None:
    """`torch.save` a plain dict name -> float32 tensor (the original project's `.pt` layout)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({k: v.float().cpu() for k, v in scales.items()}, path)


def load_act_scales(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a scales file written by `save_act_scales` or by mit-han-lab/smoothquant."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"activation scales file {path} does not exist; create it with "
                                "`python -m calibration act-scales`")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise ValueError(f"{path} is not an activation-scales file (expected a dict of module name -> tensor)")
    return {k: v.float() for k, v in obj.items()}
