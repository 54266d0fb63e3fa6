import pytest
from torch.nn import Linear
from transformers import FalconConfig, OPTConfig

from calibration.models.tiny import SUPPORTED_ARCHS, build_tiny_model
from calibration.registry import (
    ARCHITECTURES, UnsupportedArchitectureError, get_spec, quantized_linears, reader_weight, resolve_groups)


def test_unknown_model_type_names_supported_ones():
    with pytest.raises(UnsupportedArchitectureError, match="'gpt2' is not supported.*llama.*mixtral.*opt"):
        get_spec("gpt2")


@pytest.mark.parametrize("arch", SUPPORTED_ARCHS)
def test_groups_cover_all_readers_and_shapes_match(arch):
    model, _ = build_tiny_model(arch)
    groups = resolve_groups(model)
    linears = quantized_linears(model)
    smoothed = {n for g in groups for n in g.linears if ":" not in n and isinstance(model.get_submodule(n), Linear)}
    assert smoothed < set(linears)  # o_proj/down_proj-like layers are quantized, not smoothed
    for g in groups:
        width = model.get_submodule(g.source).weight.shape[0]
        assert all(reader_weight(model, n).shape[-1] == width for n in g.linears)
    assert len(groups) == 2 * 2 or arch == "falcon"  # two norms per layer (falcon: one shared LN)


def test_llama_mapping():
    model, _ = build_tiny_model("llama", num_layers=1)
    assert [(g.source, g.linears) for g in resolve_groups(model)] == [
        ("model.layers.0.input_layernorm", tuple(f"model.layers.0.self_attn.{p}_proj" for p in "qkv")),
        ("model.layers.0.post_attention_layernorm", ("model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj")),
    ]
    extra = [g for g in resolve_groups(model, smooth_all=True) if g.source.endswith("up_proj")]
    assert extra[0].linears == ("model.layers.0.mlp.down_proj",)


def test_falcon_variants_follow_config():
    shared = resolve_groups(build_tiny_model("falcon", num_layers=1)[0])
    assert [g.linears for g in shared] == [("transformer.h.0.self_attention.query_key_value",
                                            "transformer.h.0.mlp.dense_h_to_4h")]
    cfg = FalconConfig(vocab_size=64, hidden_size=64, num_hidden_layers=1, num_attention_heads=2, parallel_attn=False)
    from transformers import AutoModelForCausalLM
    serial = resolve_groups(AutoModelForCausalLM.from_config(cfg))
    assert [g.source.rsplit(".", 1)[-1] for g in serial] == ["input_layernorm", "post_attention_layernorm"]


def test_post_ln_opt_is_refused():
    from transformers import AutoModelForCausalLM
    cfg = OPTConfig(vocab_size=64, hidden_size=64, num_hidden_layers=1, num_attention_heads=2, ffn_dim=128,
                    do_layer_norm_before=False, word_embed_proj_dim=64)
    with pytest.raises(UnsupportedArchitectureError, match="do_layer_norm_before=False"):
        resolve_groups(AutoModelForCausalLM.from_config(cfg))


def test_unknown_linear_in_a_layer_is_an_error():
    model, _ = build_tiny_model("llama", num_layers=1)
    import torch
    model.model.layers[0].mlp.extra_proj = torch.nn.Linear(4, 4)
    with pytest.raises(UnsupportedArchitectureError, match="extra_proj is not described"):
        quantized_linears(model)


def test_every_registry_entry_is_data():
    assert {"llama", "mistral", "qwen2", "qwen3", "opt", "falcon", "bloom", "phi3", "mixtral"} <= set(ARCHITECTURES)
    mixtral = ARCHITECTURES["mixtral"].groups[1]
    assert "block_sparse_moe.gate" in mixtral.linears and "block_sparse_moe.experts.*.w1" in mixtral.linears


def test_mixtral_norm_feeds_router_and_all_experts():
    model, _ = build_tiny_model("mixtral", num_layers=1)
    moe = resolve_groups(model)[1]
    assert moe.source == "model.layers.0.post_attention_layernorm"
    assert moe.linears == ("model.layers.0.mlp.gate", "model.layers.0.mlp.experts:gate_up_proj")
    assert reader_weight(model, moe.linears[1]).shape == (4, 2 * model.config.intermediate_size, 64)
