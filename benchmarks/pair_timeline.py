"""Kernel timeline of quantize + GEMM pairs under CUDA-graph replay: where the time between two GEMMs goes.

benchmarks/gemm.py measures what a quantization adds in front of a GEMM; this splits it. Each of the four pairings
(our or vLLM's quantization, then our or vLLM's GEMM) is captured as one graph of `--pairs` back-to-back pairs,
each with its own activation and weight, replayed under torch.profiler (CUPTI kernel records), and summarized per pair: the median
duration of each kernel and of the gaps between them (end of one kernel to the start of the next: launch and
drain; negative where a programmatic dependent starts before its predecessor ends), and the period of a pair.

Usage: python -m benchmarks.pair_timeline --out DIR [--shapes 16x6144x4096,16x5120x5120] [--pairs 8] [--replays 20]
Writes DIR/pair_timeline_<gpu>_<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

QUANT_KERNEL_NAMES = ("quant_kernel", "scaled_int8_quant")  # ours, vLLM's (substrings of the kernel names)


def _kernels(trace: dict) -> list[tuple[float, float, str]]:
    """(start us, end us, name) of every kernel and memset in a Chrome trace, in start order."""
    out = [(e["ts"], e["ts"] + e["dur"], e["name"]) for e in trace.get("traceEvents", [])
           if e.get("cat") in ("kernel", "gpu_memset") and "dur" in e]
    return sorted(out)


def summarize(kernels: list[tuple[float, float, str]], replays: int, pairs: int) -> dict[str, float]:
    """Median quant / GEMM duration, the gap before each, and the period of one pair (us)."""
    rec: dict[str, list[float]] = {"quant_us": [], "gemm_us": [], "gap_before_gemm_us": [],
                                   "gap_before_quant_us": []}
    runs: list[tuple[float, int]] = []  # (first start to last end, kernels) of each run of back-to-back kernels
    max_gaps: list[float] = []  # the longest gap inside each run
    prev_end = run_start = None
    run_kernels, run_gap = 0, 0.0
    for start, end, name in kernels:
        kind = "quant" if any(q in name for q in QUANT_KERNEL_NAMES) else "gemm"
        rec[f"{kind}_us"].append(end - start)
        if prev_end is not None and start - prev_end < 50.0:  # within one run (replays queued back to back merge)
            rec[f"gap_before_{kind}_us"].append(start - prev_end)
            run_gap = max(run_gap, start - prev_end)
        else:
            if run_start is not None:
                runs.append((prev_end - run_start, run_kernels))
                max_gaps.append(run_gap)
            run_start, run_kernels, run_gap = start, 0, 0.0
        run_kernels += 1
        prev_end = end
    if run_start is not None:
        runs.append((prev_end - run_start, run_kernels))
        max_gaps.append(run_gap)
    res = {key: statistics.median(v) if v else float("nan") for key, v in rec.items()}
    res["kernels_per_pair"] = len(kernels) / max(replays * pairs, 1)
    res["period_us"] = res["quant_us"] + res["gemm_us"] + res["gap_before_gemm_us"] + res["gap_before_quant_us"]
    # The period from medians hides a pair that is slow once per replay; the mean period does not: a run's span
    # plus the gap that would follow its last GEMM, over its pairs.
    per_pair = [(span + res["gap_before_quant_us"]) / (n / 2) for span, n in runs if n >= 2]
    res["mean_period_us"] = statistics.median(per_pair) if per_pair else float("nan")
    res["max_gap_us"] = statistics.median(max_gaps) if max_gaps else float("nan")
    return res


def event_period(graph, replays: int, pairs: int) -> float:
    """Median microseconds per pair of whole replays timed with CUDA events, as benchmarks/gemm.py times (behind a
    sleep kernel, so the host's submission is hidden but anything the GPU does to start the graph is counted)."""
    from benchmarks.gemm import L2_BYTES, LAUNCH_COVER_CYCLES

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    scrub = torch.empty(2 * L2_BYTES, dtype=torch.int8, device="cuda").fill_(1)
    times = []
    for _ in range(replays):
        scrub.max()  # as gemm.py: L2 clean before each replay
        torch.cuda._sleep(LAUNCH_COVER_CYCLES)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3 / pairs)
    return statistics.median(times)


def time_pairings(m: int, n: int, k: int, pairs: int, replays: int, vllm_ops) -> dict[str, dict[str, float]]:
    from torch.profiler import ProfilerActivity, profile

    from vllm_sq import ops

    gen = torch.Generator("cuda").manual_seed(m + n + k)
    xs = [(torch.randn(m, k, device="cuda", generator=gen) * 3).bfloat16() for _ in range(pairs)]
    # one weight per pair, as in a model (and in gemm.py): together beyond L2, so each GEMM streams its weight
    ws = [torch.randint(-127, 128, (n, k), dtype=torch.int8, device="cuda", generator=gen) for _ in range(pairs)]
    sw = torch.rand(1, n, device="cuda", generator=gen) * 1e-3 + 1e-4
    quants = {"ours": lambda x: ops.per_token_quant(x)[:2], "vllm": lambda x: vllm_ops.scaled_int8_quant(x)[:2]}
    gemms = {"ours": lambda q, s, w: ops.int8_scaled_mm(q, w.t(), s, sw, None, torch.bfloat16),
             "vllm": lambda q, s, w: vllm_ops.cutlass_scaled_mm(q, w.t(), s, sw.reshape(-1, 1), torch.bfloat16)}
    results = {}
    for qn, quant in quants.items():
        for gn, gemm in gemms.items():
            def body():
                for x, w in zip(xs, ws):
                    gemm(*quant(x), w)

            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                body()  # warm-up outside the graph (workspaces, lazy initialization)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                body()
            for _ in range(3):
                graph.replay()
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(replays):
                    graph.replay()
                torch.cuda.synchronize()
            with tempfile.NamedTemporaryFile(suffix=".json") as f:
                prof.export_chrome_trace(f.name)
                trace = json.loads(Path(f.name).read_text())
            res = summarize(_kernels(trace), replays, pairs)
            res["event_period_us"] = event_period(graph, replays, pairs)  # no profiler attached
            results[f"{qn} q + {gn} gemm"] = res
            del graph
    return results


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = [f"# Quantize + GEMM kernel timeline: {meta['gpu']}, {meta['date']}, commit {meta['commit']}", "",
             f"vLLM: {meta['vllm']}. {meta['pairs']} pairs per CUDA graph, {meta['replays']} replays under "
             "torch.profiler; medians in us. A gap is the end of one kernel to the start of the next (negative: "
             "a programmatic dependent started before its predecessor ended). Period: the sum of the medians; "
             "mean period: the span of back-to-back replays over their pairs (includes a pair slow once per "
             "replay); max gap: the longest gap in that span; event period: a replay timed with CUDA events "
             "without the profiler, over its pairs (as benchmarks/gemm.py times).", "",
             "| M | N | K | pairing | quant | gap to GEMM | GEMM | gap to quant | period | mean period | max gap "
             "| event period | kernels per pair |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for pairing, t in r["pairings"].items():
            lines.append(f"| {r['m']} | {r['n']} | {r['k']} | {pairing} | {t['quant_us']:.2f} | "
                         f"{t['gap_before_gemm_us']:.2f} | {t['gemm_us']:.2f} | {t['gap_before_quant_us']:.2f} | "
                         f"{t['period_us']:.2f} | {t['mean_period_us']:.2f} | {t['max_gap_us']:.2f} | "
                         f"{t.get('event_period_us', float('nan')):.2f} | {t['kernels_per_pair']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--shapes", default="16x6144x4096,16x5120x5120,64x4096x4096,16x4096x4096",
                    help="comma list of MxNxK")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--replays", type=int, default=20)
    args = ap.parse_args(argv)

    from benchmarks.gemm import _vllm_ops, commit
    from benchmarks.run_info import utc_now
    from vllm_sq import ops

    ok, reason = ops.available()
    vllm_ops, vllm_err = _vllm_ops()
    if not ok or vllm_ops is None:
        print(f"needs our ops and vLLM's: {reason if not ok else vllm_err}", file=sys.stderr)
        return 2
    gpu = torch.cuda.get_device_name()
    meta = {"gpu": gpu, "date": utc_now(), "commit": commit(), "vllm": "vLLM " + __import__("vllm").__version__,
            "pairs": args.pairs, "replays": args.replays}
    rows = []
    for shape in args.shapes.split(","):
        m, n, k = map(int, shape.split("x"))
        rows.append({"m": m, "n": n, "k": k, "pairings": time_pairings(m, n, k, args.pairs, args.replays, vllm_ops)})
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "pair_timeline_" + gpu.replace(" ", "_").replace("/", "_") + "_" + meta["date"][:10]
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    md = markdown(meta, rows)
    (args.out / f"{stem}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
