import pytest
import torch

from calibration.act_scales import NonFiniteActivationError, collect_act_scales, load_act_scales, save_act_scales
from calibration.models.tiny import build_tiny_model, sample_texts


def test_scales_are_input_absmax_of_every_linear(tiny):
    model, tok, blocks, scales = tiny("llama")
    names = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(scales) == names  # includes lm_head, as the original project's files do
    seen = {}
    hook = model.model.layers[1].mlp.down_proj.register_forward_pre_hook(
        lambda m, a: seen.setdefault("x", a[0].detach().clone()))
    with torch.no_grad():
        model(blocks)
    hook.remove()
    expected = seen["x"].reshape(-1, seen["x"].shape[-1]).abs().amax(0)
    torch.testing.assert_close(scales["model.layers.1.mlp.down_proj"], expected)
    assert all(v.dtype == torch.float32 and v.dim() == 1 for v in scales.values())


def test_batching_does_not_change_scales(tiny):
    model, tok, blocks, scales = tiny("opt")
    again = collect_act_scales(model, tok, blocks, batch_size=3, progress=False)
    for k in scales:
        torch.testing.assert_close(again[k], scales[k])


def test_texts_are_tokenized_into_blocks():
    model, tok = build_tiny_model("qwen2")
    scales = collect_act_scales(model, tok, sample_texts(8), num_samples=2, seq_len=16, progress=False)
    assert scales["model.layers.0.self_attn.q_proj"].shape == (64,)


def test_original_pt_layout_round_trip(tmp_path, tiny):
    _, _, _, scales = tiny("llama")
    path = tmp_path / "act_scales" / "tiny.pt"
    save_act_scales(scales, path)
    raw = torch.load(path)  # plain dict name -> tensor, like mit-han-lab/smoothquant's act_scales/*.pt
    assert type(raw) is dict and set(raw) == set(scales)
    loaded = load_act_scales(path)
    assert all(torch.equal(loaded[k], scales[k]) for k in scales)


def test_original_half_precision_file_loads(tmp_path):
    torch.save({"model.decoder.layers.0.fc1": torch.ones(8, dtype=torch.float16)}, tmp_path / "opt.pt")
    assert load_act_scales(tmp_path / "opt.pt")["model.decoder.layers.0.fc1"].dtype == torch.float32


def test_bad_scale_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_act_scales(tmp_path / "missing.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not an activation-scales file"):
        load_act_scales(tmp_path / "list.pt")


def test_non_finite_activations_are_reported(tiny):
    model, tok, blocks, _ = tiny("llama")
    model.model.layers[0].input_layernorm.weight.data[5] = float("inf")
    with pytest.raises(NonFiniteActivationError, match="model.layers.0.self_attn.q_proj"):
        collect_act_scales(model, tok, blocks, progress=False)
