"""Python-side argument checks and availability reporting (CPU: runs in CI)."""

from __future__ import annotations

import pytest
import torch

from vllm_sq.ops import _checks, available, int8_scaled_mm, per_token_quant


def _gemm_args(m=8, n=32, k=64):
    a = torch.zeros(m, k, dtype=torch.int8)
    b = torch.zeros(n, k, dtype=torch.int8).t()
    return a, b, torch.ones(m, 1), torch.ones(1, n)


def test_valid_arguments_pass():
    a, b, sa, sb = _gemm_args()
    _checks.scaled_mm_args(a, b, sa, sb, torch.zeros(32, dtype=torch.bfloat16), torch.bfloat16)
    _checks.scaled_mm_args(a, b, torch.ones(1, 1), torch.ones(1), None, torch.float16)


@pytest.mark.parametrize("mutate,exc,message", [
    (lambda a, b, sa, sb: (a.float(), b, sa, sb), TypeError, "a must be int8"),
    (lambda a, b, sa, sb: (a, b.contiguous(), sa, sb), ValueError, "b must be column-major"),
    (lambda a, b, sa, sb: (a[:, :40], b[:40], sa, sb), ValueError, "a must be row-major"),
    (lambda a, b, sa, sb: (a[:, :40].contiguous(), b[:40].t().contiguous().t(), sa, sb), ValueError,
     "multiple of 16"),
    (lambda a, b, sa, sb: (a, b[:, :24], sa, sb[:, :24].contiguous()), ValueError, "N = b.shape"),
    (lambda a, b, sa, sb: (a, b, torch.ones(3, 1), sb), ValueError, "a_scales must hold 1"),
    (lambda a, b, sa, sb: (a, b, sa, sb.double()), TypeError, "b_scales must be float32"),
    (lambda a, b, sa, sb: (a, b.t().contiguous(), sa, sb), ValueError, "b must be \\[K, N\\]"),
])
def test_scaled_mm_errors_name_the_argument(mutate, exc, message):
    a, b, sa, sb = mutate(*_gemm_args())
    with pytest.raises(exc, match=message):
        _checks.scaled_mm_args(a, b, sa, sb, None, torch.bfloat16)


def test_bias_and_out_dtype_errors():
    a, b, sa, sb = _gemm_args()
    with pytest.raises(TypeError, match="out_dtype"):
        _checks.scaled_mm_args(a, b, sa, sb, None, torch.float32)
    with pytest.raises(TypeError, match="bias must have out_dtype"):
        _checks.scaled_mm_args(a, b, sa, sb, torch.zeros(32), torch.bfloat16)
    with pytest.raises(ValueError, match="bias must be a contiguous \\[N\\]"):
        _checks.scaled_mm_args(a, b, sa, sb, torch.zeros(16, dtype=torch.bfloat16), torch.bfloat16)


def test_azp_errors():
    a, b, sa, _ = _gemm_args()
    _checks.azp_args(a, b, sa, torch.zeros(32, dtype=torch.int32), torch.zeros(8, dtype=torch.int32))
    with pytest.raises(TypeError, match="azp_adj must be int32"):
        _checks.azp_args(a, b, sa, torch.zeros(32), torch.zeros(8, dtype=torch.int32))
    with pytest.raises(ValueError, match="azp must be a contiguous \\[M\\]"):
        _checks.azp_args(a, b, sa, torch.zeros(32, dtype=torch.int32), torch.zeros(9, dtype=torch.int32))
    with pytest.raises(ValueError, match="a_scales must be per-token"):
        _checks.azp_args(a, b, torch.ones(1, 1), torch.zeros(32, dtype=torch.int32),
                         torch.zeros(8, dtype=torch.int32))


def test_activation_and_fused_op_errors():
    x = torch.zeros(4, 32, dtype=torch.bfloat16)
    with pytest.raises(TypeError, match="x must be bfloat16 or float16"):
        _checks.activation(x.float(), "x")
    with pytest.raises(ValueError, match="x must be contiguous"):
        _checks.activation(torch.zeros(32, 4, dtype=torch.bfloat16).t(), "x")
    with pytest.raises(ValueError, match="scale must hold one element"):
        _checks.static_scale(torch.ones(2))
    with pytest.raises(ValueError, match="weight must be a contiguous \\[K\\]"):
        _checks.rms_norm_args(x, None, torch.ones(16, dtype=torch.bfloat16), None)
    with pytest.raises(TypeError, match="weight must have the dtype of x"):
        _checks.rms_norm_args(x, None, torch.ones(32), None)
    with pytest.raises(ValueError, match="residual must match x"):
        _checks.rms_norm_args(x, x[:2].clone(), torch.ones(32, dtype=torch.bfloat16), None)
    with pytest.raises(ValueError, match="bias must be a contiguous \\[K\\]"):
        _checks.layer_norm_args(x, torch.ones(32, dtype=torch.bfloat16), torch.ones(8, dtype=torch.bfloat16), None)
    with pytest.raises(ValueError, match="odd"):
        _checks.silu_and_mul_args(torch.zeros(4, 33, dtype=torch.bfloat16), None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_unavailable_ops_raise_with_the_reason():
    ok, reason = available()
    assert not ok and "CUDA" in reason
    a, b, sa, sb = _gemm_args()
    with pytest.raises(RuntimeError, match="vllm_sq CUDA ops unavailable: no CUDA device"):
        int8_scaled_mm(a, b, sa, sb)
    with pytest.raises(RuntimeError, match="unavailable"):
        per_token_quant(torch.zeros(2, 16, dtype=torch.bfloat16))
