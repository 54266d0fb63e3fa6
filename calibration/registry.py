"""Architectures as data: which norm feeds which linears, and which linears are quantized but not smoothed.

SmoothQuant divides a norm's output channels by `s` and multiplies the input columns of every linear that
reads that norm by `s`; this is exact only if the norm's output feeds nothing else. Each `SmoothGroup` names
one such norm (relative to a decoder layer) and all of its readers. Adding an architecture is one `ArchSpec`
entry below (plus a tiny-model test).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

Condition = Callable[[Any], bool]


@dataclass(frozen=True)
class SmoothGroup:
    """`source` (a norm, or for optional groups a linear whose output rows absorb 1/s) feeds `linears`.

    Names are relative to one decoder layer; `*` matches an expert index. A reader is a module (its
    `weight` is scaled) or `module:param` for a weight stored as a bare parameter, e.g. the 3-D fused expert
    tensor `mlp.experts:gate_up_proj` `[E, 2I, H]` of transformers >= 5 (the last dim is always the input).
    `when` restricts the group to configs for which it is true (wiring that depends on the config, e.g.
    Falcon). Several groups may name the same source: the first whose readers all exist is used.
    """

    source: str
    linears: tuple[str, ...]
    when: Condition | None = None


@dataclass(frozen=True)
class ArchSpec:
    layers: str                                   # path of the decoder-layer ModuleList
    groups: tuple[SmoothGroup, ...]               # norm -> readers, always smoothed
    unsmoothed: tuple[str, ...]                   # quantized, not smoothed by default
    # Optional linear -> linear groups for the `unsmoothed` layers, valid only where the op between them is
    # positively homogeneous per channel (attention's V path without GQA; gate*up; ReLU).
    extra_groups: tuple[SmoothGroup, ...] = ()
    # Returns an error message if this config cannot be smoothed exactly (e.g. the residual is the normed value).
    unsupported: Callable[[Any], str | None] = field(default=lambda cfg: None)


def _no_gqa(cfg: Any) -> bool:
    return getattr(cfg, "num_key_value_heads", cfg.num_attention_heads) == cfg.num_attention_heads


_LLAMA = ArchSpec(
    layers="model.layers",
    groups=(
        SmoothGroup("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
        SmoothGroup("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
    ),
    unsmoothed=("self_attn.o_proj", "mlp.down_proj"),
    extra_groups=(
        SmoothGroup("self_attn.v_proj", ("self_attn.o_proj",), when=_no_gqa),
        SmoothGroup("mlp.up_proj", ("mlp.down_proj",)),
    ),
)

_OPT = ArchSpec(
    layers="model.decoder.layers",
    groups=(
        SmoothGroup("self_attn_layer_norm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
        SmoothGroup("final_layer_norm", ("fc1",)),
    ),
    unsmoothed=("self_attn.out_proj", "fc2"),
    extra_groups=(
        SmoothGroup("self_attn.v_proj", ("self_attn.out_proj",)),
        SmoothGroup("fc1", ("fc2",), when=lambda cfg: cfg.activation_function == "relu"),
    ),
    unsupported=lambda cfg: None if cfg.do_layer_norm_before else
    "OPT with do_layer_norm_before=False (post-LN, e.g. opt-350m) feeds the normed value into the residual",
)


def _falcon_shared_ln(cfg: Any) -> bool:
    """One input_layernorm feeds both attention and MLP (parallel attention, or the new arch with one LN)."""
    two_ln = cfg.new_decoder_architecture and cfg.num_ln_in_parallel_attn == 2
    return not two_ln and (cfg.new_decoder_architecture or cfg.parallel_attn)


_FALCON = ArchSpec(
    layers="transformer.h",
    groups=(
        SmoothGroup("ln_attn", ("self_attention.query_key_value",)),
        SmoothGroup("ln_mlp", ("mlp.dense_h_to_4h",)),
        SmoothGroup("input_layernorm", ("self_attention.query_key_value", "mlp.dense_h_to_4h"),
                    when=_falcon_shared_ln),
        SmoothGroup("input_layernorm", ("self_attention.query_key_value",), when=lambda c: not _falcon_shared_ln(c)),
        SmoothGroup("post_attention_layernorm", ("mlp.dense_h_to_4h",)),
    ),
    unsmoothed=("self_attention.dense", "mlp.dense_4h_to_h"),
)

_BLOOM = ArchSpec(
    layers="transformer.h",
    groups=(
        SmoothGroup("input_layernorm", ("self_attention.query_key_value",)),
        SmoothGroup("post_attention_layernorm", ("mlp.dense_h_to_4h",)),
    ),
    unsmoothed=("self_attention.dense", "mlp.dense_4h_to_h"),
    unsupported=lambda cfg: "BLOOM with apply_residual_connection_post_layernorm=True feeds the normed value "
    "into the residual" if cfg.apply_residual_connection_post_layernorm else None,
)

_PHI3 = ArchSpec(
    layers="model.layers",
    groups=(
        SmoothGroup("input_layernorm", ("self_attn.qkv_proj",)),
        SmoothGroup("post_attention_layernorm", ("mlp.gate_up_proj",)),
    ),
    unsmoothed=("self_attn.o_proj", "mlp.down_proj"),
)

# Mixtral: one norm feeds the router and every expert's w1/w3. transformers < 5 (and checkpoints on disk) keep
# one linear per expert; transformers >= 5 fuses the experts into 3-D parameters and the router is no nn.Linear.
_MIXTRAL = ArchSpec(
    layers="model.layers",
    groups=(
        SmoothGroup("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
        SmoothGroup("post_attention_layernorm",
                    ("block_sparse_moe.gate", "block_sparse_moe.experts.*.w1", "block_sparse_moe.experts.*.w3")),
        SmoothGroup("post_attention_layernorm", ("mlp.gate", "mlp.experts:gate_up_proj")),
    ),
    unsmoothed=("self_attn.o_proj", "block_sparse_moe.experts.*.w2"),
)

ARCHITECTURES: dict[str, ArchSpec] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "opt": _OPT,
    "falcon": _FALCON,
    "bloom": _BLOOM,
    "phi3": _PHI3,
    "mixtral": _MIXTRAL,
}


class UnsupportedArchitectureError(ValueError):
    pass


@dataclass(frozen=True)
class ResolvedGroup:
    """A smoothing group with full module names, ready to apply."""

    source: str
    linears: tuple[str, ...]


def get_spec(model_type: str) -> ArchSpec:
    try:
        return ARCHITECTURES[model_type]
    except KeyError:
        raise UnsupportedArchitectureError(
            f"model_type {model_type!r} is not supported by SmoothQuant calibration; supported: "
            f"{', '.join(sorted(ARCHITECTURES))} (add an ArchSpec in calibration/registry.py)") from None


def _layer_list(model: nn.Module, spec: ArchSpec) -> nn.ModuleList:
    mod = model.get_submodule(spec.layers) if spec.layers else model
    if not isinstance(mod, nn.ModuleList):
        raise UnsupportedArchitectureError(f"{spec.layers!r} is not the decoder-layer list of this model")
    return mod


def split_reader(name: str) -> tuple[str, str]:
    """(module name, parameter name) of a group reader ("weight" unless given as `module:param`)."""
    module, _, param = name.partition(":")
    return module, param or "weight"


def reader_weight(model: nn.Module, name: str) -> torch.Tensor:
    module, param = split_reader(name)
    return getattr(model.get_submodule(module), param)


def _expand(layer: nn.Module, prefix: str, pattern: str) -> list[str]:
    mod_pat, _, param = pattern.partition(":")
    names = [n for n, m in layer.named_modules() if n and fnmatch.fnmatchcase(n, mod_pat)
             and isinstance(getattr(m, param or "weight", None), torch.Tensor)]
    return [f"{prefix}.{n}" + (f":{param}" if param else "") for n in names]


def resolve_groups(model: nn.Module, *, smooth_all: bool = False) -> list[ResolvedGroup]:
    """Full-name smoothing groups of `model` (norm groups; plus the optional linear groups if `smooth_all`)."""
    cfg = model.config
    spec = get_spec(cfg.model_type)
    if (msg := spec.unsupported(cfg)) is not None:
        raise UnsupportedArchitectureError(f"cannot smooth this {cfg.model_type} model: {msg}")
    groups = spec.groups + (spec.extra_groups if smooth_all else ())
    out: list[ResolvedGroup] = []
    for i, layer in enumerate(_layer_list(model, spec)):
        prefix = f"{spec.layers}.{i}"
        present = {n for n, _ in layer.named_modules()}
        done: set[str] = set()
        unmatched: dict[str, tuple[str, ...]] = {}
        for g in groups:
            if g.source not in present or g.source in done or (g.when is not None and not g.when(cfg)):
                continue
            if any(not _expand(layer, prefix, pat) for pat in g.linears):
                unmatched.setdefault(g.source, g.linears)
                continue
            done.add(g.source)
            out.append(ResolvedGroup(f"{prefix}.{g.source}", tuple(n for p in g.linears for n in _expand(layer, prefix, p))))
        for source, readers in unmatched.items():
            if source not in done:
                raise UnsupportedArchitectureError(
                    f"{prefix}.{source} is present but its readers {readers} are not all found; "
                    f"the registry entry for {cfg.model_type!r} does not match this model")
    if not out:
        raise UnsupportedArchitectureError(f"no smoothing group of {cfg.model_type!r} matches this model")
    return out


def quantized_linears(model: nn.Module) -> list[str]:
    """Full names of every linear the registry quantizes; errors if a decoder layer has a linear it does not know."""
    spec = get_spec(model.config.model_type)
    known = tuple(p for g in spec.groups for p in g.linears) + spec.unsmoothed
    names: list[str] = []
    for i, layer in enumerate(_layer_list(model, spec)):
        prefix = f"{spec.layers}.{i}"
        for n, mod in layer.named_modules():
            if not isinstance(mod, nn.Linear):
                continue
            if not any(fnmatch.fnmatchcase(n, p) for p in known):
                raise UnsupportedArchitectureError(
                    f"linear {prefix}.{n} is not described by the registry entry for {model.config.model_type!r}")
            names.append(f"{prefix}.{n}")
    return names
