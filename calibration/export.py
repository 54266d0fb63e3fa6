"""Write a smoothed INT8 checkpoint directory in the format of docs/checkpoint_format.md."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from calibration import quantize as Q
from calibration.alpha_search import search_alphas
from calibration.registry import quantized_linears, resolve_groups
from calibration.smooth import check_alpha, check_float_weights, resolve_alphas, smooth_model

FORMAT_VERSION = 1


class ExportError(ValueError):
    pass


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(name == p or name.endswith("." + p) for p in patterns)


def quantization_config(*, alpha: float | Mapping[str, float], weight_granularity: str, activation_granularity: str,
                        activation_dynamic: bool, activation_symmetric: bool, ignored_modules: Sequence[str]) -> dict:
    """The `quantization_config` block of config.json (validated: invalid combinations raise)."""
    if weight_granularity not in Q.WEIGHT_GRANULARITIES:
        raise ExportError(f"weight_granularity must be one of {Q.WEIGHT_GRANULARITIES}, got {weight_granularity!r}")
    if activation_granularity not in Q.ACTIVATION_GRANULARITIES:
        raise ExportError(f"activation_granularity must be one of {Q.ACTIVATION_GRANULARITIES}, "
                          f"got {activation_granularity!r}")
    if not activation_dynamic and activation_granularity != "per_tensor":
        raise ExportError("static activations (activation_dynamic=False) require activation_granularity='per_tensor'")
    if not activation_symmetric and not (activation_dynamic and activation_granularity == "per_token"):
        raise ExportError("asymmetric activations are defined for dynamic per_token only")
    return {
        "quant_method": "smoothquant",
        "format_version": FORMAT_VERSION,
        "weight_bits": 8,
        "weight_granularity": weight_granularity,
        "activation_granularity": activation_granularity,
        "activation_dynamic": bool(activation_dynamic),
        "activation_symmetric": bool(activation_symmetric),
        "alpha": dict(alpha) if isinstance(alpha, Mapping) else float(alpha),
        "ignored_modules": sorted({"lm_head", *ignored_modules}),
    }


def _check_exportable(model: nn.Module) -> None:
    """The format stores nn.Linear weights; fused 3-D MoE expert tensors have no layout in it yet."""
    for g in resolve_groups(model):
        for reader in g.linears:
            module, _, _ = reader.partition(":")
            if not isinstance(model.get_submodule(module), nn.Linear):
                raise ExportError(
                    f"{reader} is not a linear layer ({type(model.get_submodule(module)).__name__}); exporting "
                    "fused MoE experts (transformers >= 5 Mixtral) is not supported by checkpoint format v1. "
                    "Smoothing, act-scales and ppl work on such models.")


def check_output_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise FileExistsError(f"output directory {out} already exists; pass overwrite=True (--overwrite) to replace it")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output path {out} exists and is not a directory")


@torch.no_grad()
def quantized_state_dict(model: nn.Module, act_scales: Mapping[str, torch.Tensor],
                         factors: Mapping[str, torch.Tensor], qcfg: dict) -> dict[str, torch.Tensor]:
    """All tensors of the checkpoint: int8 weights + float32 scales for quantized linears, the rest as is."""
    smoothed_by = {lin: factors[g.source] for g in resolve_groups(model, smooth_all=True)
                   if g.source in factors for lin in g.linears}
    targets = [n for n in quantized_linears(model) if not _matches(n, qcfg["ignored_modules"])]
    state = {k: v.detach() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    for name in targets:
        mod = model.get_submodule(name)
        q, scale = Q.quantize_weight(mod.weight, qcfg["weight_granularity"])
        state[f"{name}.weight"], state[f"{name}.weight_scale"] = q.cpu(), scale.cpu()
        if not qcfg["activation_dynamic"]:
            if name not in act_scales:
                raise ExportError(f"missing activation scales for {name}: static activations need an input scale "
                                  "for every quantized linear")
            act = act_scales[name]
            if act.shape != (mod.weight.shape[1],) or not torch.isfinite(act).all():
                raise ExportError(f"activation scale for {name} must be finite with shape ({mod.weight.shape[1]},), "
                                  f"got {tuple(act.shape)}")
            state[f"{name}.input_scale"] = Q.static_input_scale(act, smoothed_by.get(name))
    return {k: v.contiguous().cpu().clone() for k, v in state.items()}


def _write(tmp: Path, model: nn.Module, tokenizer, tensors: dict[str, torch.Tensor], qcfg: dict) -> None:
    from safetensors.torch import save_file

    from calibration.models.tiny import save_tokenizer

    model.config.save_pretrained(tmp)
    cfg = json.loads((tmp / "config.json").read_text())
    cfg["quantization_config"] = qcfg
    # save_pretrained of a bare config leaves `architectures` empty; vLLM needs it to pick the causal-LM class.
    cfg["architectures"] = [type(model).__name__]
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    gen = getattr(model, "generation_config", None)
    if gen is not None:
        gen.save_pretrained(tmp)
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    if tokenizer is not None:
        save_tokenizer(tokenizer, tmp)


def export_checkpoint(
    model: nn.Module,
    tokenizer,
    act_scales: Mapping[str, torch.Tensor],
    output_dir: str | os.PathLike[str],
    *,
    alpha: float | str | Mapping[str, float] = 0.5,
    weight_granularity: str = "per_channel",
    activation_granularity: str = "per_token",
    activation_dynamic: bool = True,
    activation_symmetric: bool = True,
    calib_data: torch.Tensor | None = None,
    overwrite: bool = False,
    smooth: bool = True,
    smooth_all: bool = False,
    ignored_modules: Sequence[str] = (),
) -> Path:
    """Smooth `model` in place with `alpha`, quantize it to INT8 and write a checkpoint directory.

    `alpha`: a number in [0, 1], a mapping {module name: alpha} (see `smooth_model`), or "auto" for a
    per-layer grid search, which needs `calib_data` (`[n, seq_len]` token ids). `smooth=False` exports
    naive W8A8 (no smoothing). The directory appears only when complete (written to a temporary directory
    next to it, then renamed); an existing one is refused unless `overwrite`.
    """
    out = Path(output_dir).expanduser().resolve()
    check_output_dir(out, overwrite)
    check_float_weights(model)
    _check_exportable(model)
    if isinstance(alpha, str):
        if alpha != "auto":
            raise ExportError(f"alpha must be a number in [0, 1], a per-layer mapping or 'auto', got {alpha!r}")
        if calib_data is None:
            raise ExportError("alpha='auto' needs calibration data (calib_data: token ids [n, seq_len])")
    elif not isinstance(alpha, Mapping):
        check_alpha(alpha)
    qcfg = quantization_config(alpha=0.0 if isinstance(alpha, str) else alpha, weight_granularity=weight_granularity,
                               activation_granularity=activation_granularity, activation_dynamic=activation_dynamic,
                               activation_symmetric=activation_symmetric, ignored_modules=ignored_modules)
    factors: dict[str, torch.Tensor] = {}
    if smooth:
        if alpha == "auto":
            alpha = search_alphas(model, act_scales, calib_data, smooth_all=smooth_all,
                                  weight_granularity=weight_granularity, activation_granularity=activation_granularity,
                                  activation_dynamic=activation_dynamic, activation_symmetric=activation_symmetric)
        if isinstance(alpha, Mapping):  # record what each layer got (a 'default' entry resolved)
            alpha = resolve_alphas(model, alpha, smooth_all=smooth_all)
        factors = smooth_model(model, act_scales, alpha, smooth_all=smooth_all)
        qcfg["alpha"] = dict(alpha) if isinstance(alpha, Mapping) else float(alpha)
    else:
        qcfg["alpha"] = {}  # no layer smoothed
    tensors = quantized_state_dict(model, act_scales, factors, qcfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _write(tmp, model, tokenizer, tensors, qcfg)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
