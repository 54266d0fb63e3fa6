import json
import os

import pytest
import torch
from safetensors.torch import load_file

from calibration import quantize as Q
from calibration.export import ExportError, export_checkpoint
from calibration.ppl import simulated_copy
from calibration.simulate import W8A8Linear, load_simulated_model, simulated_logits
from calibration.smooth import SmoothingError


def _export(tiny, tmp_path, arch="llama", **kw):
    model, tok, blocks, scales = tiny(arch, outliers=True)
    reference = tiny(arch, outliers=True)[0]
    out = export_checkpoint(model, tok, scales, tmp_path / "ckpt", **kw)
    return out, reference, model, blocks, scales


@pytest.mark.parametrize("arch", ["llama", "opt", "qwen2"])
def test_export_reloads_and_matches_simulation(tiny, tmp_path, arch):
    out, reference, smoothed, blocks, scales = _export(tiny, tmp_path, arch, alpha=0.5)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["quantization_config"] == {
        "quant_method": "smoothquant", "format_version": 1, "weight_bits": 8, "weight_granularity": "per_channel",
        "activation_granularity": "per_token", "activation_dynamic": True, "activation_symmetric": True,
        "alpha": 0.5, "ignored_modules": ["lm_head"]}
    assert cfg["architectures"] == [type(reference).__name__]  # vLLM picks the causal-LM class from it
    assert (out / "tokenizer.json").is_file() and (out / "tokenizer_config.json").is_file()
    tensors = load_file(out / "model.safetensors")
    q_names = [k[: -len(".weight_scale")] for k in tensors if k.endswith(".weight_scale")]
    assert len(q_names) == (12 if arch == "opt" else 14)
    for name in q_names:
        w, s = tensors[f"{name}.weight"], tensors[f"{name}.weight_scale"]
        assert w.dtype == torch.int8 and s.dtype == torch.float32 and s.shape == (w.shape[0],)
        assert int(w.min()) >= -127
        # the int8 weight is the smoothed float weight quantized per channel
        torch.testing.assert_close(Q.dequantize_weight(w, s), smoothed.get_submodule(name).weight.float(),
                                   atol=float(s.max()) / 2 + 1e-7, rtol=0)
    if arch == "opt":  # tied to the embeddings: stored once
        assert "lm_head.weight" not in tensors
    else:
        assert tensors["lm_head.weight"].dtype == torch.float32
    # a norm stores the smoothed weight
    norm = next(k for k in tensors if k.endswith("layers.0.input_layernorm.weight") or
                k.endswith("layers.0.self_attn_layer_norm.weight"))
    torch.testing.assert_close(tensors[norm], smoothed.state_dict()[norm])
    # simulated model of the directory == simulation of the float model smoothed in memory
    expected = simulated_copy(reference, scales, 0.5)
    with torch.no_grad():
        torch.testing.assert_close(simulated_logits(out, blocks[:2]), expected(blocks[:2]).logits, rtol=1e-5,
                                   atol=1e-5)
    sim = load_simulated_model(out)
    assert sum(isinstance(m, W8A8Linear) for m in sim.modules()) == len(q_names)


def test_transformers_loads_the_float_parts(tiny, tmp_path):
    out, *_ = _export(tiny, tmp_path, "qwen2")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "qwen2" and cfg["dtype"] == "float32"


def test_static_per_tensor_stores_input_scales(tiny, tmp_path):
    out, reference, _, blocks, scales = _export(
        tiny, tmp_path, alpha=0.6, activation_granularity="per_tensor", activation_dynamic=False)
    tensors = load_file(out / "model.safetensors")
    s_q = tensors["model.layers.0.self_attn.q_proj.input_scale"]
    assert s_q.shape == (1,) and s_q.dtype == torch.float32
    # q/k/v read the same smoothed input: one scale
    assert torch.equal(s_q, tensors["model.layers.0.self_attn.v_proj.input_scale"])
    # o_proj is not smoothed: its scale is its raw input abs-max / 127
    torch.testing.assert_close(tensors["model.layers.0.self_attn.o_proj.input_scale"],
                               scales["model.layers.0.self_attn.o_proj"].max().reshape(1) / 127)
    expected = simulated_copy(reference, scales, 0.6, act_quant="per_tensor", static=True)
    with torch.no_grad():
        torch.testing.assert_close(simulated_logits(out, blocks[:2]), expected(blocks[:2]).logits, rtol=1e-5,
                                   atol=1e-5)


def test_asymmetric_export(tiny, tmp_path):
    out, reference, _, blocks, scales = _export(tiny, tmp_path, alpha=0.5, activation_symmetric=False)
    assert json.loads((out / "config.json").read_text())["quantization_config"]["activation_symmetric"] is False
    expected = simulated_copy(reference, scales, 0.5, act_quant="per_token_asymmetric")
    with torch.no_grad():
        torch.testing.assert_close(simulated_logits(out, blocks[:2]), expected(blocks[:2]).logits, rtol=1e-5,
                                   atol=1e-5)


def test_auto_alpha_writes_per_layer_alphas(tiny, tmp_path):
    model, tok, blocks, scales = tiny("llama", outliers=True)
    out = export_checkpoint(model, tok, scales, tmp_path / "auto", alpha="auto", calib_data=blocks)
    alphas = json.loads((out / "config.json").read_text())["quantization_config"]["alpha"]
    assert set(alphas) == {f"model.layers.{i}.{n}" for i in range(2)
                           for n in ("input_layernorm", "post_attention_layernorm")}
    assert all(0.0 <= a <= 1.0 for a in alphas.values())


def test_per_tensor_weights_and_ignored_modules(tiny, tmp_path):
    out, *_ = _export(tiny, tmp_path, weight_granularity="per_tensor", ignored_modules=["mlp.down_proj"])
    tensors = load_file(out / "model.safetensors")
    assert tensors["model.layers.0.self_attn.q_proj.weight_scale"].shape == (1,)
    assert tensors["model.layers.1.mlp.down_proj.weight"].dtype == torch.float32
    assert "model.layers.1.mlp.down_proj.weight_scale" not in tensors
    cfg = json.loads((out / "config.json").read_text())["quantization_config"]
    assert cfg["ignored_modules"] == ["lm_head", "mlp.down_proj"]


def test_existing_directory_is_refused_then_overwritten(tiny, tmp_path):
    model, tok, _, scales = tiny("llama")
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="already exists.*overwrite"):
        export_checkpoint(model, tok, scales, target)
    assert (target / "keep.txt").exists()
    export_checkpoint(model, tok, scales, target, overwrite=True)
    assert not (target / "keep.txt").exists() and (target / "model.safetensors").exists()
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]  # no temporary directories left


@pytest.mark.parametrize("kw, err, match", [
    (dict(alpha=1.2), SmoothingError, r"alpha must be a number in \[0, 1\]"),
    (dict(alpha="best"), ExportError, "'auto'"),
    (dict(alpha="auto"), ExportError, "needs calibration data"),
    (dict(activation_dynamic=False), ExportError, "static activations .* require .*per_tensor"),
    (dict(activation_symmetric=False, activation_granularity="per_tensor"), ExportError, "dynamic per_token only"),
    (dict(weight_granularity="per_group"), ExportError, "weight_granularity must be one of"),
])
def test_bad_options_leave_nothing_behind(tiny, tmp_path, kw, err, match):
    model, tok, _, scales = tiny("llama")
    with pytest.raises(err, match=match):
        export_checkpoint(model, tok, scales, tmp_path / "ckpt", **kw)
    assert os.listdir(tmp_path) == []


def test_missing_scale_leaves_nothing_behind(tiny, tmp_path):
    model, tok, _, scales = tiny("llama")
    del scales["model.layers.1.self_attn.o_proj"]
    with pytest.raises(ExportError, match="missing activation scales for model.layers.1.self_attn.o_proj"):
        export_checkpoint(model, tok, scales, tmp_path / "ckpt", activation_granularity="per_tensor",
                          activation_dynamic=False)
    assert os.listdir(tmp_path) == []


def test_not_a_smoothquant_checkpoint(tmp_path):
    from calibration.models.tiny import save_tiny_model
    path = save_tiny_model("llama", tmp_path / "plain")
    with pytest.raises(ValueError, match="not a smoothquant checkpoint"):
        load_simulated_model(path)


def test_fused_moe_experts_export_is_refused(tiny, tmp_path):
    model, tok, _, scales = tiny("mixtral")
    with pytest.raises(ExportError, match="mlp.gate is not a linear layer.*fused MoE experts"):
        export_checkpoint(model, tok, scales, tmp_path / "moe")
    assert os.listdir(tmp_path) == []
