import pytest
import torch

from calibration import quantize as Q
from calibration.simulate import (
    W8A8Linear, fake_quantize_activation_per_token_asymmetric, quantize_activation_per_tensor_absmax,
    quantize_activation_per_token_absmax, quantize_model, quantize_weight_per_channel_absmax,
    quantize_weight_per_tensor_absmax)


def test_weight_quant_numerics():
    w = torch.tensor([[1.0, -0.5, 0.25], [0.0, 0.0, 0.0], [127.0, 63.5, -64.5]])
    q, s = Q.quantize_weight(w)
    assert q.dtype == torch.int8 and s.dtype == torch.float32 and s.shape == (3,)
    assert s[1] == 1.0 and torch.equal(q[1], torch.zeros(3, dtype=torch.int8))  # zero row: scale 1
    assert q[0].tolist() == [127, -64, 32]  # -63.5 -> -64 and 31.75 -> 32
    assert q[2].tolist() == [127, 64, -64]  # 63.5 and -64.5 round half to even
    qt, st = Q.quantize_weight(w, "per_tensor")
    assert st.shape == (1,) and qt.abs().max() == 127


def test_weight_errors():
    with pytest.raises(ValueError, match="granularity"):
        Q.quantize_weight(torch.ones(2, 2), "per_group")
    with pytest.raises(ValueError, match="floating-point"):
        Q.quantize_weight(torch.ones(2, 2, dtype=torch.int8))
    with pytest.raises(ValueError, match="NaN or inf"):
        Q.quantize_weight(torch.tensor([[float("nan")]]))


def test_original_fake_quant_names():
    torch.manual_seed(0)
    w, x = torch.randn(8, 16), torch.randn(4, 16)
    for fq, t in [(quantize_weight_per_channel_absmax, w), (quantize_weight_per_tensor_absmax, w),
                  (quantize_activation_per_token_absmax, x), (quantize_activation_per_tensor_absmax, x)]:
        out = fq(t)
        assert out.shape == t.shape and not torch.equal(out, t)
        assert (out - t).abs().max() <= t.abs().max() / 127 / 2 + 1e-6
    with pytest.raises(ValueError, match="only 8-bit"):
        quantize_activation_per_token_absmax(x, n_bits=4)


def test_asymmetric_per_token_numerics():
    torch.manual_seed(0)
    x = torch.rand(5, 32) * 3 + 0.5  # one-sided rows, where a zero point pays off
    x[1] = -x[1]
    x[2] = 0.0
    q, s, z = Q.quantize_per_token_asymmetric(x)
    assert q.dtype == torch.int8 and z.dtype == torch.int32 and s.shape == z.shape == (5, 1)
    lo, hi = x.amin(1, keepdim=True).clamp(max=0), x.amax(1, keepdim=True).clamp(min=0)  # range includes 0
    torch.testing.assert_close(s[[0, 1, 3, 4]], ((hi - lo) / 255)[[0, 1, 3, 4]])
    assert z.min() >= -128 and z.max() <= 127 and z[0] == -128 and z[1] == 127
    assert s[2] == 1.0 and q[2].eq(z[2].to(torch.int8)).all()
    deq = fake_quantize_activation_per_token_asymmetric(x)
    assert ((deq - x).abs() <= s / 2 + 1e-6).all()
    sym = quantize_activation_per_token_absmax(x)
    assert (deq - x).abs().mean() < (sym - x).abs().mean() * 0.6  # twice the resolution on one-sided rows
    # the reader's integer formula: y = s_x * s_w * (x_q @ W_q^T - z * colsum(W_q))
    wq, sw = Q.quantize_weight(torch.randn(6, 32))
    acc = q.long() @ wq.long().T - z.long() * wq.long().sum(1)[None, :]
    y_int = s * sw[None, :] * acc.float()
    torch.testing.assert_close(y_int, deq @ Q.dequantize_weight(wq, sw).T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act", ["per_token", "per_tensor", "per_token_asymmetric"])
def test_w8a8_linear_equals_integer_gemm(act):
    torch.manual_seed(0)
    lin = torch.nn.Linear(32, 16)
    x = torch.randn(3, 4, 32)
    qlin = W8A8Linear.from_float(lin, "per_channel", act)
    xf = x.reshape(-1, 32)
    if act == "per_token":
        xq, sx = Q.quantize_per_token(xf)
        acc = xq.long() @ qlin.weight.long().T
    elif act == "per_tensor":
        xq, sx = Q.quantize_per_tensor(xf)
        acc = xq.long() @ qlin.weight.long().T
    else:
        xq, sx, z = Q.quantize_per_token_asymmetric(xf)
        acc = xq.long() @ qlin.weight.long().T - z.long() * qlin.weight.long().sum(1)
    y = sx * qlin.weight_scale * acc.float() + lin.bias
    torch.testing.assert_close(qlin(x).reshape(-1, 16), y.detach(), rtol=1e-5, atol=1e-5)
    assert (qlin(x) - lin(x)).abs().max() < 0.05


def test_static_linear_uses_input_scale():
    lin = torch.nn.Linear(8, 4, bias=False)
    qlin = W8A8Linear.from_float(lin, act_quant="per_tensor", input_scale=torch.tensor([0.01]))
    x = torch.full((1, 8), 5.0)  # beyond 127 * 0.01: clamps
    y = qlin(x)
    expected = (torch.full((1, 8), 1.27) @ Q.dequantize_weight(qlin.weight, qlin.weight_scale).T)
    torch.testing.assert_close(y, expected)
    with pytest.raises(ValueError, match="requires act_quant='per_tensor'"):
        W8A8Linear.from_float(lin, act_quant="per_token", input_scale=torch.tensor([0.01]))


def test_quantize_model_swaps_registry_linears(tiny):
    model, _, blocks, _ = tiny("llama")
    with torch.no_grad():
        ref = model(blocks).logits
        quantize_model(model, quantize_bmm_input=True)
        out = model(blocks).logits
    swapped = [n for n, m in model.named_modules() if isinstance(m, W8A8Linear)]
    assert len(swapped) == 14 and isinstance(model.lm_head, torch.nn.Linear)
    assert model.model.layers[0].self_attn.k_proj.quantize_output
    assert not model.model.layers[0].self_attn.o_proj.quantize_output
    assert 0 < float((out - ref).norm() / ref.norm()) < 0.1


def test_original_api_names_from_the_package(tiny):
    import calibration
    from calibration import W8A8Linear as Top, quantize_opt, smooth_lm

    model, _, blocks, scales = tiny("opt", outliers=True)
    with torch.no_grad():
        ref = model(blocks).logits
        smooth_lm(model, scales, alpha=0.5)
        quantize_opt(model)  # the original OPT defaults: per-tensor W8A8, quantized BMM inputs
        out = model(blocks).logits
    q = model.model.decoder.layers[0].self_attn.q_proj
    assert isinstance(q, Top) and q.weight_quant == "per_tensor" and q.act_quant == "per_tensor"
    assert q.quantize_output and not model.model.decoder.layers[0].fc2.quantize_output
    assert float((out - ref).norm() / ref.norm()) < 0.2
    assert all(hasattr(calibration, n) for n in calibration.__all__)
