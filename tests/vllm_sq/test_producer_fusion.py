"""The producer + quantization fusion pass (vllm_sq/producer_fusion.py), run by Inductor.

The functions compiled here are what vLLM traces for a decoder layer: its IR norms (vllm_ir.rms_norm /
fused_add_rms_norm), SiLU-and-mul in torch ops, and vllm_sq's opaque quantization ops. On CPU, reference kernels
stand in for the CUDA ones (each fused op computes exactly its unfused composition), so the tests check which graphs
are rewritten and that the rewritten graph is wired right: codes, scales and the updated residual equal eager
execution. On a GPU (marked `gpu`) the same graphs run the real fused CUDA kernels, within one code of eager.
Inside vLLM, tests/vllm_sq/test_gpu_serving.py checks that the pass fuses every layer of a compiled model.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch._functorch import config as functorch_config
from torch._inductor import config as inductor_config

pytest.importorskip("vllm.ir.ops")

from vllm_sq import producer_fusion  # noqa: E402
from vllm_sq.kernels.quant_torch import quantize_activation  # noqa: E402
from vllm_sq.ops import available  # noqa: E402
from vllm_sq.producer_fusion import ProducerQuantFusionPass  # noqa: E402

GPU_OK, GPU_REASON = available()

EPS = 1e-6
IR = torch.ops.vllm_ir
SQ = torch.ops.vllm_sq


def _quant(v: torch.Tensor, scale: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    if scale is None:
        q, s, _ = quantize_activation(v, dynamic=True, per_token=True, symmetric=True)
        return q, s
    q, _, _ = quantize_activation(v, dynamic=False, per_token=False, symmetric=True, input_scale=scale)
    return q, scale.reshape(1, 1).clone()


def _silu_mul(x: torch.Tensor) -> torch.Tensor:
    d = x.shape[-1] // 2
    return F.silu(x[..., :d]) * x[..., d:]


@pytest.fixture(scope="module", autouse=True)
def cpu_reference_kernels():
    """CPU kernels for the vllm_sq quantization ops, each the unfused composition of the op it fuses."""
    lib = torch.library.Library("vllm_sq", "IMPL")  # noqa: TOR901 (dropped at teardown)

    def fused_add(x, residual, w, eps, scale):
        residual.copy_((x.float() + residual.float()).to(x.dtype))
        return _quant(IR.rms_norm(residual, w, eps), scale)

    kernels = {
        "per_token_quant": lambda x: _quant(x, None),
        "static_quant": lambda x, scale: _quant(x, scale)[0],
        "rms_norm_quant": lambda x, w, eps, scale: _quant(IR.rms_norm(x, w, eps), scale),
        "fused_add_rms_norm_quant": fused_add,
        "silu_and_mul_quant": lambda x, scale: _quant(_silu_mul(x), scale),
        "layer_norm_quant": lambda x, w, b, eps, scale: _quant(F.layer_norm(x, (x.shape[-1],), w, b, eps), scale),
    }
    for name, fn in kernels.items():
        lib.impl(name, fn, "CPU")
    yield
    lib._destroy()


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not GPU_OK, reason=GPU_REASON)])])
def device(request) -> str:
    return request.param


class RecordingPass(ProducerQuantFusionPass):
    """The pass, keeping the call targets of the graph it leaves (Inductor lowers the graph afterwards)."""

    def __call__(self, graph) -> None:
        super().__call__(graph)
        self.targets = [n.target for n in graph.nodes if n.op == "call_function"]


def _compile(fn, *args, tokens: tuple[int, ...] = (0,)):
    """(compiled outputs, the pass) for fn compiled by Inductor with the fusion pass installed.

    As in vLLM, only the token count (dim 0 of the activations, the args at `tokens`) is dynamic.
    """
    torch._dynamo.reset()
    for i in tokens:
        torch._dynamo.mark_dynamic(args[i], 0)
    fusion = RecordingPass()
    # No compile caches: a cached graph would skip the pass.
    with inductor_config.patch(post_grad_custom_post_pass=fusion, fx_graph_cache=False, fx_graph_remote_cache=False), \
            functorch_config.patch(enable_autograd_cache=False):
        out = torch.compile(fn, backend="inductor", fullgraph=True, dynamic=False)(*args)
    return out, fusion


def _assert_same(got, want) -> None:
    """Equal on CPU (reference kernels); on CUDA the fused kernels' reductions may move a code by one."""
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        if g.device.type == "cpu":
            assert torch.equal(g, w)
        elif g.dtype == torch.int8:
            assert int((g.int() - w.int()).abs().max()) <= 1
        else:
            torch.testing.assert_close(g, w, rtol=2e-2, atol=0)


def _assert_close_codes(got, want) -> None:
    """The fused residual-add kernel normalizes the rounded sum it stores (as vLLM's CUDA kernel does), the IR
    op's native form the float32 sum: codes may move by one, scales by a rounding; the residual is exact."""
    (q, s, r), (q_ref, s_ref, r_ref) = got, want
    assert q.dtype == torch.int8 and int((q.int() - q_ref.int()).abs().max()) <= 1
    torch.testing.assert_close(s, s_ref, rtol=2e-2, atol=0)
    assert torch.equal(r, r_ref)


def _inputs(device: str, m: int = 7, k: int = 64, dtype=torch.bfloat16):
    gen = torch.Generator().manual_seed(m)
    x = torch.randn(m, k, generator=gen).to(dtype)
    x[:, 3] *= 30  # an outlier channel
    residual = torch.randn(m, k, generator=gen).to(dtype)
    w = (torch.rand(k, generator=gen) + 0.5).to(dtype)
    return x.to(device), residual.to(device), w.to(device)


@pytest.mark.parametrize("static", [False, True])
def test_rms_norm_then_quant_becomes_rms_norm_quant(static: bool, device: str) -> None:
    x, _, w = _inputs(device)
    scale = torch.tensor([0.05], device=device)

    def layer(x, w, scale):
        y = IR.rms_norm(x, w, EPS)
        return (SQ.static_quant(y, scale),) if static else SQ.per_token_quant(y)

    out, fusion = _compile(layer, x, w, scale)
    assert fusion.fused == {"rms_norm_quant": 1}
    assert SQ.rms_norm_quant.default in fusion.targets
    assert not {IR.rms_norm.default, SQ.per_token_quant.default, SQ.static_quant.default} & set(fusion.targets)
    _assert_same(out, layer(x, w, scale))


def test_residual_add_norm_then_quant_keeps_the_residual_output(device: str) -> None:
    x, residual, w = _inputs(device, 33)
    residual_before = residual.clone()

    def layer(x, residual, w):
        y, new_residual = IR.fused_add_rms_norm(x, residual, w, EPS)
        q, s = SQ.per_token_quant(y)
        return q, s, new_residual * 2  # the updated residual feeds the rest of the layer

    out, fusion = _compile(layer, x, residual, w, tokens=(0, 1))
    assert fusion.fused == {"fused_add_rms_norm_quant": 1}
    assert IR.fused_add_rms_norm.default not in fusion.targets
    assert torch.equal(residual, residual_before), "the graph input was updated in place"
    _assert_close_codes(out, layer(x, residual, w))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("static", [False, True])
def test_silu_and_mul_then_quant_becomes_silu_and_mul_quant(static: bool, dtype, device: str) -> None:
    h = (torch.randn(9, 128, generator=torch.Generator().manual_seed(1)) * 4).to(dtype).to(device)
    scale = torch.tensor([0.03], device=device)

    def mlp(h, scale):
        y = _silu_mul(h).reshape(-1, 64)
        return (SQ.static_quant(y, scale),) if static else SQ.per_token_quant(y)

    out, fusion = _compile(mlp, h, scale)
    assert fusion.fused == {"silu_and_mul_quant": 1}
    assert SQ.silu_and_mul_quant.default in fusion.targets
    assert not {SQ.per_token_quant.default, SQ.static_quant.default} & set(fusion.targets)
    _assert_same(out, mlp(h, scale))


@pytest.mark.parametrize("static", [False, True])
def test_layer_norm_then_quant_becomes_layer_norm_quant(static: bool, device: str) -> None:
    """OPT's torch.nn.LayerNorm (traced natively); eps reaches the fused op."""
    x, _, w = _inputs(device, 12, 96)
    b = (torch.randn(96, generator=torch.Generator().manual_seed(4)) * 0.1).bfloat16().to(device)
    scale = torch.tensor([0.04], device=device)

    def layer(x, w, b, scale):
        y = F.layer_norm(x, (96,), w, b, 1e-3)
        return (SQ.static_quant(y, scale),) if static else SQ.per_token_quant(y)

    out, fusion = _compile(layer, x, w, b, scale)
    assert fusion.fused == {"layer_norm_quant": 1}
    fused = [t for t in fusion.targets if t is SQ.layer_norm_quant.default]
    assert fused and not {SQ.per_token_quant.default, SQ.static_quant.default} & set(fusion.targets)
    _assert_same(out, layer(x, w, b, scale))


@pytest.mark.parametrize("correction", [0, 1])
def test_layer_norm_is_told_from_a_norm_with_unbiased_variance(device: str, correction: int) -> None:
    """The LayerNorm pattern ignores literals: the same graph with an unbiased variance (correction=1) must not
    pass for it, while the biased one, written out by hand, fuses."""
    x, _, w = _inputs(device)
    b = torch.zeros_like(w)

    def layer(x, w, b):
        xf = x.float()
        var, mean = torch.var_mean(xf, dim=1, correction=correction, keepdim=True)
        return SQ.per_token_quant(((xf - mean) * torch.rsqrt(var + 1e-5) * w + b).to(x.dtype))

    _, fusion = _compile(layer, x, w, b)
    assert fusion.fused == ({"layer_norm_quant": 1} if correction == 0 else {})


def test_two_layers_fuse_every_pair(device: str) -> None:
    """A decoder-layer sequence: input norm -> qkv, residual-add norm -> gate_up, SiLU-and-mul -> down. The compiled
    graph computes exactly what calling the three fused ops does."""
    x, residual, w = _inputs(device, 16, 64)
    w_up = (torch.randn(128, 64, generator=torch.Generator().manual_seed(2)) / 8).to(torch.bfloat16).to(device)

    def block(x, residual, w, w_up):
        q1, s1 = SQ.per_token_quant(IR.rms_norm(x, w, EPS))
        y, residual = IR.fused_add_rms_norm((q1.float() * s1).to(x.dtype), residual, w, EPS)
        q2, s2 = SQ.per_token_quant(y)
        gate_up = (q2.float() * s2).to(x.dtype) @ w_up.t()
        q3, s3 = SQ.per_token_quant(_silu_mul(gate_up))
        return q3, s3, residual

    def fused_block(x, residual, w, w_up):
        q1, s1 = SQ.rms_norm_quant(x, w, EPS, None)
        residual = residual.clone()
        q2, s2 = SQ.fused_add_rms_norm_quant((q1.float() * s1).to(x.dtype), residual, w, EPS, None)
        gate_up = (q2.float() * s2).to(x.dtype) @ w_up.t()
        q3, s3 = SQ.silu_and_mul_quant(gate_up, None)
        return q3, s3, residual

    out, fusion = _compile(block, x, residual, w, w_up, tokens=(0, 1))
    assert fusion.fused == {"rms_norm_quant": 1, "fused_add_rms_norm_quant": 1, "silu_and_mul_quant": 1}
    _assert_same(out, fused_block(x, residual, w, w_up))


def test_left_alone_when_the_producer_output_has_another_reader(device: str) -> None:
    x, _, w = _inputs(device)

    def layer(x, w):
        y = IR.rms_norm(x, w, EPS)
        q, s = SQ.per_token_quant(y)
        return q, s, y.sum()

    out, fusion = _compile(layer, x, w)
    assert not fusion.fused and SQ.per_token_quant.default in fusion.targets
    _assert_same(out, layer(x, w))


def test_left_alone_for_dynamic_per_tensor_scales(device: str) -> None:
    """O2 quantization computes its scale from the activation: the norm output has two readers."""
    x, _, w = _inputs(device)

    def layer(x, w):
        y = IR.rms_norm(x, w, EPS)
        return (SQ.static_quant(y, y.abs().amax().float().reshape(1) / 127),)

    _, fusion = _compile(layer, x, w)
    assert not fusion.fused


def test_left_alone_when_the_fused_op_would_reject_the_inputs(device: str) -> None:
    """A float32 norm weight on bfloat16 activations: rms_norm_quant requires matching dtypes."""
    x, _, w = _inputs(device)

    def layer(x, w):
        return SQ.per_token_quant(IR.rms_norm(x, w, EPS))

    out, fusion = _compile(layer, x, w.float())
    assert not fusion.fused
    _assert_same(out, layer(x, w.float()))


def test_left_alone_for_swapped_halves(device: str) -> None:
    """silu(h[:, d:]) * h[:, :d] has the pattern's shape but applies SiLU to the wrong half."""
    h = torch.randn(5, 128, generator=torch.Generator().manual_seed(5)).bfloat16().to(device)

    def mlp(h):
        return SQ.per_token_quant(F.silu(h[:, 64:]) * h[:, :64])

    _, fusion = _compile(mlp, h)
    assert not fusion.fused


def test_left_alone_for_an_uneven_split(device: str) -> None:
    """silu(h[:, :d]) * h[:, d:2d] of a wider h is not SiLU-and-mul."""
    h = torch.randn(5, 160, generator=torch.Generator().manual_seed(3)).bfloat16().to(device)

    def mlp(h):
        return SQ.per_token_quant(F.silu(h[:, :64]) * h[:, 64:128])

    _, fusion = _compile(mlp, h)
    assert not fusion.fused


def _config(**passes):
    return SimpleNamespace(compilation_config=SimpleNamespace(inductor_compile_config=dict(passes)))


def test_install_adds_the_pass_once() -> None:
    from vllm.platforms import current_platform

    cfg = _config()
    producer_fusion.install(cfg)
    installed = cfg.compilation_config.inductor_compile_config[current_platform.pass_key]
    assert isinstance(installed, ProducerQuantFusionPass)
    producer_fusion.install(cfg)
    assert cfg.compilation_config.inductor_compile_config[current_platform.pass_key] is installed
    assert installed.uuid() == ProducerQuantFusionPass().uuid() and len(installed.uuid()) == 64


def test_install_leaves_another_pass_in_place() -> None:
    from vllm.platforms import current_platform

    other = object()
    cfg = _config(**{current_platform.pass_key: other})
    producer_fusion.install(cfg)
    assert cfg.compilation_config.inductor_compile_config[current_platform.pass_key] is other


def test_the_installed_pass_enters_the_compile_cache_key() -> None:
    """vLLM hashes the compilation config (the pass by its uuid) into its compile-cache key, so a graph compiled
    with the pass is never reused without it (after vllm_sq._C is built or removed) or vice versa."""
    from vllm.config import CompilationConfig

    cc = CompilationConfig()
    before = cc.compute_hash()
    producer_fusion.install(SimpleNamespace(compilation_config=cc))
    assert cc.compute_hash() != before
