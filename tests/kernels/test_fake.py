"""The ops' Python-defined schemas (vllm_sq/ops/_library.py), their fakes, and the C++ registrations that must
match them (CPU: runs in CI)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from vllm_sq.ops import _library

BINDINGS = Path(__file__).resolve().parents[2] / "csrc" / "torch_bindings.cpp"


@pytest.fixture(scope="module")
def ops():
    return torch.ops.vllm_sq


def test_schemas_cover_the_api_and_the_cuda_registrations(ops):
    """Every op defined in Python has a CUDA kernel registered in C++, and C++ defines only gemm_configs."""
    assert set(_library.SCHEMAS) == {"int8_scaled_mm", "int8_scaled_mm_azp", "per_token_quant", "per_token_quant_azp",
                                     "static_quant", "rms_norm_quant", "fused_add_rms_norm_quant", "layer_norm_quant",
                                     "silu_and_mul_quant"}
    text = BINDINGS.read_text()
    assert set(re.findall(r'm\.impl\("(\w+)"', text)) == set(_library.SCHEMAS)
    assert [d.split("(", 1)[0] for d in re.findall(r'm\.def\("([^"]*)"', text)] == ["gemm_configs"]
    for name, schema in _library.SCHEMAS.items():
        assert str(getattr(ops, name).default._schema) == f"vllm_sq::{name}{schema}"


def test_fake_shapes_and_dtypes(ops):
    """Every tensor op runs on meta tensors (i.e. has a fake) and reports the kernel's shapes and dtypes."""
    m, n, k = 5, 48, 64
    meta = {"device": "meta"}
    a = torch.empty(m, k, dtype=torch.int8, **meta)
    b = torch.empty(n, k, dtype=torch.int8, **meta).t()
    sa, sb = torch.empty(m, **meta), torch.empty(n, **meta)
    out = ops.int8_scaled_mm(a, b, sa, sb, None, torch.float16)
    assert out.shape == (m, n) and out.dtype == torch.float16
    out = ops.int8_scaled_mm_azp(a, b, sa, sb, torch.empty(n, dtype=torch.int32, **meta),
                                 torch.empty(m, dtype=torch.int32, **meta), None, torch.bfloat16)
    assert out.shape == (m, n) and out.dtype == torch.bfloat16

    x = torch.empty(m, k, dtype=torch.bfloat16, **meta)
    q, s = ops.per_token_quant(x)
    assert (q.shape, q.dtype, s.shape, s.dtype) == ((m, k), torch.int8, (m, 1), torch.float32)
    q, s, z = ops.per_token_quant_azp(x)
    assert z.shape == (m,) and z.dtype == torch.int32
    assert ops.static_quant(x, torch.empty(1, **meta)).dtype == torch.int8
    w = torch.empty(k, dtype=torch.bfloat16, **meta)
    q, s = ops.rms_norm_quant(x, w, 1e-6, None)
    assert q.shape == (m, k) and s.shape == (m, 1)
    q, s = ops.fused_add_rms_norm_quant(x, torch.empty_like(x), w, 1e-6, torch.empty(1, **meta))
    assert s.shape == (1, 1)
    q, s = ops.layer_norm_quant(x, w, torch.empty_like(w), 1e-5, None)
    assert q.shape == (m, k) and s.shape == (m, 1)
    q, s = ops.silu_and_mul_quant(torch.empty(m, 2 * k, dtype=torch.float16, **meta), None)
    assert q.shape == (m, k) and s.shape == (m, 1)


def test_fakes_reject_bad_layouts_at_trace_time(ops):
    a = torch.empty(4, 64, dtype=torch.int8, device="meta")
    b_row_major = torch.empty(64, 32, dtype=torch.int8, device="meta")
    with pytest.raises(ValueError, match="b must be column-major"):
        ops.int8_scaled_mm(a, b_row_major, torch.empty(4, device="meta"), torch.empty(32, device="meta"), None,
                           torch.bfloat16)
    with pytest.raises(ValueError, match="odd"):
        ops.silu_and_mul_quant(torch.empty(4, 33, dtype=torch.bfloat16, device="meta"), None)


def test_wrappers_trace_without_graph_breaks(ops, monkeypatch):
    """vLLM compiles the model forward with fullgraph=True: the wrappers' checks must trace cleanly.

    On a machine without the extension, CPU reference kernels stand in for the CUDA ones.
    """
    from vllm_sq.ops import _loader, int8_scaled_mm, per_token_quant, rms_norm_quant

    if _loader._load_error() is not None:
        lib = torch.library.Library("vllm_sq", "IMPL")  # noqa: TOR901

        def mm_cpu(a, b, sa, sb, bias, out_dtype, config=-1):
            y = sa.reshape(-1, 1) * sb.reshape(1, -1) * (a.float() @ b.float())
            return (y if bias is None else y + bias.float()).to(out_dtype)

        def quant_cpu(x):
            s = x.float().abs().amax(dim=-1, keepdim=True) / 127
            return (x.float() / s).round().clamp(-127, 127).to(torch.int8), s

        def rms_quant_cpu(x, w, eps, scale):
            h = (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w
            return quant_cpu(h)

        lib.impl("int8_scaled_mm", mm_cpu, "CPU")
        lib.impl("per_token_quant", quant_cpu, "CPU")
        lib.impl("rms_norm_quant", rms_quant_cpu, "CPU")
        monkeypatch.setattr(_loader, "_READY", True)
        device = "cpu"
    else:
        _loader.require()
        device = "cuda"

    w = torch.randint(-127, 128, (64, 32), dtype=torch.int8, device=device)
    sw = torch.rand(1, 64, device=device)
    norm_w = torch.rand(32, device=device).bfloat16()

    def layer(x):
        xq, sx = rms_norm_quant(x, norm_w, 1e-6)
        y = int8_scaled_mm(xq, w.t(), sx, sw, None, torch.bfloat16)
        yq, sy, _ = per_token_quant(y)
        return yq, sy

    compiled = torch.compile(layer, backend="eager", fullgraph=True, dynamic=True)
    for m in (3, 9):
        x = torch.randn(m, 32, device=device).bfloat16()
        for got, want in zip(compiled(x), layer(x)):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
