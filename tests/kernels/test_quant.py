"""Activation quantization kernels, alone and fused, against float32 references (GPU)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kernel_refs import gpu_only, poison_allocator, ref_quant_asym, ref_quant_sym

pytestmark = gpu_only

SHAPES = [(1, 16), (7, 80), (33, 4096), (255, 11008), (1024, 5120), (4099, 264), (5, 12)]
DTYPES = [torch.bfloat16, torch.float16]


def _x(m: int, k: int, dtype, seed: int) -> torch.Tensor:
    gen = torch.Generator("cuda").manual_seed(seed)
    x = torch.randn(m, k, device="cuda", generator=gen) * 3
    x[:, :: max(k // 7, 1)] *= 20  # outlier channels
    return x.to(dtype)


def _assert_int8_close(q: torch.Tensor, ref: torch.Tensor, max_frac: float = 0.0) -> None:
    """Codes equal, or (for fused ops, whose reductions differ in rounding order) off by one in a few places."""
    assert q.dtype == torch.int8 and q.shape == ref.shape
    diff = (q.int() - ref.int()).abs()
    assert int(diff.max()) <= (1 if max_frac else 0), f"codes differ by up to {int(diff.max())}"
    assert float((diff > 0).float().mean()) <= max_frac


def _check_per_token_quant_symmetric(m, k, dtype):
    from vllm_sq.ops import per_token_quant

    x = _x(m, k, dtype, m + k)
    x[0] = 0  # an all-zero row gets scale 1
    poison_allocator()
    q, s, azp = per_token_quant(x)
    ref_q, ref_s = ref_quant_sym(x)
    assert azp is None and s.shape == (m, 1) and s.dtype == torch.float32
    assert not torch.isnan(s).any() and float(s[0]) == 1.0
    torch.testing.assert_close(s, ref_s, rtol=0, atol=0)
    _assert_int8_close(q, ref_q)
    assert int(q.min()) >= -127


def _check_per_token_quant_asymmetric(m, k, dtype):
    from vllm_sq.ops import per_token_quant

    x = _x(m, k, dtype, 3 * m + k) + 2  # shifted: the zero point matters
    x[0] = 5  # one-sided constant row: the range [0, 5] still includes 0
    if m > 1:
        x[1] = 0  # all-zero row: scale 1
    poison_allocator()
    q, s, azp = per_token_quant(x, symmetric=False)
    ref_q, ref_s, ref_z = ref_quant_asym(x)
    torch.testing.assert_close(s, ref_s, rtol=0, atol=0)
    torch.testing.assert_close(azp, ref_z, rtol=0, atol=0)
    _assert_int8_close(q, ref_q)
    # dequantization recovers x to half a step
    deq = s * (q.float() - azp.float()[:, None])
    assert float(((deq - x.float()).abs() / s).max()) <= 0.5 + 1e-3


def _check_static_quant(m, k, dtype):
    from vllm_sq.ops import static_quant

    x = _x(m, k, dtype, m * k)
    scale = torch.tensor([float(x.float().abs().max()) / 127 * 0.7], device="cuda")  # some values clip
    poison_allocator()
    q = static_quant(x, scale)
    _assert_int8_close(q, ref_quant_sym(x, scale)[0])


def _rms_norm_ref(h: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    """The unfused op as vLLM/HF compute it: normalize in fp32, round to the dtype, multiply by the weight."""
    hf = h.float()
    return (hf * torch.rsqrt(hf.pow(2).mean(dim=-1, keepdim=True) + eps)).to(h.dtype) * w


def _check_rms_norm_quant(m, k, dtype, static):
    from vllm_sq.ops import rms_norm_quant

    x = _x(m, k, dtype, m + 2 * k)
    w = (torch.rand(k, device="cuda") + 0.5).to(dtype)
    eps = 1e-6
    normed = _rms_norm_ref(x, w, eps)
    scale = torch.tensor([float(normed.float().abs().max()) / 127], device="cuda") if static else None
    poison_allocator()
    q, s = rms_norm_quant(x, w, eps, scale)
    ref_q, ref_s = ref_quant_sym(normed, scale)
    assert not torch.isnan(s).any()
    torch.testing.assert_close(s, ref_s, rtol=1e-2, atol=0)
    _assert_int8_close(q, ref_q, max_frac=0.01)


def _check_fused_add_rms_norm_quant(m, k, dtype):
    from vllm_sq.ops import fused_add_rms_norm_quant

    x = _x(m, k, dtype, 5 * m + k)
    residual = _x(m, k, dtype, 7 * m + k)
    w = (torch.rand(k, device="cuda") + 0.5).to(dtype)
    eps = 1e-5
    h = x + residual
    normed = _rms_norm_ref(h, w, eps)
    poison_allocator()
    q, s = fused_add_rms_norm_quant(x, residual, w, eps)
    torch.testing.assert_close(residual, h, rtol=0, atol=0)
    ref_q, ref_s = ref_quant_sym(normed)
    torch.testing.assert_close(s, ref_s, rtol=1e-2, atol=0)
    _assert_int8_close(q, ref_q, max_frac=0.01)


def _check_silu_and_mul_quant(m, k, dtype, static):
    from vllm_sq.ops import silu_and_mul_quant

    x = _x(m, 2 * k, dtype, 11 * m + k)
    gate, up = x[:, :k], x[:, k:]
    act = F.silu(gate.float()).to(dtype) * up
    scale = torch.tensor([float(act.float().abs().max()) / 127], device="cuda") if static else None
    poison_allocator()
    q, s = silu_and_mul_quant(x, scale)
    assert q.shape == (m, k)
    ref_q, ref_s = ref_quant_sym(act, scale)
    torch.testing.assert_close(s, ref_s, rtol=1e-2, atol=0)
    _assert_int8_close(q, ref_q, max_frac=0.01)


def _check_layer_norm_quant(m, k, dtype, static):
    from vllm_sq.ops import layer_norm_quant

    x = _x(m, k, dtype, 13 * m + k) + 1
    w = (torch.rand(k, device="cuda") + 0.5).to(dtype)
    b = torch.randn(k, device="cuda").to(dtype)
    eps = 1e-5
    normed = F.layer_norm(x.float(), (k,), w.float(), b.float(), eps).to(dtype)
    scale = torch.tensor([float(normed.float().abs().max()) / 127], device="cuda") if static else None
    poison_allocator()
    q, s = layer_norm_quant(x, w, b, eps, scale)
    ref_q, ref_s = ref_quant_sym(normed, scale)
    torch.testing.assert_close(s, ref_s, rtol=1e-2, atol=0)
    _assert_int8_close(q, ref_q, max_frac=0.01)


@pytest.mark.parametrize("m,k", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_per_token_quant_symmetric_matches_reference_exactly(m, k, dtype):
    _check_per_token_quant_symmetric(m, k, dtype)


@pytest.mark.parametrize("m,k", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_per_token_quant_asymmetric_matches_reference_exactly(m, k, dtype):
    _check_per_token_quant_asymmetric(m, k, dtype)


@pytest.mark.parametrize("m,k", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_static_quant_matches_reference_exactly(m, k, dtype):
    _check_static_quant(m, k, dtype)


@pytest.mark.parametrize("m,k", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("static", [False, True])
def test_rms_norm_quant_matches_unfused_composition(m, k, dtype, static):
    _check_rms_norm_quant(m, k, dtype, static)


@pytest.mark.parametrize("m,k", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_add_rms_norm_quant_updates_residual_and_matches(m, k, dtype):
    _check_fused_add_rms_norm_quant(m, k, dtype)


@pytest.mark.parametrize("m,k", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("static", [False, True])
def test_silu_and_mul_quant_matches_unfused_composition(m, k, dtype, static):
    _check_silu_and_mul_quant(m, k, dtype, static)


@pytest.mark.parametrize("m,k", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("static", [False, True])
def test_layer_norm_quant_matches_unfused_composition(m, k, dtype, static):
    _check_layer_norm_quant(m, k, dtype, static)


# Row lengths K (of the quantized output; silu_and_mul reads 2K) that hit every register bucket of the kernels:
# a row of nvec = K / VEC vectors is held in registers with the smallest NV in {1, 2, 4, 8} such that
# nvec <= NV * 1024; longer rows take the multi-pass path. VEC = 8 when K % 8 == 0 (and 16-byte aligned), else 1.
# The buckets noted are those of few rows; with M = 1024 (many rows) CTAs hold at most 256 threads where NV = 8
# allows it, so the same K land in other buckets (4096: NV 2; 8192: NV 4; 11008: NV 8; 27648: NV 4 with 864 threads).
BUCKET_KS = [
    # VEC = 8
    8,  # NV 1, 32 threads, one vector
    1000,  # NV 1
    4096,  # NV 1
    8192,  # NV 1, 1024 threads
    11008,  # NV 2 (Llama-2-7B down_proj input)
    14336,  # NV 2
    27648,  # NV 4
    40000,  # NV 8
    65536,  # NV 8, 1024 threads
    65544,  # multi-pass
    # VEC = 1
    1001,  # NV 1
    1025,  # NV 2
    4095,  # NV 4
    8191,  # NV 8
    8193,  # multi-pass
    11010,  # multi-pass
]
BUCKET_CASES = [
    pytest.param(m, k, dtype, id=f"{m}x{k}-{str(dtype).split('.')[-1]}")
    for k in BUCKET_KS
    for m, dtype in [(1, torch.bfloat16), (7, torch.bfloat16), (1024, torch.bfloat16), (7, torch.float16)]
]


@pytest.mark.parametrize("m,k,dtype", BUCKET_CASES)
def test_per_token_quant_register_buckets(m, k, dtype):
    _check_per_token_quant_symmetric(m, k, dtype)
    _check_per_token_quant_asymmetric(m, k, dtype)
    _check_static_quant(m, k, dtype)


@pytest.mark.parametrize("m,k,dtype", BUCKET_CASES)
@pytest.mark.parametrize("static", [False, True])
def test_rms_norm_quant_register_buckets(m, k, dtype, static):
    _check_rms_norm_quant(m, k, dtype, static)
    if not static:
        _check_fused_add_rms_norm_quant(m, k, dtype)


@pytest.mark.parametrize("m,k,dtype", BUCKET_CASES)
@pytest.mark.parametrize("static", [False, True])
def test_silu_and_mul_quant_register_buckets(m, k, dtype, static):
    _check_silu_and_mul_quant(m, k, dtype, static)


# Between one row per SM and the many-rows CTAs (133-4,095 rows on an H100), rows of 8,200-12,800 (VEC 8) run as two
# 1,024-thread CTAs per SM capped at 40 registers (quant_kernels.cu, silu_and_mul_quant); both edges, 7B down_proj's
# 11,008, and just past each edge (8,192: NV 1; 12,808: the 512-thread cap).
@pytest.mark.parametrize("m", [133, 256, 4095])
@pytest.mark.parametrize("k", [8192, 8200, 11008, 12800, 12808])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("static", [False, True])
def test_silu_and_mul_quant_two_ctas_per_sm(m, k, dtype, static):
    _check_silu_and_mul_quant(m, k, dtype, static)


@pytest.mark.parametrize("m,k,dtype", BUCKET_CASES)
@pytest.mark.parametrize("static", [False, True])
def test_layer_norm_quant_register_buckets(m, k, dtype, static):
    _check_layer_norm_quant(m, k, dtype, static)


def _near_half_steps(hi: float, scale: float, dtype) -> torch.Tensor:
    """One row: hi (its abs-max), then (j + 1/2) * scale for every code j and the dtype's neighbours of each."""
    j = torch.arange(-127, 127, device="cuda", dtype=torch.float64)
    mid = ((j + 0.5) * scale).to(dtype)
    bits = mid.view(torch.int16)
    row = torch.cat([mid, (bits + 1).view(dtype), (bits - 1).view(dtype)])
    row = row[row.float().abs() < hi]
    return torch.cat([torch.tensor([hi], device="cuda").to(dtype), row])


# abs-max of the rows: typical activations, and far out, where the scale leaves the [2^-90, 2^90] range of the
# kernels' reciprocal division (csrc/quant/quant_kernels.cu, Divisor) for the plain division
@pytest.mark.parametrize("magnitude", [1e-29, 1e-20, 1e-3, 1.0, 3e4, 1e20, 1e30])
@pytest.mark.parametrize("dtype", DTYPES)
def test_quantization_rounds_like_division_next_to_half_steps(magnitude, dtype):
    """Where v / scale lies at or next to a half step, a quotient one ulp off rounds to the other code: the codes
    equal the IEEE-division reference, dynamic (the scale from the row) and static (a given scale)."""
    from vllm_sq.ops import per_token_quant, static_quant

    if dtype == torch.float16 and not 1e-3 <= magnitude <= 3e4:
        pytest.skip("outside float16's range")
    rows = []
    for r in range(16):
        hi = float(torch.tensor(magnitude * (1 + r / 16)).to(dtype))
        rows.append(_near_half_steps(hi, float(torch.tensor(hi / 127, dtype=torch.float32)), dtype))
    width = min(len(row) for row in rows) // 8 * 8
    x = torch.stack([row[:width] for row in rows])
    q, s, _ = per_token_quant(x)
    ref_q, ref_s = ref_quant_sym(x)
    torch.testing.assert_close(s, ref_s, rtol=0, atol=0)
    _assert_int8_close(q, ref_q)

    scale = torch.tensor([magnitude / 127 * 1.1], dtype=torch.float32, device="cuda")
    xs = _near_half_steps(float(scale) * 127, float(scale), dtype)
    xs = xs[: len(xs) // 8 * 8].reshape(1, -1)
    _assert_int8_close(static_quant(xs, scale), ref_quant_sym(xs, scale)[0])


def test_asymmetric_and_static_codes_round_half_to_even():
    """Ties round to even after the zero point is added, and infinities clip (the kernels round by adding 1.5 * 2^23:
    quant_kernels.cu, Int8Rounder)."""
    from vllm_sq.ops import per_token_quant, static_quant

    # lo = 0, hi = 255: scale 1, zero point -128, so each code is round(x) - 128
    x = torch.tensor([[0, 255, 0.5, 1.5, 2.5, 3.5, 100.5, 254.5]], device="cuda", dtype=torch.float16)
    q, s, azp = per_token_quant(x, symmetric=False)
    assert float(s) == 1.0 and int(azp) == -128
    assert q.tolist() == [[-128, 127, -128, -126, -126, -124, -28, 126]]
    ref_q, _, _ = ref_quant_asym(x)
    assert torch.equal(q, ref_q)

    xs = torch.tensor([[float("inf"), float("-inf"), 1e4, -1e4, 0.5, 1.5, -0.5, -2.5]], device="cuda",
                      dtype=torch.float16)
    qs = static_quant(xs, torch.ones(1, device="cuda"))
    assert qs.tolist() == [[127, -127, 127, -127, 0, 2, 0, -2]]
    assert torch.equal(qs, ref_quant_sym(xs, torch.ones(1, device="cuda"))[0])


@pytest.mark.parametrize("d", [8, 1])  # VEC 8 and the scalar path
@pytest.mark.parametrize("dtype", DTYPES)
def test_silu_and_mul_quant_every_gate_value(d, dtype):
    """Every finite gate value of the dtype, one row each (g repeated, up = 1): the row's scale, |v| / 127, shows
    v = T(silu(g)) bit for bit, and v must be the unfused op's (SiLU in float32, rounded to T). The kernel's SiLU
    divides without the range check of '/' (quant_kernels.cu, silu_fast); this covers its whole domain."""
    from vllm_sq.ops import silu_and_mul_quant

    g = torch.arange(-32768, 32768, dtype=torch.int32, device="cuda").to(torch.int16).view(dtype)
    g = g[torch.isfinite(g)]
    x = torch.cat([g[:, None].expand(-1, d), torch.ones(len(g), d, device="cuda", dtype=dtype)], dim=1)
    poison_allocator()
    q, s = silu_and_mul_quant(x.contiguous())
    v = F.silu(g.float()).to(dtype)[:, None].expand(-1, d)
    ref_q, ref_s = ref_quant_sym(v)
    bad = (s != ref_s).reshape(-1)
    assert not bad.any(), f"{int(bad.sum())} gate values differ, e.g. {g[bad][:8].tolist()}"
    assert torch.equal(q, ref_q)


def test_unaligned_input_takes_the_scalar_path():
    """A 16-byte-misaligned contiguous input (K % 8 == 0) uses VEC = 1: same codes as the aligned copy."""
    from vllm_sq.ops import per_token_quant, silu_and_mul_quant

    # VEC 1 when misaligned: per_token_quant NV 4 (K 4096) and multi-pass (K 16384); silu_and_mul NV 2 and NV 8
    for m, k in [(7, 4096), (3, 16384)]:
        x = _x(m, k, torch.bfloat16, k)
        buf = torch.empty(m * k + 1, device="cuda", dtype=torch.bfloat16)
        xu = buf[1:].view(m, k)
        xu.copy_(x)
        assert xu.data_ptr() % 16 != 0 and xu.is_contiguous()
        q, s, _ = per_token_quant(xu)
        ref_q, ref_s = ref_quant_sym(x)
        torch.testing.assert_close(s, ref_s, rtol=0, atol=0)
        _assert_int8_close(q, ref_q)
        qa, sa = silu_and_mul_quant(x)
        qu, su = silu_and_mul_quant(xu)
        torch.testing.assert_close(su, sa, rtol=0, atol=0)
        assert torch.equal(qu, qa)


def test_cpp_entry_rejects_bad_arguments():
    """Direct torch.ops calls (no Python checks) fail with the argument named."""
    x = torch.randn(4, 32, device="cuda")
    with pytest.raises(RuntimeError, match="x must be bfloat16 or float16"):
        torch.ops.vllm_sq.per_token_quant(x)
    xb = x.bfloat16()
    with pytest.raises(RuntimeError, match="scale must hold one element"):
        torch.ops.vllm_sq.static_quant(xb, torch.ones(2, device="cuda"))
    with pytest.raises(RuntimeError, match="weight must be a contiguous"):
        torch.ops.vllm_sq.rms_norm_quant(xb, torch.ones(16, device="cuda", dtype=torch.bfloat16), 1e-6, None)
    with pytest.raises(RuntimeError, match="residual must have the shape of x"):
        torch.ops.vllm_sq.fused_add_rms_norm_quant(xb, xb[:2].clone(), torch.ones(32, device="cuda").bfloat16(),
                                                   1e-6, None)
    with pytest.raises(RuntimeError, match="bias must have the dtype of x"):
        torch.ops.vllm_sq.layer_norm_quant(xb, torch.ones(32, device="cuda").bfloat16(), torch.ones(32, device="cuda"),
                                           1e-5, None)
    with pytest.raises(RuntimeError, match="odd"):
        torch.ops.vllm_sq.silu_and_mul_quant(torch.randn(4, 33, device="cuda").bfloat16(), None)
