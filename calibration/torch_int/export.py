"""Write a checkpoint in the torch-int `Int8OPT` layout from a float OPT model, as the original project did.

No original checkpoint can be downloaded where this project is tested, so tests make their own: this follows
mit-han-lab/smoothquant's static calibration (per linear: abs-max of its input and of its output over the
calibration texts) and `Int8OPTForCausalLM.from_float` (per-tensor abs-max int8 weights, int8 biases for the
int8-output linears, the attention scaling folded into q_proj, norms divided by the next input scale), then
saves `config.json` with `architectures: ["Int8OPTForCausalLM"]` and `pytorch_model.bin` as its
`save_pretrained` did. Smoothing is up to the caller (the original smoothed with alpha 0.5 first).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from calibration.torch_int.layout import ARCHITECTURE, LAYER_PREFIX, LM_HEAD

__all__ = ["export_torch_int", "static_io_absmax"]


@torch.no_grad()
def static_io_absmax(model: nn.Module, tokenizer: Any, texts: Sequence[str], seq_len: int = 128
                     ) -> dict[str, tuple[float, float]]:
    """Per decoder-layer linear: (max |input|, max |output|) over `texts`, one text per forward pass."""
    stats: dict[str, tuple[float, float]] = {}

    def hook(name: str):
        def record(_m: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            seen = stats.get(name, (0.0, 0.0))
            stats[name] = (max(seen[0], args[0].abs().max().item()), max(seen[1], out.abs().max().item()))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
               if isinstance(m, nn.Linear) and n.startswith(LAYER_PREFIX)]
    try:
        device = next(model.parameters()).device
        for text in texts:
            ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=seq_len).input_ids
            model(ids.to(device))
    finally:
        for h in handles:
            h.remove()
    return stats


def _absmax_int8(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-tensor symmetric int8: (round(t / s) as int8, s = max|t| / 127 as a 0-dim tensor of t's dtype)."""
    scale = t.abs().max() / 127
    if scale == 0:
        raise ValueError("cannot quantize an all-zero tensor per tensor (the original export would divide by 0)")
    return (t.float() / scale.float()).round().to(torch.int8), scale


@torch.no_grad()
def export_torch_int(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    output_dir: str | os.PathLike[str],
    *,
    seq_len: int = 128,
    overwrite: bool = False,
) -> Path:
    """Quantize the float `OPTForCausalLM` `model` into the torch-int layout and save it to `output_dir`."""
    out = Path(output_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty (pass overwrite=True)")
        shutil.rmtree(out)
    config = model.config
    if config.model_type != "opt":
        raise ValueError(f"torch-int's Int8OPT layout is for OPT models, got model_type {config.model_type!r}")
    stats = static_io_absmax(model, tokenizer, texts, seq_len)
    decoder = model.model.decoder
    state: dict[str, torch.Tensor] = {
        "model.decoder.embed_tokens.weight": decoder.embed_tokens.weight.clone(),
        "model.decoder.embed_positions.weight": decoder.embed_positions.weight.clone(),
        "model.decoder.final_layer_norm.weight": decoder.final_layer_norm.weight.clone(),
        "model.decoder.final_layer_norm.bias": decoder.final_layer_norm.bias.clone(),
        LM_HEAD: model.lm_head.weight.clone(),  # a .bin save keeps the tied copy too
    }
    for i, layer in enumerate(decoder.layers):
        p = f"{LAYER_PREFIX}{i}."
        s = {k.removeprefix(p): (v[0] / 127, v[1] / 127) for k, v in stats.items() if k.startswith(p)}
        attn_in, fc1_in = s["self_attn.q_proj"][0], s["fc1"][0]
        out_in, fc2_in = s["self_attn.out_proj"][0], s["fc2"][0]
        scaling = layer.self_attn.scaling
        out_scale = {"self_attn.q_proj": s["self_attn.q_proj"][1] * scaling, "self_attn.k_proj": s["self_attn.k_proj"][1],
                     "self_attn.v_proj": s["self_attn.v_proj"][1], "fc1": fc2_in}
        in_scale = {"self_attn.q_proj": attn_in, "self_attn.k_proj": attn_in, "self_attn.v_proj": attn_in,
                    "fc1": fc1_in, "self_attn.out_proj": out_in, "fc2": fc2_in}
        for norm, next_in in (("self_attn_layer_norm", attn_in), ("final_layer_norm", fc1_in)):
            ln = layer.get_submodule(norm)
            state[f"{p}{norm}.weight"] = ln.weight / next_in
            state[f"{p}{norm}.bias"] = ln.bias / next_in
        for name, s_out in out_scale.items():  # int8 weight, int8 bias, int8 output
            lin = layer.get_submodule(name)
            w, bias = lin.weight.clone(), lin.bias.clone()
            if name == "self_attn.q_proj":  # the original folds the attention scaling into q_proj
                w, bias = w * scaling, bias * scaling
            w_q, w_s = _absmax_int8(w)
            b_q, b_s = _absmax_int8(bias)
            state.update({f"{p}{name}.weight": w_q, f"{p}{name}.bias": b_q,
                          f"{p}{name}.a": in_scale[name] * w_s / s_out, f"{p}{name}.b": b_s / s_out})
        for name in ("self_attn.out_proj", "fc2"):  # int8 weight, float32 bias and output
            lin = layer.get_submodule(name)
            w_q, w_s = _absmax_int8(lin.weight)
            state.update({f"{p}{name}.weight": w_q, f"{p}{name}.bias": lin.bias.float().clone(),
                          f"{p}{name}.a": in_scale[name] * w_s})
        state[f"{p}self_attn.qk_bmm.a"] = torch.tensor(out_scale["self_attn.q_proj"] * out_scale["self_attn.k_proj"])
        state[f"{p}self_attn.pv_bmm.a"] = torch.tensor(s["self_attn.v_proj"][1] / (127 * out_in))

    out.mkdir(parents=True, exist_ok=True)
    cfg = config.to_dict()
    cfg["architectures"] = [ARCHITECTURE]
    config.__class__.from_dict(cfg).save_pretrained(out)
    torch.save({k: v.contiguous() for k, v in state.items()}, out / "pytorch_model.bin")
    tokenizer.save_pretrained(out)
    return out
