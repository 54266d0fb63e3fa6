"""Simulated (fake) W8A8 quantization in PyTorch: the numerical reference for exported checkpoints.

Quantized linears keep int8 weights and float32 scales and compute in float32 on dequantized operands, so
their outputs equal an integer GEMM with the same scales up to float rounding. Names and meanings follow
mit-han-lab/smoothquant's `fake_quant.py` (`W8A8Linear.from_float`, `quantize_model`,
`quantize_activation_per_token_absmax`, ...), with the checkpoint format's numerics (round half to even,
[-127, 127], zero rows get scale 1).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from calibration import quantize as Q
from calibration.registry import quantized_linears

ACT_QUANTS = ("per_token", "per_tensor", "per_token_asymmetric", "none")
BMM_INPUTS = ("q_proj", "k_proj", "v_proj", "query_key_value", "qkv_proj")


def quantize_weight_per_channel_absmax(w: torch.Tensor, n_bits: int = 8) -> torch.Tensor:
    """Fake-quantized copy of `w` with one scale per output row."""
    _check_bits(n_bits)
    return Q.dequantize_weight(*Q.quantize_weight(w, "per_channel")).to(w.dtype)


def quantize_weight_per_tensor_absmax(w: torch.Tensor, n_bits: int = 8) -> torch.Tensor:
    _check_bits(n_bits)
    return Q.dequantize_weight(*Q.quantize_weight(w, "per_tensor")).to(w.dtype)


def quantize_activation_per_token_absmax(t: torch.Tensor, n_bits: int = 8) -> torch.Tensor:
    _check_bits(n_bits)
    q, s = Q.quantize_per_token(t)
    return (q.float() * s).to(t.dtype)


def quantize_activation_per_tensor_absmax(t: torch.Tensor, n_bits: int = 8, scale: torch.Tensor | None = None
                                          ) -> torch.Tensor:
    """Dynamic per-tensor, or static when the calibrated `scale` (`input_scale`) is given."""
    _check_bits(n_bits)
    q, s = Q.quantize_per_tensor(t, scale)
    return (q.float() * s).to(t.dtype)


def fake_quantize_activation_per_token_asymmetric(t: torch.Tensor, n_bits: int = 8) -> torch.Tensor:
    """Per-token int8 with a zero point: uses all 256 levels for one-sided rows (e.g. after ReLU/GELU)."""
    _check_bits(n_bits)
    q, s, z = Q.quantize_per_token_asymmetric(t)
    return ((q.float() - z.float()) * s).to(t.dtype)


def _check_bits(n_bits: int) -> None:
    if n_bits != 8:
        raise ValueError(f"only 8-bit quantization is implemented, got n_bits={n_bits}")


class W8A8Linear(nn.Module):
    """A linear layer with int8 weights and fake-quantized int8 input activations."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, act_quant: str = "per_token",
                 quantize_output: bool = False, *, weight_quant: str = "per_channel",
                 input_scale: torch.Tensor | None = None, dtype: torch.dtype = torch.float32):
        super().__init__()
        if act_quant not in ACT_QUANTS:
            raise ValueError(f"act_quant must be one of {ACT_QUANTS}, got {act_quant!r}")
        if input_scale is not None and act_quant != "per_tensor":
            raise ValueError("a static input_scale requires act_quant='per_tensor'")
        self.in_features, self.out_features = in_features, out_features
        self.act_quant, self.weight_quant, self.quantize_output = act_quant, weight_quant, quantize_output
        nscale = out_features if weight_quant == "per_channel" else 1
        self.register_buffer("weight", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(nscale, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros(out_features, dtype=dtype) if bias else None)
        self.register_buffer("input_scale", None if input_scale is None else input_scale.float().reshape(1))

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_quant == "per_token":
            return quantize_activation_per_token_absmax(x.float())
        if self.act_quant == "per_tensor":
            return quantize_activation_per_tensor_absmax(x.float(), scale=self.input_scale)
        if self.act_quant == "per_token_asymmetric":
            return fake_quantize_activation_per_token_asymmetric(x.float())
        return x.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = Q.dequantize_weight(self.weight, self.weight_scale).to(x.device)
        y = nn.functional.linear(self.quantize_input(x), w)
        if self.bias is not None:
            y = y + self.bias.float()
        if self.quantize_output:
            y = quantize_activation_per_token_absmax(y) if self.act_quant != "per_tensor" else \
                quantize_activation_per_tensor_absmax(y)
        return y.to(x.dtype)

    @classmethod
    @torch.no_grad()
    def from_float(cls, module: nn.Linear, weight_quant: str = "per_channel", act_quant: str = "per_token",
                   quantize_output: bool = False, input_scale: torch.Tensor | None = None) -> W8A8Linear:
        """Quantize a float `nn.Linear` (the original project's constructor)."""
        q, scale = Q.quantize_weight(module.weight, weight_quant)
        return cls.from_quantized(q, scale, module.bias, act_quant=act_quant, quantize_output=quantize_output,
                                  input_scale=input_scale, dtype=module.weight.dtype)

    @classmethod
    def from_quantized(cls, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None, *,
                       act_quant: str = "per_token", quantize_output: bool = False,
                       input_scale: torch.Tensor | None = None, dtype: torch.dtype = torch.float32) -> W8A8Linear:
        """Build from stored int8 weights and scales (as read from a checkpoint)."""
        weight_quant = "per_channel" if scale.numel() == q.shape[0] and q.shape[0] > 1 else "per_tensor"
        mod = cls(q.shape[1], q.shape[0], bias is not None, act_quant, quantize_output, weight_quant=weight_quant,
                  input_scale=input_scale, dtype=bias.dtype if bias is not None else dtype)
        mod.weight.copy_(q)
        mod.weight_scale = scale.detach().float().reshape(-1).clone()
        if bias is not None:
            mod.bias.copy_(bias.detach())
        return mod.to(q.device)

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, weight_quant={self.weight_quant}, "
                f"act_quant={self.act_quant}, static={self.input_scale is not None}, "
                f"output_quant={self.quantize_output}")


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def quantize_model(model: nn.Module, weight_quant: str = "per_channel", act_quant: str = "per_token",
                   quantize_bmm_input: bool = False, *, input_scales: dict[str, torch.Tensor] | None = None
                   ) -> nn.Module:
    """Swap every linear the registry quantizes for a `W8A8Linear` (in place; `lm_head` stays float).

    `input_scales` (module name -> `[1]` static scale) makes activations static per-tensor.
    `quantize_bmm_input` also fake-quantizes the q/k/v outputs, as the original project does for OPT.
    """
    for name in quantized_linears(model):
        static = None if input_scales is None else input_scales.get(name)
        if input_scales is not None and static is None:
            raise ValueError(f"no static input scale for {name}")
        bmm = quantize_bmm_input and name.rsplit(".", 1)[-1] in BMM_INPUTS
        _set_module(model, name, W8A8Linear.from_float(model.get_submodule(name), weight_quant,
                                                       "per_tensor" if static is not None else act_quant,
                                                       quantize_output=bmm, input_scale=static))
    return model


def _read_checkpoint_config(path: Path) -> tuple[dict, dict]:
    cfg = json.loads((path / "config.json").read_text())
    qcfg = cfg.pop("quantization_config", None)
    if not qcfg or qcfg.get("quant_method") != "smoothquant":
        raise ValueError(f"{path} is not a smoothquant checkpoint (config.json has no smoothquant "
                         "quantization_config)")
    return cfg, qcfg


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors in {path}")
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        tensors.update(load_file(f))
    return tensors


@torch.no_grad()
def load_simulated_model(path: str | os.PathLike[str], dtype: torch.dtype | None = None) -> nn.Module:
    """A transformers model for a smoothquant checkpoint directory, with `W8A8Linear` where it stores int8.

    This is the reference a serving engine's output is compared against: same smoothed weights, same int8
    values and scales, same activation scheme (from `quantization_config`), computed in float32.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    path = Path(path)
    cfg_dict, qcfg = _read_checkpoint_config(path)
    config = AutoConfig.for_model(**cfg_dict)
    model_dtype = dtype or getattr(config, "dtype", None) or torch.float32
    if isinstance(model_dtype, str):
        model_dtype = getattr(torch, model_dtype)
    model = AutoModelForCausalLM.from_config(config, dtype=model_dtype)
    tensors = _load_tensors(path)
    if qcfg["activation_dynamic"]:
        act = "per_token" if qcfg["activation_granularity"] == "per_token" else "per_tensor"
        if not qcfg.get("activation_symmetric", True):
            act = "per_token_asymmetric"
    else:
        act = "per_tensor"
    for name in [k[: -len(".weight_scale")] for k in tensors if k.endswith(".weight_scale")]:
        static = None if qcfg["activation_dynamic"] else tensors.pop(f"{name}.input_scale")
        layer = W8A8Linear.from_quantized(tensors.pop(f"{name}.weight"), tensors.pop(f"{name}.weight_scale"),
                                          tensors.pop(f"{name}.bias", None), act_quant=act, input_scale=static,
                                          dtype=model_dtype)
        _set_module(model, name, layer)
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if unexpected:
        raise ValueError(f"{path}: tensors the model does not have: {unexpected[:5]}")
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    quantized_buffers = {n for n, _ in model.named_buffers()}
    missing = [k for k in missing if k not in quantized_buffers and not (
        k == "lm_head.weight" and getattr(config, "tie_word_embeddings", False))]
    if missing:
        raise ValueError(f"{path}: tensors missing from the checkpoint: {missing[:5]}")
    return model.eval()


@torch.no_grad()
def simulated_logits(path: str | os.PathLike[str], input_ids: torch.Tensor) -> torch.Tensor:
    """float32 logits `[batch, seq, vocab]` of the simulated-quantization model of a checkpoint directory."""
    model = load_simulated_model(path)
    ids = input_ids if input_ids.dim() == 2 else input_ids.unsqueeze(0)
    return model(input_ids=ids, use_cache=False).logits.float()


def quantize_opt(model: nn.Module, weight_quant: str = "per_tensor", act_quant: str = "per_tensor",
                 quantize_bmm_input: bool = True) -> nn.Module:
    """The original project's OPT defaults (per-tensor W8A8 with quantized BMM inputs)."""
    return quantize_model(model, weight_quant, act_quant, quantize_bmm_input)


def quantize_llama_like(model: nn.Module, weight_quant: str = "per_channel", act_quant: str = "per_token",
                        quantize_bmm_input: bool = False) -> nn.Module:
    """The original project's Llama/Mistral/Mixtral/Falcon defaults."""
    return quantize_model(model, weight_quant, act_quant, quantize_bmm_input)
