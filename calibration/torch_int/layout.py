"""The torch-int `Int8OPT` checkpoint layout, as published by mit-han-lab/smoothquant.

The original project's pre-quantized OPT checkpoints (`mit-han-lab/opt-*-smoothquant`) are the state dict of
its `Int8OPTForCausalLM`, whose decoder layers hold torch-int modules instead of `nn.Linear`/`nn.LayerNorm`.
Per decoder layer `model.decoder.layers.{i}`:

| module | torch-int class | tensors |
|---|---|---|
| `self_attn_layer_norm`, `final_layer_norm` | LayerNormQ | `weight`, `bias`: float `[H]`, divided by the next linear's input scale |
| `self_attn.{q,k,v}_proj` | W8A8B8O8Linear | `weight` int8 `[H,H]`, `bias` int8 `[H]`, scalars `a`, `b` |
| `fc1` | W8A8B8O8LinearReLU | `weight` int8 `[F,H]`, `bias` int8 `[F]`, scalars `a`, `b` |
| `self_attn.out_proj`, `fc2` | W8A8BFP32OFP32Linear | `weight` int8, `bias` float32, scalar `a` |
| `self_attn.qk_bmm` | BMM_S8T_S8N_F32T | scalar `a` |
| `self_attn.pv_bmm` | BMM_S8T_S8N_S8T | scalar `a` |

Outside the layers everything is the float OPT: token and learned position embeddings, the final LayerNorm
and `lm_head` (often absent: tied to the token embedding). Biases may be stored `[N]` or `[1, N]`, scalars
0-dim or `[1]`, in float16 or float32 (the original export ran on a float16 model).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

ARCHITECTURE = "Int8OPTForCausalLM"
LAYER_PREFIX = "model.decoder.layers."

NORMS = ("self_attn_layer_norm", "final_layer_norm")
INT8_OUT_LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "fc1")  # W8A8B8O8(ReLU)
FLOAT_OUT_LINEARS = ("self_attn.out_proj", "fc2")                                     # W8A8BFP32OFP32
BMMS = ("self_attn.qk_bmm", "self_attn.pv_bmm")

# Tensors each module of a decoder layer must have (names relative to the layer).
LAYER_TENSORS: dict[str, tuple[str, ...]] = {
    **{m: ("weight", "bias") for m in NORMS},
    **{m: ("weight", "bias", "a", "b") for m in INT8_OUT_LINEARS},
    **{m: ("weight", "bias", "a") for m in FLOAT_OUT_LINEARS},
    **{m: ("a",) for m in BMMS},
}
GLOBAL_TENSORS = (
    "model.decoder.embed_tokens.weight",
    "model.decoder.embed_positions.weight",
    "model.decoder.final_layer_norm.weight",
    "model.decoder.final_layer_norm.bias",
)
LM_HEAD = "lm_head.weight"

_LAYER_NAME = re.compile(r"^model\.decoder\.layers\.(\d+)\.(.+)\.([^.]+)$")


class TorchIntLayoutError(ValueError):
    """A checkpoint does not follow the torch-int Int8OPT layout; the message names the module at fault."""


@dataclass(frozen=True)
class OPTDims:
    """The OPT sizes the layout depends on."""

    hidden: int
    ffn: int
    heads: int
    layers: int
    vocab: int
    positions: int  # rows of the learned position embedding (max_position_embeddings + 2)
    tied: bool

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def scaling(self) -> float:
        return self.head_dim ** -0.5


def config_dict(config: Mapping[str, Any] | Any) -> dict[str, Any]:
    """config.json contents from a dict or a transformers config object."""
    return dict(config) if isinstance(config, Mapping) else config.to_dict()


def is_torch_int_config(config: Mapping[str, Any] | Any) -> bool:
    """True for a config.json written by the original project's `Int8OPTForCausalLM.save_pretrained`."""
    cfg = config_dict(config)
    return cfg.get("model_type") == "opt" and ARCHITECTURE in (cfg.get("architectures") or ())


def check_config(config: Mapping[str, Any] | Any) -> OPTDims:
    """Validate that `config` describes a torch-int OPT checkpoint and return its sizes."""
    cfg = config_dict(config)
    if cfg.get("model_type") != "opt":
        raise TorchIntLayoutError(f"torch-int checkpoints are OPT models; config.json has model_type "
                                  f"{cfg.get('model_type')!r}")
    archs = cfg.get("architectures") or []
    if archs and ARCHITECTURE not in archs:
        raise TorchIntLayoutError(f"config.json architectures is {archs}, not [{ARCHITECTURE!r}]: this is not a "
                                  "torch-int (mit-han-lab/smoothquant) checkpoint")
    if cfg.get("quantization_config"):
        raise TorchIntLayoutError("config.json already has a quantization_config "
                                  f"({cfg['quantization_config'].get('quant_method')!r}); torch-int checkpoints have none")
    hidden = int(cfg["hidden_size"])
    if int(cfg.get("word_embed_proj_dim", hidden)) != hidden:
        raise TorchIntLayoutError("word_embed_proj_dim != hidden_size (OPT-350m style project_in/project_out) is not "
                                  "part of the torch-int layout: its Int8OPTDecoder does not carry project_in")
    if not cfg.get("do_layer_norm_before", True):
        raise TorchIntLayoutError("do_layer_norm_before=false (post-norm OPT) is not supported by torch-int's "
                                  "Int8OPTDecoderLayer")
    if not cfg.get("enable_bias", True):
        raise TorchIntLayoutError("enable_bias=false: torch-int linears always carry a bias")
    if cfg.get("activation_function", "relu") != "relu":
        raise TorchIntLayoutError(f"activation_function {cfg['activation_function']!r}: torch-int fuses ReLU into fc1")
    heads = int(cfg["num_attention_heads"])
    if hidden % heads:
        raise TorchIntLayoutError(f"hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    return OPTDims(hidden=hidden, ffn=int(cfg["ffn_dim"]), heads=heads, layers=int(cfg["num_hidden_layers"]),
                   vocab=int(cfg["vocab_size"]), positions=int(cfg["max_position_embeddings"]) + 2,
                   tied=bool(cfg.get("tie_word_embeddings", True)))


def split_layer_name(name: str) -> tuple[int, str, str] | None:
    """`model.decoder.layers.3.self_attn.q_proj.a` -> (3, "self_attn.q_proj", "a"); None outside the layers."""
    m = _LAYER_NAME.match(name)
    return (int(m.group(1)), m.group(2), m.group(3)) if m else None


def expected_shape(dims: OPTDims, module: str, tensor: str) -> tuple[int, ...] | None:
    """Shape of a layer tensor (None for scalars, which may be 0-dim or [1])."""
    if tensor in ("a", "b"):
        return None
    out_features = dims.ffn if module == "fc1" else dims.hidden
    in_features = dims.ffn if module == "fc2" else dims.hidden
    if module in NORMS or tensor == "bias":
        return (out_features,)
    return (out_features, in_features)


def scalar(value: torch.Tensor, module: str, tensor: str) -> float:
    """A positive finite scalar as the Python float torch-int passes to its kernels (`.item()`)."""
    if value.numel() != 1 or not value.is_floating_point():
        raise TorchIntLayoutError(f"{module}: scalar {tensor!r} must be a single float, got {value.dtype} "
                                  f"{tuple(value.shape)}")
    v = float(value.reshape(()).float())
    if not (v > 0.0 and v != float("inf")):
        raise TorchIntLayoutError(f"{module}: scalar {tensor!r} must be finite and positive, got {v}")
    return v


def check_tensor(dims: OPTDims, layer: int, module: str, tensor: str, value: torch.Tensor) -> torch.Tensor:
    """Validate dtype/shape/finiteness of one layer tensor; return it with biases flattened to [N].

    `module` is relative to the layer (`self_attn.q_proj`); messages name the full module.
    """
    where = f"{LAYER_PREFIX}{layer}.{module}.{tensor}"
    shape = expected_shape(dims, module, tensor)
    if shape is None:
        return value
    if tensor == "bias" and value.dim() == 2 and value.shape[0] == 1:
        value = value.reshape(-1)  # torch-int registers biases as [1, N]
    if tuple(value.shape) != shape:
        raise TorchIntLayoutError(f"{where}: expected shape {list(shape)}, got {list(value.shape)}")
    wants_int8 = (tensor == "weight" and module not in NORMS) or (tensor == "bias" and module in INT8_OUT_LINEARS)
    if wants_int8:
        if value.dtype != torch.int8:
            raise TorchIntLayoutError(f"{where}: expected int8, got {value.dtype}")
    elif not value.is_floating_point():
        raise TorchIntLayoutError(f"{where}: expected a float tensor, got {value.dtype}")
    elif not torch.isfinite(value).all():
        raise TorchIntLayoutError(f"{where}: contains NaN or Inf")
    return value
