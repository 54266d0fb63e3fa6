"""Programmatic dependent launch (csrc/pdl.cuh): the skinny GEMM starts streaming its weight while the kernel that
quantizes its activation is still running; it must still read that activation, never what the buffer held
before (GPU)."""

from __future__ import annotations

from typing import Callable

import pytest
import torch

from kernel_refs import gpu_only, poison_allocator

pytestmark = gpu_only

EPS = 1e-6


def _producers(k: int, gen: torch.Generator) -> dict[str, tuple[Callable, Callable]]:
    """name -> (make a fresh producer input, producer(input) -> (x_q, scales)): every kernel that may precede
    a GEMM in a model."""
    from vllm_sq import ops

    norm_w = (torch.rand(k, device="cuda", generator=gen) + 0.5).bfloat16()
    residual = torch.randn(8, k, device="cuda", generator=gen).bfloat16()

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


def _skinny_configs() -> list[int]:
    from vllm_sq.ops import gemm_configs

    return [i for i, name in enumerate(gemm_configs()) if name.startswith("Skinny")]


@pytest.mark.parametrize("m", [1, 8])
@pytest.mark.parametrize("producer", ["per_token_quant", "rms_norm_quant", "fused_add_rms_norm_quant",
                                      "silu_and_mul_quant"])
def test_gemm_after_producer_reads_the_new_activation(m, producer):
    """Producer + GEMM pairs queued back to back (no synchronization), each pair's int8 activation in the block
    the previous pair's just freed: every output equals the GEMM of the same activation run in isolation."""
    from vllm_sq.ops import int8_scaled_mm

    configs = _skinny_configs()
    if not configs:
        pytest.skip("no skinny configurations on this GPU's table")
    n, k = 4096, 4096  # 128 CTAs of the staged variant: one wave, all of them prefetching during the producer
    gen = torch.Generator("cuda").manual_seed(m * 7 + len(producer))
    make, produce = _producers(k, gen)[producer]
    w = torch.randint(-127, 128, (n, k), dtype=torch.int8, device="cuda", generator=gen)
    sw = torch.rand(1, n, device="cuda", generator=gen) * 0.01 + 1e-3
    inputs = [make(m) for _ in range(6)]
    for config in [-1, *configs]:
        expected = []
        for x in inputs:  # each kernel alone
            xq, sx = produce(x)
            torch.cuda.synchronize()
            expected.append(int8_scaled_mm(xq, w.t(), sx, sw, None, torch.bfloat16, config=config))
            torch.cuda.synchronize()
        poison_allocator()
        outs = []
        for x in inputs:  # back to back
            xq, sx = produce(x)
            outs.append(int8_scaled_mm(xq, w.t(), sx, sw, None, torch.bfloat16, config=config))
            del xq, sx  # the next pair's activation reuses this block
        torch.cuda.synchronize()
        for i, (out, ref) in enumerate(zip(outs, expected)):
            assert not torch.isnan(out).any(), f"config {config}, pair {i}: NaN in the output"
            assert torch.equal(out, ref), f"config {config}, pair {i}: differs from the isolated run"
