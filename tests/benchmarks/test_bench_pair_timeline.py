"""The kernel-timeline summary of benchmarks/pair_timeline.py, on a synthetic trace (no GPU)."""

import math

import pytest

from benchmarks import pair_timeline as pt


def _trace(pairs: int, replays: int, quant_name: str) -> dict:
    events, t = [], 0.0
    for _ in range(replays):
        for _ in range(pairs):  # quant 3 us, gap 1, GEMM 10, gap 2
            events.append({"cat": "kernel", "name": quant_name, "ts": t, "dur": 3.0})
            events.append({"cat": "kernel", "name": "cutlass_gemm", "ts": t + 4.0, "dur": 10.0})
            t += 16.0
        t += 1000.0  # between replays: not a gap
    events.append({"cat": "cpu_op", "name": "aten::mm", "ts": 0.0, "dur": 5.0})  # not a GPU kernel
    return {"traceEvents": events}


@pytest.mark.parametrize("quant_name", ["void vllm_sq::quant_kernel<bf16>", "dynamic_scaled_int8_quant_kernel"])
def test_summary_splits_a_pair_into_kernels_and_gaps(quant_name):
    kernels = pt._kernels(_trace(pairs=4, replays=3, quant_name=quant_name))
    assert len(kernels) == 24  # the CPU op is not a kernel
    s = pt.summarize(kernels, replays=3, pairs=4)
    assert (s["quant_us"], s["gap_before_gemm_us"], s["gemm_us"], s["gap_before_quant_us"]) == (3.0, 1.0, 10.0, 2.0)
    assert s["period_us"] == 16.0 and s["kernels_per_pair"] == 2.0
    assert s["mean_period_us"] == 16.0 and s["max_gap_us"] == 2.0


def test_mean_period_counts_the_pairs_of_replays_that_ran_back_to_back():
    trace = _trace(pairs=4, replays=3, quant_name="quant_kernel")
    for i, e in enumerate(e for e in trace["traceEvents"] if e["cat"] == "kernel"):
        e["ts"] -= 1000.0 * (i // 8)  # no pause between replays: one run of 12 pairs
    s = pt.summarize(pt._kernels(trace), replays=3, pairs=4)
    assert s["mean_period_us"] == 16.0


def test_mean_period_shows_a_pair_that_stalls_once_per_replay():
    trace = _trace(pairs=4, replays=3, quant_name="quant_kernel")
    for replay in range(3):  # the last GEMM of every replay starts 8 us late
        trace["traceEvents"][replay * 8 + 7]["ts"] += 8.0
    s = pt.summarize(pt._kernels(trace), replays=3, pairs=4)
    assert s["period_us"] == 16.0  # the medians do not see it
    assert s["mean_period_us"] == 18.0 and s["max_gap_us"] == 9.0


def test_markdown_has_one_line_per_pairing():
    s = pt.summarize(pt._kernels(_trace(2, 2, "quant_kernel")), 2, 2)
    meta = {"gpu": "GPU", "date": "2026-11-24T00:00:00Z", "commit": "abc", "vllm": "vLLM 0", "pairs": 2, "replays": 2}
    md = pt.markdown(meta, [{"m": 16, "n": 4096, "k": 4096, "pairings": {"ours q + ours gemm": s}}])
    header, sep, row = md.splitlines()[4:7]
    assert header.count("|") == sep.count("|") == row.count("|")
    assert row.startswith("| 16 | 4096 | 4096 | ours q + ours gemm | 3.00 | 1.00 | 10.00 | 2.00 | 16.00 | 16.00 "
                          "| 2.00 | nan |")


def test_empty_trace_gives_nan_not_an_error():
    s = pt.summarize([], replays=1, pairs=1)
    assert math.isnan(s["quant_us"]) and s["kernels_per_pair"] == 0.0
