"""Programmatic dependent launch (csrc/pdl.cuh): the skinny GEMM starts streaming its weight while the kernel that
quantizes its activation is still running, the unclustered CUTLASS decode tile (DecodeN64c1) is placed during it,
and the quantization kernels are placed while the kernel before them drains; each must still read its input as
finished, never what the buffer held before (GPU)."""

from __future__ import annotations

from typing import Callable

import pytest
import torch

from kernel_refs import assert_gemm_close, gpu_only, poison_allocator, ref_scaled_mm

pytestmark = gpu_only

EPS = 1e-6


def _producers(k: int, gen: torch.Generator) -> dict[str, tuple[Callable, Callable]]:
    """name -> (make a fresh producer input, producer(input) -> (x_q, scales)): every kernel that may precede
    a GEMM in a model."""
    from vllm_sq import ops

    norm_w = (torch.rand(k, device="cuda", generator=gen) + 0.5).bfloat16()
    residual = torch.randn(1024, k, device="cuda", generator=gen).bfloat16()  # rows for every M of the tests

    def randn(cols: int) -> Callable[[int], torch.Tensor]:
        return lambda m: (torch.randn(m, cols, device="cuda", generator=gen) * 3).bfloat16()

    def add_rms(x: torch.Tensor):
        return ops.fused_add_rms_norm_quant(x, residual[: x.shape[0]].clone(), norm_w, EPS)

    return {
        "per_token_quant": (randn(k), lambda x: ops.per_token_quant(x)[:2]),
        "rms_norm_quant": (randn(k), lambda x: ops.rms_norm_quant(x, norm_w, EPS)),
        "fused_add_rms_norm_quant": (randn(k), add_rms),
        "silu_and_mul_quant": (randn(2 * k), lambda x: ops.silu_and_mul_quant(x)),
    }


def _assert_each_close(outs: list[torch.Tensor], refs: list[torch.Tensor], label: str) -> None:
    """After the queued work finishes, every bf16 output matches its float64 reference (label i names a miss)."""
    torch.cuda.synchronize()
    for i, (out, ref) in enumerate(zip(outs, refs)):
        try:
            assert_gemm_close(out, ref, torch.bfloat16)
        except AssertionError as exc:
            raise AssertionError(f"{label} {i}: {exc}") from exc


@pytest.mark.parametrize("m", [1, 8, 16, 64])
@pytest.mark.parametrize("producer", ["per_token_quant", "rms_norm_quant", "fused_add_rms_norm_quant",
                                      "silu_and_mul_quant"])
def test_gemm_after_producer_reads_the_new_activation(m, producer):
    """Producer + GEMM pairs queued back to back (no synchronization), each pair's int8 activation in the block
    the previous pair's just freed: every output matches the GEMM of that pair's activation (produced alone)."""
    from vllm_sq.ops import gemm_configs, int8_scaled_mm

    names = ["dispatch", *gemm_configs()]  # every configuration, launched as a dependent or not
    n, k = 4096, 4096  # 128 CTAs of the staged skinny variant: one wave, all of them prefetching during the producer
    gen = torch.Generator("cuda").manual_seed(m * 7 + len(producer))
    make, produce = _producers(k, gen)[producer]
    w = torch.randint(-127, 128, (n, k), dtype=torch.int8, device="cuda", generator=gen)
    sw = torch.rand(1, n, device="cuda", generator=gen) * 0.01 + 1e-3
    inputs = [make(m) for _ in range(6)]
    refs = []
    for x in inputs:  # the producer alone, and the GEMM of its output in float64
        xq, sx = produce(x)
        refs.append(ref_scaled_mm(xq, w, sx, sw, None))
    for config in range(-1, len(names) - 1):
        poison_allocator()
        outs = []
        for x in inputs:  # back to back
            xq, sx = produce(x)
            outs.append(int8_scaled_mm(xq, w.t(), sx, sw, None, torch.bfloat16, config=config))
            del xq, sx  # the next pair's activation reuses this block
        _assert_each_close(outs, refs, f"{names[config + 1]}, pair")


def test_weight_quantized_just_before_the_gemm_is_not_read_early():
    """A weight written by the quantization kernel right before the GEMM (per_token_quant of a bf16 weight): the
    skinny GEMM, which reads its weight before waiting for that kernel when launched as its dependent, must be
    launched as an ordinary kernel instead (csrc/pdl_registry.h), and see each new weight."""
    from vllm_sq.ops import int8_scaled_mm, per_token_quant

    gen = torch.Generator("cuda").manual_seed(5)
    m, n, k = 4, 4096, 4096
    xq = torch.randint(-127, 128, (m, k), dtype=torch.int8, device="cuda", generator=gen)
    sx = torch.rand(m, 1, device="cuda", generator=gen) * 0.01 + 1e-3
    weights = [torch.randn(n, k, device="cuda", generator=gen).bfloat16() for _ in range(4)]
    refs = []
    for w in weights:
        wq, sw, _ = per_token_quant(w)
        refs.append(ref_scaled_mm(xq, wq, sx, sw, None))
    poison_allocator()
    outs = []
    for w in weights:  # back to back: each weight in the block the previous one just freed
        wq, sw, _ = per_token_quant(w)
        outs.append(int8_scaled_mm(xq, wq.t(), sx, sw.reshape(1, -1), None, torch.bfloat16))
        del wq, sw
    _assert_each_close(outs, refs, "weight")


def test_weight_scales_written_just_before_the_gemm_are_not_read_early():
    """The skinny GEMM also reads the weight's scales (and bias) before its programmatic wait (the Epilogue in
    csrc/gemm/skinny/skinny_mma.cuh). Scales written by the quantization kernel right before it, for a weight that
    itself is not, must still make it an ordinary launch (csrc/gemm/scaled_mm_entry.cpp), and each new scale be seen."""
    from vllm_sq.ops import int8_scaled_mm, per_token_quant

    gen = torch.Generator("cuda").manual_seed(6)
    m, n, k = 4, 4096, 4096
    xq = torch.randint(-127, 128, (m, k), dtype=torch.int8, device="cuda", generator=gen)
    sx = torch.rand(m, 1, device="cuda", generator=gen) * 0.01 + 1e-3
    wq = torch.randint(-127, 128, (n, k), dtype=torch.int8, device="cuda", generator=gen)
    sources = [torch.randn(n, 64, device="cuda", generator=gen).bfloat16() * (i + 1) for i in range(4)]
    refs = []
    for src in sources:
        _, sw, _ = per_token_quant(src)
        refs.append(ref_scaled_mm(xq, wq, sx, sw, None))
    poison_allocator()
    outs = []
    for src in sources:  # back to back: each scale vector in the block the previous one just freed
        _, sw, _ = per_token_quant(src)
        outs.append(int8_scaled_mm(xq, wq.t(), sx, sw.reshape(1, -1), None, torch.bfloat16))
        del sw
    _assert_each_close(outs, refs, "weight scale")


# M = 1 and 16: the skinny GEMM; 64: DecodeN64c1 (N = 4096), which triggers its dependents after its main loop
# (CUTLASS_ENABLE_GDC_FOR_SM90), DecodeN64c8 for SiLU-and-mul's N = 8192; 1024: the prefill tiles
@pytest.mark.parametrize("m", [1, 16, 64, 1024])
@pytest.mark.parametrize("producer", ["per_token_quant", "rms_norm_quant", "fused_add_rms_norm_quant",
                                      "silu_and_mul_quant"])
def test_quantization_right_after_the_gemm_that_writes_its_input(m, producer):
    """The quantization kernels are launched as programmatic dependents of whatever precedes them (pdl.cuh) and must
    wait for it before reading: here each input is the output of the GEMM queued right before (the o_proj ->
    add + RMSNorm and gate_up -> SiLU-and-mul pattern), and each result equals, bit for bit, the quantization of
    that output once it is finished."""
    from vllm_sq.ops import int8_scaled_mm

    k = 4096
    gen = torch.Generator("cuda").manual_seed(m + len(producer))
    make, produce = _producers(k, gen)[producer]
    width = make(1).shape[1]  # the producer's input width: k, or 2k for SiLU-and-mul
    w = torch.randint(-127, 128, (width, k), dtype=torch.int8, device="cuda", generator=gen)
    sw = torch.rand(1, width, device="cuda", generator=gen) * 1e-3 + 1e-4
    acts = [torch.randint(-127, 128, (m, k), dtype=torch.int8, device="cuda", generator=gen) for _ in range(4)]
    sx = torch.rand(m, 1, device="cuda", generator=gen) * 0.01 + 1e-3
    poison_allocator()
    ys, outs = [], []
    for xq in acts:  # back to back: GEMM, then the quantization of its output
        y = int8_scaled_mm(xq, w.t(), sx, sw, None, torch.bfloat16)
        outs.append(produce(y))
        ys.append(y)
    torch.cuda.synchronize()
    for i, (y, (q, s)) in enumerate(zip(ys, outs)):
        ref_q, ref_s = produce(y.clone())  # alone, on the finished input
        torch.cuda.synchronize()
        assert torch.equal(q, ref_q), f"{producer} after GEMM {i}: int8 codes differ"
        assert torch.equal(s, ref_s), f"{producer} after GEMM {i}: scales differ"


_PDL_SWITCH_SCRIPT = """
import torch
from vllm_sq import ops
x = (torch.randn(16, 4096, device="cuda") * 3).bfloat16()
w = torch.randint(-127, 128, (4096, 4096), dtype=torch.int8, device="cuda")
sw = torch.rand(1, 4096, device="cuda") * 1e-3 + 1e-4
xq, sx = ops.per_token_quant(x)[:2]
y = ops.int8_scaled_mm(xq, w.t(), sx, sw, None, torch.bfloat16)
ref = (xq.double() @ w.double().t()) * sx.double() * sw.double()
torch.testing.assert_close(y.double(), ref, rtol=1e-2, atol=1e-2)
print("ok")
"""


@pytest.mark.parametrize("value,ok", [("0", True), ("1", True), ("2", False)])
def test_pdl_switch(value, ok):
    """VLLM_SQ_PDL=0 launches the quantization and the skinny GEMM as ordinary kernels, 1 (or unset) as programmatic
    dependents; results are the same. Any other value is refused, by name. A fresh process: it is read once."""
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _PDL_SWITCH_SCRIPT], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "VLLM_SQ_PDL": value})
    if ok:
        assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]
    else:
        assert proc.returncode != 0 and "VLLM_SQ_PDL must be 0 or 1 (got '2')" in proc.stderr, proc.stderr[-2000:]
