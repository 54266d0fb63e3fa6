"""Pure-PyTorch forward of a torch-int `Int8OPT` checkpoint: what the original CUDA kernels compute, on CPU.

torch-int runs int8 GEMMs/BMMs in CUTLASS with int32 accumulation and a float32 epilogue
(`alpha * acc + beta * C`, fused multiply-add), then rounds to nearest-even and saturates to [-128, 127]
for int8 outputs. Here int8 values are held in float tensors: integer products are summed exactly in
float64, converted to float32 like the kernel's int32 accumulator, and the epilogue is evaluated in float64
and rounded once to float32 (as a fused multiply-add rounds once).

`attention="float"` replaces exactly the steps a vLLM deployment of the converted checkpoint does in float
(int8 rounding of the q/k/v outputs, round(127 * P) and the int8 BMMs), keeping everything else as torch-int;
tests use it to separate "same numerics" from "different by design" (docs/torch_int.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F

from calibration.torch_int.layout import LAYER_PREFIX, LM_HEAD, check_config

__all__ = ["int8_gemm", "linear_float_out", "linear_int8_out", "layernorm_q", "torch_int_logits"]


def _round_sat(x: torch.Tensor) -> torch.Tensor:
    """Round half to even, saturate to int8's range (CUTLASS's clamping float->int8 conversion)."""
    return torch.round(x).clamp_(-128, 127)


def int8_gemm(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """`x @ w^T` of int8 values (int8 or integer-valued float tensors), as the kernel's int32 accumulator -> f32."""
    return torch.matmul(x.double(), w.double().transpose(-1, -2)).float()


def _epilogue(alpha: float, acc: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
    """float32 `alpha * acc + c` rounded once, as CUTLASS's fused multiply-add epilogue does."""
    y = torch.tensor(alpha, dtype=torch.float32).double() * acc.double()
    return (y if c is None else y + c.double()).float()


def linear_int8_out(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, a: float, b: float, *,
                    relu: bool = False, round_output: bool = True) -> torch.Tensor:
    """W8A8B8O8Linear(ReLU): int8 codes `sat(round(a * x.W^T + b * bias))`; unrounded if `round_output=False`."""
    bias_term = bias.float().reshape(-1) * torch.tensor(b, dtype=torch.float32)  # beta * C in float32
    y = _epilogue(a, int8_gemm(x, weight), bias_term)
    if relu:
        y = torch.relu(y)
    return _round_sat(y) if round_output else y


def linear_float_out(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, a: float) -> torch.Tensor:
    """W8A8BFP32OFP32Linear: float32 `a * x.W^T + bias`."""
    return _epilogue(a, int8_gemm(x, weight), bias.float().reshape(-1))


def layernorm_q(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """LayerNormQ: LayerNorm with the pre-divided weights, in their dtype, rounded and saturated to int8."""
    y = F.layer_norm(x.to(weight.dtype), x.shape[-1:], weight, bias, eps)
    return _round_sat(y.float())


def _scalar(state: Mapping[str, torch.Tensor], name: str) -> float:
    return float(state[name].reshape(()).float())


@torch.no_grad()
def torch_int_logits(
    config: Mapping[str, Any] | Any,
    state: Mapping[str, torch.Tensor],
    input_ids: torch.Tensor,
    *,
    attention: Literal["int8", "float"] = "int8",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Logits `[B, T, vocab]` (float32) of the torch-int Int8OPT model for unpadded `input_ids` `[B, T]`.

    `dtype` is the float dtype of the residual stream, embeddings, final LayerNorm and lm_head (the original
    ran float16 on GPU). The original pads inputs to a multiple of 16 at the end; with causal attention that
    does not change the outputs at the real positions, so no padding is done here.
    """
    if attention not in ("int8", "float"):
        raise ValueError(f"attention must be 'int8' or 'float', got {attention!r}")
    dims = check_config(config)
    bsz, seq = input_ids.shape
    pos = torch.arange(seq) + 2  # OPT's learned positions are offset by 2
    h = (state["model.decoder.embed_tokens.weight"][input_ids].to(dtype)
         + state["model.decoder.embed_positions.weight"][pos].to(dtype))
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()

    def heads(x: torch.Tensor) -> torch.Tensor:  # [B, T, H*D] -> [B, H, T, D]
        return x.view(bsz, seq, dims.heads, dims.head_dim).transpose(1, 2)

    for i in range(dims.layers):
        p = f"{LAYER_PREFIX}{i}."
        x = layernorm_q(h, state[p + "self_attn_layer_norm.weight"], state[p + "self_attn_layer_norm.bias"])
        qkv = {}
        for n in ("q", "k", "v"):
            m = f"{p}self_attn.{n}_proj."
            qkv[n] = heads(linear_int8_out(x, state[m + "weight"], state[m + "bias"], _scalar(state, m + "a"),
                                           _scalar(state, m + "b"), round_output=attention == "int8"))
        qk_a, pv_a = _scalar(state, p + "self_attn.qk_bmm.a"), _scalar(state, p + "self_attn.pv_bmm.a")
        if attention == "int8":
            scores = _epilogue(qk_a, int8_gemm(qkv["q"], qkv["k"]))            # BMM_S8T_S8N_F32T
        else:
            scores = (qk_a * torch.matmul(qkv["q"].double(), qkv["k"].double().transpose(-1, -2))).float()
        probs = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
        if attention == "int8":
            p_codes = torch.round(probs * 127)                                   # int8 probabilities
            ctx = _round_sat(_epilogue(pv_a, int8_gemm(p_codes, qkv["v"].transpose(-1, -2))))  # BMM_S8T_S8N_S8T
        else:
            ctx = _round_sat((127.0 * pv_a * torch.matmul(probs.double(), qkv["v"].double())).float())
        ctx = ctx.transpose(1, 2).reshape(bsz, seq, dims.hidden)
        m = p + "self_attn.out_proj."
        h = h + linear_float_out(ctx, state[m + "weight"], state[m + "bias"], _scalar(state, m + "a")).to(dtype)
        x = layernorm_q(h, state[p + "final_layer_norm.weight"], state[p + "final_layer_norm.bias"])
        x = linear_int8_out(x, state[p + "fc1.weight"], state[p + "fc1.bias"], _scalar(state, p + "fc1.a"),
                            _scalar(state, p + "fc1.b"), relu=True)
        h = h + linear_float_out(x, state[p + "fc2.weight"], state[p + "fc2.bias"], _scalar(state, p + "fc2.a")).to(dtype)
    h = F.layer_norm(h, (dims.hidden,), state["model.decoder.final_layer_norm.weight"].to(dtype),
                     state["model.decoder.final_layer_norm.bias"].to(dtype), 1e-5)
    head = state[LM_HEAD] if LM_HEAD in state else state["model.decoder.embed_tokens.weight"]
    return (h @ head.to(dtype).T).float()
