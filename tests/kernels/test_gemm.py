"""int8_scaled_mm / int8_scaled_mm_azp against a float64 reference (GPU)."""

from __future__ import annotations

import re

import pytest
import torch

from kernel_refs import assert_gemm_close, gemm_inputs, gpu_only, poison_allocator, ref_scaled_mm

pytestmark = gpu_only

MS = [1, 7, 16, 33, 64, 255, 1024, 4099]
# (N, K): smallest legal, odd multiples of 16, a Llama-sized square, a decode-sized wide one.
NKS = [(16, 16), (48, 80), (272, 208), (1024, 512)]
@pytest.mark.parametrize("m", MS)
@pytest.mark.parametrize("n,k", NKS)
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16])
def test_int8_scaled_mm_per_token_per_channel_bias(m, n, k, out_dtype):
    from vllm_sq.ops import int8_scaled_mm

    gen = torch.Generator("cuda").manual_seed(m * 7919 + n * 31 + k)
    a, w, sa, sb, bias = gemm_inputs(m, n, k, True, True, True, out_dtype, gen)
    poison_allocator()
    out = int8_scaled_mm(a, w.t(), sa, sb, bias, out_dtype)
    assert_gemm_close(out, ref_scaled_mm(a, w, sa, sb, bias), out_dtype)


@pytest.mark.parametrize("m", [1, 33, 1024])
@pytest.mark.parametrize("per_token", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16])
def test_int8_scaled_mm_scale_granularities(m, per_token, per_channel, with_bias, out_dtype):
    from vllm_sq.ops import int8_scaled_mm

    n, k = 272, 208
    gen = torch.Generator("cuda").manual_seed(m + 2 * per_token + 4 * per_channel + 8 * with_bias)
    a, w, sa, sb, bias = gemm_inputs(m, n, k, per_token, per_channel, with_bias, out_dtype, gen)
    poison_allocator()
    out = int8_scaled_mm(a, w.t(), sa, sb, bias, out_dtype)
    assert_gemm_close(out, ref_scaled_mm(a, w, sa, sb, bias), out_dtype)


def test_int8_scaled_mm_accepts_flat_scales():
    from vllm_sq.ops import int8_scaled_mm

    gen = torch.Generator("cuda").manual_seed(5)
    a, w, sa, sb, bias = gemm_inputs(7, 48, 80, True, True, False, torch.bfloat16, gen)
    ref = int8_scaled_mm(a, w.t(), sa, sb)
    out = int8_scaled_mm(a, w.t(), sa.reshape(-1), sb.reshape(-1))
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


@pytest.mark.parametrize("m", [1, 12, 40, 100, 200, 700, 2000])
@pytest.mark.parametrize("n", [4096, 5120, 6144, 12288, 22016])
def test_dispatch_table_regimes(m, n):
    """Every branch of the dispatch table (M buckets x small/mid/large N, one-wave rules) on the default path."""
    from vllm_sq.ops import int8_scaled_mm

    k = 512
    gen = torch.Generator("cuda").manual_seed(m * 7 + n)
    a, w, sa, sb, bias = gemm_inputs(m, n, k, True, True, True, torch.bfloat16, gen)
    poison_allocator()
    out = int8_scaled_mm(a, w.t(), sa, sb, bias, torch.bfloat16)
    assert_gemm_close(out, ref_scaled_mm(a, w, sa, sb, bias), torch.bfloat16)


def _configs() -> list[int]:
    from vllm_sq.ops import gemm_configs

    return list(range(len(gemm_configs())))


@pytest.mark.parametrize("m", [1, 33, 255, 1024])
@pytest.mark.parametrize("n,k", [(272, 208), (4096, 512), (5120, 1040)])
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16])
def test_every_tile_configuration(m, n, k, out_dtype):
    """Each configuration the dispatch table may pick (or a benchmark forces) computes the same function."""
    from vllm_sq.ops import gemm_configs, int8_scaled_mm

    names = gemm_configs()
    assert names, "no GEMM configurations for this GPU"
    gen = torch.Generator("cuda").manual_seed(m + n + k)
    a, w, sa, sb, bias = gemm_inputs(m, n, k, True, True, True, out_dtype, gen)
    ref = ref_scaled_mm(a, w, sa, sb, bias)
    for config, name in enumerate(names):
        poison_allocator()
        out = int8_scaled_mm(a, w.t(), sa, sb, bias, out_dtype, config=config)
        try:
            assert_gemm_close(out, ref, out_dtype)
        except AssertionError as exc:
            raise AssertionError(f"configuration {name}: {exc}") from exc


@pytest.mark.parametrize("m", [1, 2, 7, 8, 9, 13, 16, 24, 33])
# K: whole 512-byte chunks plus 64 bytes (4160), 256 (11008), 16 (4112, 1040: a partial 64-byte step) or nothing
# (8192), and 192 bytes (one partial chunk, fewer than the ring's stages; five of the eight warps get no step);
# N: one partial 16-row block, a partial 32-row CTA, and a Llama-sized width; 8720 rows (273 CTAs: more than one
# wave).
@pytest.mark.parametrize(
    "n,k", [(48, 4160), (272, 11008), (4096, 4112), (16, 8192), (8720, 1040), (8720, 192)])
@pytest.mark.parametrize("per_token,per_channel,with_bias", [(True, True, True), (False, False, False)])
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16])
def test_skinny_configurations(m, n, k, per_token, per_channel, with_bias, out_dtype):
    """The skinny-M kernel (no CUTLASS) in each configuration: M within one CTA's tokens and beyond (more CTAs per
    row block), rows and K ragged against its 32-row CTAs, 64-byte steps and 512-byte shared-ring chunks."""
    from vllm_sq.ops import gemm_configs, int8_scaled_mm

    skinny = [(i, name) for i, name in enumerate(gemm_configs()) if name.startswith("Skinny")]
    if not skinny:
        pytest.skip("no skinny configurations on this GPU's table")
    gen = torch.Generator("cuda").manual_seed(m * 131 + n + k)
    a, w, sa, sb, bias = gemm_inputs(m, n, k, per_token, per_channel, with_bias, out_dtype, gen)
    ref = ref_scaled_mm(a, w, sa, sb, bias)
    for config, name in skinny:
        poison_allocator()
        out = int8_scaled_mm(a, w.t(), sa, sb, bias, out_dtype, config=config)
        try:
            assert_gemm_close(out, ref, out_dtype)
        except AssertionError as exc:
            raise AssertionError(f"configuration {name}: {exc}") from exc


@pytest.mark.parametrize("m", [1, 16, 64, 255, 1024])
@pytest.mark.parametrize("n,k", [(48, 80), (1024, 512)])
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16])
def test_int8_scaled_mm_azp(m, n, k, out_dtype):
    from vllm_sq.ops import int8_scaled_mm_azp

    gen = torch.Generator("cuda").manual_seed(m * 3 + n + k)
    a = torch.randint(-128, 128, (m, k), dtype=torch.int8, device="cuda", generator=gen)
    _, w, sa, sb, bias = gemm_inputs(m, n, k, True, True, True, out_dtype, gen)
    azp = torch.randint(-128, 128, (m,), dtype=torch.int32, device="cuda", generator=gen)
    azp_adj = w.int().sum(dim=1, dtype=torch.int32)
    poison_allocator()
    out = int8_scaled_mm_azp(a, w.t(), sa, sb, azp_adj, azp, bias, out_dtype)
    assert_gemm_close(out, ref_scaled_mm(a, w, sa, sb, bias, azp, azp_adj), out_dtype)


def test_dequantizes_real_activations_end_to_end():
    """per_token_quant + int8_scaled_mm approximates the bf16 matmul within int8 quantization error."""
    from vllm_sq.ops import int8_scaled_mm, per_token_quant

    gen = torch.Generator("cuda").manual_seed(11)
    x = torch.randn(64, 1024, device="cuda", generator=gen).bfloat16()
    w = torch.randn(512, 1024, device="cuda", generator=gen).bfloat16()
    sw = w.float().abs().amax(dim=1, keepdim=True) / 127
    wq = (w.float() / sw).round().clamp(-127, 127).to(torch.int8)
    xq, sx, _ = per_token_quant(x)
    out = int8_scaled_mm(xq, wq.t(), sx, sw.reshape(1, -1), None, torch.bfloat16)
    ref = x.float() @ w.float().t()
    assert float((out.float() - ref).norm() / ref.norm()) < 0.02


@pytest.mark.parametrize("m", [4, 16])
def test_cuda_graph_replay_sees_new_inputs(m):
    """Captured quantize + GEMM recomputes from the inputs on every replay: M = 16 takes a stream-K workspace,
    M = 4 the skinny kernel launched as a programmatic dependent of the quantization (csrc/pdl.cuh)."""
    from vllm_sq.ops import int8_scaled_mm, per_token_quant

    gen = torch.Generator("cuda").manual_seed(3)
    w = torch.randint(-127, 128, (4096, 512), dtype=torch.int8, device="cuda", generator=gen)
    sw = torch.rand(1, 4096, device="cuda", generator=gen) * 0.01
    x = torch.randn(m, 512, device="cuda", generator=gen).bfloat16()

    def step():
        xq, sx, _ = per_token_quant(x)
        return int8_scaled_mm(xq, w.t(), sx, sw, None, torch.bfloat16)

    step()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    for _ in range(3):
        x.copy_(torch.randn(m, 512, device="cuda", generator=gen).bfloat16())
        graph.replay()
        torch.testing.assert_close(out, step(), rtol=0, atol=0)


def test_fake_registration_traces_under_compile():
    """Dynamo traces the ops through their fake implementations (fullgraph: no graph breaks)."""
    from vllm_sq.ops import int8_scaled_mm, per_token_quant

    w = torch.randint(-127, 128, (256, 128), dtype=torch.int8, device="cuda")
    sw = torch.rand(1, 256, device="cuda")

    def f(x):
        xq, sx, _ = per_token_quant(x)
        return int8_scaled_mm(xq, w.t(), sx, sw, None, torch.bfloat16)

    x = torch.randn(8, 128, device="cuda").bfloat16()
    compiled = torch.compile(f, backend="eager", fullgraph=True, dynamic=True)
    torch.testing.assert_close(compiled(x), f(x), rtol=0, atol=0)
    for op, args in ((torch.ops.vllm_sq.per_token_quant.default, (x,)),
                     (torch.ops.vllm_sq.int8_scaled_mm.default,
                      (x.to(torch.int8), w.t(), torch.ones(8, device="cuda"), sw.reshape(-1), None,
                       torch.bfloat16, -1))):
        torch.library.opcheck(op, args, test_utils=("test_schema", "test_faketensor"))


@pytest.mark.parametrize("bad,message", [
    ("a_dtype", "a must be int8"),
    ("b_row_major", "b must be column-major"),
    ("k_align", "multiple of 16"),
    ("n_align", "N = b.shape[1] must be a multiple of 16"),
    ("a_scales_shape", "a_scales must hold 1"),
    ("b_scales_dtype", "b_scales must be float32"),
    ("bias_dtype", "bias must have out_dtype"),
    ("out_dtype", "out_dtype must be bfloat16 or float16"),
])
def test_cpp_entry_rejects_bad_arguments(bad, message):
    """The C++ checks (reached through torch.ops directly, bypassing the Python ones) name the argument."""
    m, n, k = 8, 32, 64
    a = torch.randint(-127, 128, (m, k), dtype=torch.int8, device="cuda")
    b = torch.randint(-127, 128, (n, k), dtype=torch.int8, device="cuda").t()
    sa, sb = torch.ones(m, device="cuda"), torch.ones(n, device="cuda")
    bias, out_dtype = None, torch.bfloat16
    if bad == "a_dtype":
        a = a.float()
    elif bad == "b_row_major":
        b = b.contiguous()
    elif bad == "k_align":
        a, b = a[:, :40].contiguous(), b[:40, :].t().contiguous().t()
    elif bad == "n_align":
        b, sb = b[:, :24].t().contiguous().t(), sb[:24].contiguous()
    elif bad == "a_scales_shape":
        sa = torch.ones(m + 1, device="cuda")
    elif bad == "b_scales_dtype":
        sb = sb.half()
    elif bad == "bias_dtype":
        bias = torch.zeros(n, device="cuda", dtype=torch.float16)
    elif bad == "out_dtype":
        out_dtype = torch.float32
    with pytest.raises(RuntimeError, match=re.escape(message)):
        torch.ops.vllm_sq.int8_scaled_mm(a, b, sa, sb, bias, out_dtype, -1)
