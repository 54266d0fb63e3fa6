"""The plugin's int8 kernels, weight canonicalization and checked loading, run directly (no engine)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("vllm", reason="imports vLLM at module level; the GPU machine may run the kernel tests without it")

from calibration import quantize as Q
from vllm_sq.kernels import KERNELS_BY_PLATFORM, Int8LinearSpec, NoKernelError, select_kernel
from vllm_sq.kernels.onednn import OneDNNInt8Kernel
from vllm_sq.kernels.quant_torch import quantize_activation
from vllm_sq.kernels.torch_int8 import TorchInt8Kernel
from vllm_sq.linear_method import canonical_input_scale, canonical_weight_scale
from vllm_sq.loading import CheckpointError, check_all_loaded, checked_loader

MODES = {
    "dynamic_per_token": dict(dynamic=True, per_token=True, symmetric=True),
    "dynamic_per_tensor": dict(dynamic=True, per_token=False, symmetric=True),
    "static": dict(dynamic=False, per_token=False, symmetric=True),
    "asymmetric": dict(dynamic=True, per_token=True, symmetric=False),
}


def _activation(m: int = 7, k: int = 64, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=gen)
    x[:, 5] *= 40  # an outlier channel
    x[2] = 0  # an all-zero row (scale must become 1)
    x[3] = x[3].abs() + 0.5  # an all-positive row (zero point at its extreme)
    return x


def _spec(mode: str, n: int, k: int, dtype: torch.dtype = torch.float32) -> Int8LinearSpec:
    m = MODES[mode]
    return Int8LinearSpec(m["dynamic"], m["per_token"], m["symmetric"], dtype, n, k)


def _layer(n: int, k: int, per_channel: bool, static: bool, seed: int = 0) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    layer = torch.nn.Module()
    layer.weight = torch.nn.Parameter(torch.randint(-127, 128, (n, k), dtype=torch.int8, generator=gen), requires_grad=False)
    scale = torch.rand(n if per_channel else 1, generator=gen) * 1e-2 + 1e-3
    layer.weight_scale = torch.nn.Parameter(scale, requires_grad=False)
    layer.input_scale = torch.nn.Parameter(torch.tensor([0.08]), requires_grad=False) if static else None
    layer.logical_widths = [n]
    return layer


def _exact(x: torch.Tensor, w: torch.Tensor, w_scale: torch.Tensor, bias: torch.Tensor | None, mode: str,
           input_scale: torch.Tensor | None) -> torch.Tensor:
    """float64 reference: the format's quantization (calibration.quantize) and an exact integer GEMM."""
    m = MODES[mode]
    if not m["symmetric"]:
        q, s, z = Q.quantize_per_token_asymmetric(x)
        acc = (q.double() - z.double().view(-1, 1)) @ w.double().t()
    else:
        if m["per_token"]:
            q, s = Q.quantize_per_token(x)
        else:
            q, s = Q.quantize_per_tensor(x, input_scale if not m["dynamic"] else None)
        acc = q.double() @ w.double().t()
    y = acc * s.double().reshape(-1, 1) * w_scale.double().view(1, -1)
    return y + bias.double() if bias is not None else y


@pytest.mark.parametrize("mode", list(MODES))
def test_torch_quantizer_matches_format_reference(mode: str) -> None:
    x = _activation()
    m = MODES[mode]
    q, s, z = quantize_activation(x, input_scale=torch.tensor([0.08]), **m)
    if not m["symmetric"]:
        rq, rs, rz = Q.quantize_per_token_asymmetric(x)
        assert torch.equal(z.view(-1), rz.view(-1).to(torch.int32))
    elif m["per_token"]:
        rq, rs = Q.quantize_per_token(x)
    else:
        rq, rs = Q.quantize_per_tensor(x, None if m["dynamic"] else torch.tensor([0.08]))
    assert q.dtype == torch.int8 and torch.equal(q, rq.to(torch.int8))
    assert torch.allclose(s.view(-1), rs.float().view(-1).expand(s.numel()), rtol=0, atol=0)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("per_channel", [True, False])
def test_torch_int8_kernel_is_exact(mode: str, per_channel: bool) -> None:
    n, k = 48, 64
    layer = _layer(n, k, per_channel, static=mode == "static")
    w, ws = layer.weight.data.clone(), layer.weight_scale.data.clone()
    bias = torch.randn(n) * 0.1
    kernel = TorchInt8Kernel(_spec(mode, n, k))
    kernel.process_weights(layer)
    x = _activation(k=k).reshape(7, 1, k)  # 3-D input: kernels flatten leading dims
    y = kernel.apply(layer, x, bias)
    assert y.shape == (7, 1, n) and y.dtype == torch.float32
    ref = _exact(x.reshape(7, k), w, ws, bias, mode, torch.tensor([0.08]))
    assert torch.allclose(y.reshape(7, n).double(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_onednn_kernel_is_accurate_or_refuses_with_reason(mode: str, dtype: torch.dtype) -> None:
    """Where vLLM's oneDNN int8 GEMM is wrong (CPUs without VNNI) the kernel must refuse, never run."""
    n, k = 64, 256
    spec = _spec(mode, n, k, dtype)
    ok, reason = OneDNNInt8Kernel.can_implement(spec)
    if not ok:
        assert "self-test failed" in reason or "oneDNN" in reason
        return
    layer = _layer(n, k, per_channel=True, static=mode == "static")
    w, ws = layer.weight.data.clone(), layer.weight_scale.data.clone()
    kernel = OneDNNInt8Kernel(spec)
    kernel.process_weights(layer)
    x = _activation(k=k).to(dtype)
    y = kernel.apply(layer, x, None)
    ref = _exact(x.float(), w, ws, None, mode, torch.tensor([0.08]))
    assert ((y.double() - ref).abs().max() / ref.abs().max()).item() < 1e-2


def test_selection_prefers_and_logs_and_lists_all_rejections() -> None:
    kernel = select_kernel(_spec("dynamic_per_token", 64, 256), "test.layer")
    assert type(kernel) in KERNELS_BY_PLATFORM["cpu"]
    with pytest.raises(NoKernelError) as err:
        select_kernel(_spec("dynamic_per_token", 64, 256, torch.int32), "model.layers.0.mlp.down_proj")
    message = str(err.value)
    assert "model.layers.0.mlp.down_proj" in message
    for kernel_cls in KERNELS_BY_PLATFORM["cpu"]:
        assert kernel_cls.name in message


def test_fused_per_tensor_weight_scales_expand_exactly() -> None:
    widths = [4, 2, 2]
    expanded = canonical_weight_scale(torch.tensor([0.5, 0.25, 0.125]), widths, per_channel=False)
    assert torch.equal(expanded, torch.tensor([0.5] * 4 + [0.25] * 2 + [0.125] * 2))
    assert torch.equal(canonical_weight_scale(torch.tensor([0.3, 0.3]), [3, 3], per_channel=False), torch.tensor([0.3]))
    per_channel = torch.rand(8) + 0.1
    assert torch.equal(canonical_weight_scale(per_channel, widths, per_channel=True), per_channel)


def test_static_shard_input_scales_become_one_non_clipping_scale() -> None:
    assert torch.equal(canonical_input_scale(torch.tensor([0.2, 0.2, 0.2]), "qkv"), torch.tensor([0.2]))
    assert torch.equal(canonical_input_scale(torch.tensor([0.2, 0.3]), "gate_up"), torch.tensor([0.3]))


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[torch.Tensor, tuple]] = []

    def __call__(self, param: torch.Tensor, loaded: torch.Tensor, *args: object) -> None:
        assert param.shape == loaded.shape, "shape mismatch"
        self.calls.append((loaded, args))


def _fused_layer() -> torch.nn.Module:
    layer = torch.nn.Module()
    layer.logical_widths = [4, 2, 2]
    layer._sq_loaded = {}
    return layer


def test_checked_loader_rejects_bad_tensors_naming_them() -> None:
    layer = _fused_layer()
    rec = _Recorder()
    load_w = checked_loader(layer, "model.layers.0.self_attn.qkv_proj", "weight", rec)
    load_s = checked_loader(layer, "model.layers.0.self_attn.qkv_proj", "weight_scale", rec)
    with pytest.raises(CheckpointError, match=r"qkv_proj\.weight: expected an int8 weight.*bfloat16"):
        load_w(torch.empty(4, 8, dtype=torch.int8), torch.zeros(4, 8, dtype=torch.bfloat16), "q")
    with pytest.raises(CheckpointError, match=r"qkv_proj\.weight_scale: contains NaN"):
        load_s(torch.empty(4), torch.tensor([1.0, float("nan"), 1.0, 1.0]), "q")
    with pytest.raises(CheckpointError, match=r"qkv_proj\.weight_scale: contains non-positive"):
        load_s(torch.empty(4), torch.tensor([1.0, 0.0, 1.0, 1.0]), "q")
    with pytest.raises(CheckpointError, match=r"qkv_proj\.weight_scale \(shard 'k'\): .*shape \(3,\).*\(2,\)"):
        load_s(torch.empty(2), torch.ones(3), "k")
    load_s(torch.empty(4), torch.full((4,), 0.5, dtype=torch.float16), "q")
    assert rec.calls[-1][0].dtype == torch.float32  # scales are stored as float32


def test_missing_shard_of_fused_layer_is_reported() -> None:
    layer = _fused_layer()
    rec = _Recorder()
    load_s = checked_loader(layer, "model.layers.0.self_attn.qkv_proj", "weight_scale", rec)
    load_s(torch.empty(4), torch.ones(4), "q")
    load_s(torch.empty(2), torch.ones(2), "v")
    with pytest.raises(CheckpointError, match=r"qkv_proj\.weight_scale: missing.*shards \[1\]"):
        check_all_loaded(layer, "model.layers.0.self_attn.qkv_proj", ["weight_scale"])
    with pytest.raises(CheckpointError, match=r"qkv_proj\.input_scale: missing.*all shards"):
        check_all_loaded(layer, "model.layers.0.self_attn.qkv_proj", ["input_scale"])
    load_s(torch.empty(2), torch.ones(2), "k")
    check_all_loaded(layer, "model.layers.0.self_attn.qkv_proj", ["weight_scale"])


def test_cpu_int8_experts_match_simulated_reference() -> None:
    """The CPU MoE path: per-expert int8 GEMMs with per-token activations, routed and weighted."""
    from vllm_sq.moe import _experts_reference

    gen = torch.Generator().manual_seed(0)
    num_experts, hidden, inter, tokens, topk = 4, 64, 32, 9, 2
    w13 = torch.randint(-127, 128, (num_experts, 2 * inter, hidden), dtype=torch.int8, generator=gen)
    w2 = torch.randint(-127, 128, (num_experts, hidden, inter), dtype=torch.int8, generator=gen)
    s13 = torch.rand(num_experts, 2 * inter, 1, generator=gen) * 1e-3 + 1e-4
    s2 = torch.rand(num_experts, hidden, 1, generator=gen) * 1e-3 + 1e-4
    x = torch.randn(tokens, hidden, generator=gen)
    topk_ids = torch.stack([torch.randperm(num_experts, generator=gen)[:topk] for _ in range(tokens)])
    topk_weights = torch.softmax(torch.randn(tokens, topk, generator=gen), dim=-1)

    def fq(t: torch.Tensor) -> torch.Tensor:
        q, s = Q.quantize_per_token(t)
        return q.double() * s.double()

    ref = torch.zeros(tokens, hidden, dtype=torch.float64)
    for t in range(tokens):
        for j in range(topk):
            e = int(topk_ids[t, j])
            h = fq(x[t : t + 1]) @ (w13[e].double() * s13[e].double()).t()
            gate, up = h.chunk(2, dim=-1)
            a = (torch.nn.functional.silu(gate) * up).float()
            ref[t] += topk_weights[t, j].double() * (fq(a) @ (w2[e].double() * s2[e].double()).t())[0]
    got = _experts_reference(x, w13, s13, w2, s2, topk_weights, topk_ids, expert_map=None)
    assert ((got.double() - ref).abs().max() / ref.abs().max()).item() < 1e-4


# --- the CUDA kernel classes' glue, on CPU: reference ops stand in for the CUDA ones -------------------------------
# The stand-ins run the real argument checks of vllm_sq.ops (pure shape/dtype logic), so a wrong scale layout, a
# missing zero point or a row-major weight fails here as it would on the GPU; their arithmetic is float64.

def _ref_mm(a, b, sa, sb, bias, out_dtype, azp=None, azp_adj=None):
    acc = a.double() @ b.double()
    if azp is not None:
        acc = acc - azp.double().reshape(-1, 1) * azp_adj.double().reshape(1, -1)
    y = acc * sa.double().reshape(-1, 1) * sb.double().reshape(1, -1)
    return (y + bias.double() if bias is not None else y).to(out_dtype)


def _fake_ours(monkeypatch) -> None:
    from vllm_sq import ops
    from vllm_sq.ops import _checks

    def per_token_quant(x, symmetric=True):
        _checks.activation(x, "x")
        q, s, z = quantize_activation(x, dynamic=True, per_token=True, symmetric=symmetric)
        return q, s, None if z is None else z.reshape(-1)

    def static_quant(x, scale):
        _checks.activation(x, "x")
        _checks.static_scale(scale)
        return quantize_activation(x, dynamic=False, per_token=False, symmetric=True, input_scale=scale)[0]

    def int8_scaled_mm(a, b, sa, sb, bias=None, out_dtype=torch.bfloat16):
        _checks.scaled_mm_args(a, b, sa, sb, bias, out_dtype)
        return _ref_mm(a, b, sa, sb, bias, out_dtype)

    def int8_scaled_mm_azp(a, b, sa, sb, azp_adj, azp, bias=None, out_dtype=torch.bfloat16):
        _checks.scaled_mm_args(a, b, sa, sb, bias, out_dtype)
        _checks.azp_args(a, b, sa, azp_adj, azp)
        return _ref_mm(a, b, sa, sb, bias, out_dtype, azp, azp_adj)

    for name, fn in (("per_token_quant", per_token_quant), ("static_quant", static_quant),
                     ("int8_scaled_mm", int8_scaled_mm), ("int8_scaled_mm_azp", int8_scaled_mm_azp)):
        monkeypatch.setattr(ops, name, fn)


def _fake_vllm(monkeypatch) -> None:
    from vllm import _custom_ops as vops
    from vllm_sq.ops import _checks

    def scaled_int8_quant(x, scale=None, azp=None, symmetric=True):
        assert symmetric and azp is None, "the plugin quantizes asymmetric activations itself"
        if scale is None:
            return quantize_activation(x, dynamic=True, per_token=True, symmetric=True)
        assert scale.numel() == 1 and scale.dtype == torch.float32
        q = quantize_activation(x, dynamic=False, per_token=False, symmetric=True, input_scale=scale)[0]
        return q, scale, None

    def cutlass_scaled_mm(a, b, scale_a, scale_b, out_dtype, bias=None):
        _checks.scaled_mm_args(a, b, scale_a.reshape(-1), scale_b.reshape(-1), bias, out_dtype)
        return _ref_mm(a, b, scale_a, scale_b, bias, out_dtype)

    def cutlass_scaled_mm_azp(a, b, scale_a, scale_b, out_dtype, azp_adj, azp=None, bias=None):
        _checks.scaled_mm_args(a, b, scale_a.reshape(-1), scale_b.reshape(-1), bias, out_dtype)
        assert azp_adj.shape == (1, b.shape[1]) and azp is not None and azp.numel() == a.shape[0]
        return _ref_mm(a, b, scale_a, scale_b, bias, out_dtype, azp, azp_adj)

    for name, fn in (("scaled_int8_quant", scaled_int8_quant), ("cutlass_scaled_mm", cutlass_scaled_mm),
                     ("cutlass_scaled_mm_azp", cutlass_scaled_mm_azp)):
        monkeypatch.setattr(vops, name, fn)


@pytest.mark.parametrize("backend", ["vllm_sq", "vllm"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("traced", [False, True])
def test_cuda_kernel_glue_on_reference_ops(monkeypatch, backend: str, mode: str, traced: bool) -> None:
    """Each activation mode reaches the right quantizer and GEMM with the layouts they require, in eager mode and
    while torch.compile traces (this project's kernel: its quantization ops, which the fusion pass merges into the
    producer; vLLM's: torch-op quantization), for this project's kernels and vLLM's."""
    from vllm_sq.kernels.cuda import VllmCutlassInt8Kernel, VllmSqCutlassKernel

    if backend == "vllm_sq":
        _fake_ours(monkeypatch)
        kernel_cls = VllmSqCutlassKernel
    else:
        _fake_vllm(monkeypatch)
        kernel_cls = VllmCutlassInt8Kernel
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: traced)
    n, k = 48, 64
    layer = _layer(n, k, per_channel=True, static=mode == "static")
    w, ws = layer.weight.data.clone(), layer.weight_scale.data.clone()
    bias = (torch.randn(n) * 0.1).to(torch.bfloat16)
    kernel = kernel_cls(_spec(mode, n, k, torch.bfloat16))
    kernel.process_weights(layer)
    x = _activation(k=k).to(torch.bfloat16).reshape(7, 1, k)
    y = kernel.apply(layer, x, bias)
    assert y.shape == (7, 1, n) and y.dtype == torch.bfloat16
    ref = _exact(x.reshape(7, k).float(), w, ws, bias.float(), mode, torch.tensor([0.08]))
    assert ((y.reshape(7, n).double() - ref).abs().max() / ref.abs().max()).item() < 1e-2
