import pytest
import torch

from calibration.models.tiny import SUPPORTED_ARCHS
from calibration.smooth import SmoothingError, smooth_lm, smooth_model


@pytest.mark.parametrize("arch", SUPPORTED_ARCHS)
@torch.no_grad()
def test_smoothing_is_equivalent_in_fp32(tiny, arch):
    model, _, blocks, scales = tiny(arch, outliers=True)
    ref = model(blocks).logits
    factors = smooth_model(model, scales, 0.5)
    assert factors and all(float(s.min()) > 0 for s in factors.values())
    torch.testing.assert_close(model(blocks).logits, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ["llama", "opt"])
@torch.no_grad()
def test_smooth_all_is_equivalent(tiny, arch):
    model, _, blocks, scales = tiny(arch, outliers=True)
    ref = model(blocks).logits
    factors = smooth_model(model, scales, 0.7, smooth_all=True)
    assert any(k.endswith(("up_proj", "fc1")) for k in factors)
    torch.testing.assert_close(model(blocks).logits, ref, rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_smoothing_flattens_outlier_channels(tiny):
    model, _, _, scales = tiny("llama", outliers=True)
    norm = "model.layers.0.input_layernorm"
    q = "model.layers.0.self_attn.q_proj"
    x_before = scales[q]
    factors = smooth_model(model, scales, 0.5)
    x_after = x_before / factors[norm]
    # the max/median ratio of the activation channels shrinks by a large factor
    ratio = lambda t: float(t.max() / t.median())  # noqa: E731
    assert ratio(x_after) < ratio(x_before) / 4


@torch.no_grad()
def test_smooth_lm_original_api(tiny):
    model, _, blocks, scales = tiny("opt")
    w = model.model.decoder.layers[0].self_attn_layer_norm.weight.clone()
    smooth_lm(model, scales, 0.5)
    assert not torch.equal(w, model.model.decoder.layers[0].self_attn_layer_norm.weight)


def test_per_layer_alphas_and_default(tiny):
    model, _, _, scales = tiny("llama")
    with pytest.raises(SmoothingError, match="no alpha for model.layers.0.input_layernorm"):
        smooth_model(model, scales, {"model.layers.1.input_layernorm": 0.3})
    smooth_model(model, scales, {"model.layers.1.input_layernorm": 0.3, "default": 0.6})


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), "0.5"])
def test_alpha_outside_range(tiny, alpha):
    model, _, _, scales = tiny("llama")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(SmoothingError, match="alpha must be a number in \\[0, 1\\]"):
        smooth_model(model, scales, alpha)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing changed


def test_missing_scales(tiny):
    model, _, _, scales = tiny("llama")
    for k in [k for k in scales if k.startswith("model.layers.1.mlp.")]:
        del scales[k]
    with pytest.raises(SmoothingError, match="missing activation scales for model.layers.1.mlp.gate_proj"):
        smooth_model(model, scales, 0.5)


def test_shape_mismatch(tiny):
    model, _, _, scales = tiny("llama")
    scales["model.layers.0.self_attn.q_proj"] = torch.ones(7)
    with pytest.raises(SmoothingError, match=r"q_proj has shape \(7,\), expected \(64,\)"):
        smooth_model(model, scales, 0.5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_scales(tiny, bad):
    model, _, _, scales = tiny("llama")
    scales["model.layers.0.mlp.up_proj"] = scales["model.layers.0.mlp.up_proj"].clone()
    scales["model.layers.0.mlp.up_proj"][3] = bad
    with pytest.raises(SmoothingError, match="up_proj contains NaN or inf"):
        smooth_model(model, scales, 0.5)


def test_non_float_weights(tiny):
    model, _, _, scales = tiny("llama")
    lin = model.model.layers[0].self_attn.q_proj
    lin.weight = torch.nn.Parameter(lin.weight.data.to(torch.int8), requires_grad=False)
    with pytest.raises(SmoothingError, match="must be floating point.*q_proj.weight is torch.int8"):
        smooth_model(model, scales, 0.5)
