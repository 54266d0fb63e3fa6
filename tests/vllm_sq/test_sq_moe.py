"""A Mixtral-style MoE smoothquant checkpoint (int8 experts) served by vLLM matches a simulated reference.

`calibration` does not export MoE models, so the checkpoint is written here, per docs/checkpoint_format.md:
int8 per-channel weights + float32 scales for attention and expert linears, router and lm_head in float.
The reference is the transformers model with the same dequantized weights and per-token fake-quantized
linear inputs (attention via hooks, experts via a replaced forward).
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from calibration import quantize as Q
from conftest import PROMPTS, prompt_logprobs, reference_logprobs, running_llm

pytestmark = pytest.mark.vllm

LOGPROB_ATOL = 5e-3


def _fake_quant(x: torch.Tensor) -> torch.Tensor:
    q, s = Q.quantize_per_token(x.reshape(-1, x.shape[-1]))
    return (q.float() * s).reshape(x.shape).to(x.dtype)


def _experts_forward(self, hidden_states, top_k_index, top_k_weights):  # noqa: ANN001, ANN202
    out = torch.zeros_like(hidden_states)
    for t in range(hidden_states.shape[0]):
        for j in range(top_k_index.shape[1]):
            e = int(top_k_index[t, j])
            gate, up = torch.nn.functional.linear(_fake_quant(hidden_states[t : t + 1]), self.gate_up_proj[e]).chunk(2, -1)
            y = torch.nn.functional.linear(_fake_quant(self.act_fn(gate) * up), self.down_proj[e])
            out[t] += top_k_weights[t, j] * y[0]
    return out


def _write_mixtral(path: Path) -> torch.nn.Module:
    """Write an int8 Mixtral checkpoint; return the simulated-quantization transformers reference."""
    from transformers import AutoModelForCausalLM, MixtralConfig

    from calibration.models.tiny import build_tokenizer, save_tokenizer

    config = MixtralConfig(
        vocab_size=512, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=32, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=256,
        tie_word_embeddings=False, architectures=["MixtralForCausalLM"],
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    tensors: dict[str, torch.Tensor] = {}

    def put_int8(name: str, weight: torch.Tensor) -> torch.Tensor:
        q, s = Q.quantize_weight(weight, "per_channel")
        tensors[f"{name}.weight"], tensors[f"{name}.weight_scale"] = q.contiguous(), s.reshape(-1).float().contiguous()
        return Q.dequantize_weight(q, s).float()

    for name, param in model.state_dict().items():
        if ".mlp." not in name and not name.endswith("_proj.weight"):
            tensors[name] = param.contiguous()
    with torch.no_grad():
        for i, layer in enumerate(model.model.layers):
            prefix = f"model.layers.{i}"
            for p in ("q_proj", "k_proj", "v_proj", "o_proj"):
                lin = getattr(layer.self_attn, p)
                lin.weight.copy_(put_int8(f"{prefix}.self_attn.{p}", lin.weight))
                lin.register_forward_pre_hook(lambda _m, args: (_fake_quant(args[0]),))
            tensors[f"{prefix}.block_sparse_moe.gate.weight"] = layer.mlp.gate.weight.contiguous()
            experts = layer.mlp.experts
            inter = config.intermediate_size
            for e in range(config.num_local_experts):
                base = f"{prefix}.block_sparse_moe.experts.{e}"
                w1 = put_int8(f"{base}.w1", experts.gate_up_proj[e, :inter])
                w3 = put_int8(f"{base}.w3", experts.gate_up_proj[e, inter:])
                experts.gate_up_proj[e] = torch.cat([w1, w3])
                experts.down_proj[e] = put_int8(f"{base}.w2", experts.down_proj[e])
            experts.forward = types.MethodType(_experts_forward, experts)
    path.mkdir(parents=True)
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    cfg = config.to_dict()
    cfg["quantization_config"] = {
        "quant_method": "smoothquant", "format_version": 1, "weight_bits": 8, "weight_granularity": "per_channel",
        "activation_granularity": "per_token", "activation_dynamic": True, "activation_symmetric": True,
        "alpha": 0.5, "ignored_modules": ["lm_head", "block_sparse_moe.gate"],
    }
    (path / "config.json").write_text(json.dumps(cfg))
    save_tokenizer(build_tokenizer(512), path)
    return model


def test_mixtral_int8_experts_match_reference(tmp_path: Path) -> None:
    reference = _write_mixtral(tmp_path / "mixtral_sq")
    with running_llm(tmp_path / "mixtral_sq") as llm:
        got = prompt_logprobs(llm, PROMPTS)
    for ids, lps in got:
        err = (lps - reference_logprobs(reference, ids)).abs().max().item()
        assert err < LOGPROB_ATOL, f"Mixtral prompt logprobs differ from the reference by {err:.3g}"
