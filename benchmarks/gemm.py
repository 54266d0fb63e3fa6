"""INT8 GEMM benchmark on Llama-2 7B/13B layer shapes: torch bf16, vLLM's CUTLASS int8 path and ours, one run.

Every variant is timed under CUDA-graph replay (launch gaps, and the graph's own launch latency, removed:
time_interleaved), over enough copies of its inputs and weights that consecutive calls cannot hit L2 (50 MB on an
H100), median of many replays; the variants of one shape are replayed in turns, so that clock drift during the run
affects them alike. Variants:

  bf16          torch.mm in bf16 (cuBLAS)
  vllm_gemm     vllm._custom_ops.cutlass_scaled_mm on pre-quantized int8 inputs
  vllm_q_gemm   scaled_int8_quant + cutlass_scaled_mm
  ours_gemm     vllm_sq.ops.int8_scaled_mm (dispatch table) on pre-quantized inputs
  ours_q_gemm   per_token_quant + int8_scaled_mm
  prod_q_gemm   the layer's producer + quantization + GEMM: vLLM's rms_norm / silu_and_mul + scaled_int8_quant +
                cutlass_scaled_mm (vllm_*) against our fused rms_norm_quant / silu_and_mul_quant + GEMM (ours_*);
                qkv and gate_up follow an RMSNorm, down follows SiLU-and-mul, o has no fusable producer.
  prod_gemm     the same producer in bf16 (vLLM's rms_norm / silu_and_mul, what an unquantized layer runs) in front
                of a GEMM on an int8 activation given for free (ours_* / vllm_*): prod_q_gemm over it is what the
                quantization costs the layer, the issue's "quantize + GEMM against GEMM alone" with the producer
                both pipelines run counted on both sides.
  ours_q, vllm_q  (M <= 64) per_token_quant / scaled_int8_quant alone
  vllm_q_ours_gemm, ours_q_vllm_gemm  (M <= 64) one project's quantization in front of the other's GEMM, to tell
                which kernel of a pair decides what the quantization adds
  cfg:<name>    ours with one tile configuration forced (--sweep), to tune the dispatch table.
  cfgq:<name>   (M <= 256, --sweep) per_token_quant + that configuration.
  copy          (M <= 64) a device copy of N*K/2 bytes: it reads and writes N*K bytes, the weight traffic of a
                decode GEMM, so ours/copy is the GEMM's time over what HBM needs to move its weight at this size.

Usage: python -m benchmarks.gemm --out DIR [--models 7b,13b,llama3-8b] [--ms 1,16,...] [--replays 30] [--sweep]
       [--sweep-models 7b,13b]
Writes DIR/gemm_<gpu>_<date>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

INT8_PEAK_TOPS = 1979.0  # H100 SXM dense int8
SKINNY_SWEEP_MAX_M = 64  # the skinny-M configurations are swept up to this M (the table uses them at M <= 32)
COPY_BW = 3.0e12  # measured device-to-device copy bandwidth (bytes/s), environment.md
L2_BYTES = 50 * 2**20
LAUNCH_COVER_CYCLES = 200_000  # ~100 us of sleep in front of each timed replay: longer than a graph's submission

# (N, K) of each linear layer; gate_up and qkv are the fused layers vLLM runs.
MODELS = {
    "7b": {"qkv": (12288, 4096), "o": (4096, 4096), "gate_up": (22016, 4096), "down": (4096, 11008)},
    "13b": {"qkv": (15360, 5120), "o": (5120, 5120), "gate_up": (27648, 5120), "down": (5120, 13824)},
    # grouped-query attention: q 4096 + k 1024 + v 1024
    "llama3-8b": {"qkv": (6144, 4096), "o": (4096, 4096), "gate_up": (28672, 4096), "down": (4096, 14336)},
}
PRODUCER = {"qkv": "rms_norm", "gate_up": "rms_norm", "down": "silu_and_mul", "o": None}
DEFAULT_MS = [1, 16, 64, 256, 1024, 4096, 16384]
EPS = 1e-6


def _vllm_ops():
    try:
        from vllm import _custom_ops as vllm_ops  # needs the vLLM CUDA build on PYTHONPATH

        return vllm_ops, None
    except Exception as exc:  # any import failure means "not available here"
        return None, f"{type(exc).__name__}: {exc}"


def capture_graph(make_call, n_copies: int) -> tuple[torch.cuda.CUDAGraph, int]:
    """A CUDA graph of calls over the input copies (`make_call(i)` returns a closure over copy i), warmed up."""
    calls_per_graph = max(n_copies, 4)
    calls = [make_call(i % n_copies) for i in range(calls_per_graph)]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside capture: workspaces, lazy init
        for c in calls:
            c()
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for c in calls:
            c()
    graph.replay()
    torch.cuda.synchronize()
    return graph, calls_per_graph


def time_interleaved(graphs: dict[str, tuple[torch.cuda.CUDAGraph, int]], replays: int) -> dict[str, float]:
    """Median microseconds per call of each graph, replayed in turns (A B C A B C ...), so that a drift of the
    SM clock during the run (power, temperature) weighs on every variant alike instead of on whichever ran last.

    Each replay is queued behind a sleep kernel and timed from its end: the GPU stays busy while the host submits
    the graph, so the time is the kernels' (as inside a model's graph, launched once per step), not the graph's
    launch latency, which differs between graphs and was divided over as few as 4 calls (before run 13).
    Before that, a read of twice the L2 size evicts what the previous graph wrote: a variant replayed after one
    that leaves L2 full of dirty lines (the `copy` variant) paid their write-back, 1.5-2 us per call at decode
    sizes (run 13h); until run 13 that was our quantize + GEMM pair at M <= 64."""
    times: dict[str, list[float]] = {name: [] for name in graphs}
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    scrub = torch.empty(2 * L2_BYTES, dtype=torch.int8, device="cuda").fill_(1)
    for _ in range(replays):
        for name, (graph, calls) in graphs.items():
            scrub.max()  # reads only: leaves L2 clean
            torch.cuda._sleep(LAUNCH_COVER_CYCLES)
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            times[name].append(start.elapsed_time(end) * 1e3 / calls)
    return {name: statistics.median(t) for name, t in times.items()}


def copies_for(bytes_per_call: int) -> int:
    """Copies of a variant's inputs so that one pass over them is at least twice the L2 size."""
    return max(1, min(16, math.ceil(2 * L2_BYTES / max(bytes_per_call, 1))))


class Shape:
    """Random inputs for one (layer, M), built per copy on demand."""

    def __init__(self, m: int, n: int, k: int, producer: str | None, seed: int):
        self.m, self.n, self.k, self.producer = m, n, k, producer
        self.gen = torch.Generator("cuda").manual_seed(seed)

    def randn(self, *shape) -> torch.Tensor:
        return torch.randn(*shape, device="cuda", generator=self.gen, dtype=torch.float32).to(torch.bfloat16)

    def int8_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = torch.randint(-127, 128, (self.n, self.k), dtype=torch.int8, device="cuda", generator=self.gen)
        return w, torch.rand(1, self.n, device="cuda", generator=self.gen) * 0.01 + 1e-3

    def activation(self) -> torch.Tensor:
        return self.randn(self.m, self.k)

    def quantized_activation(self) -> tuple[torch.Tensor, torch.Tensor]:
        q = torch.randint(-127, 128, (self.m, self.k), dtype=torch.int8, device="cuda", generator=self.gen)
        return q, torch.rand(self.m, 1, device="cuda", generator=self.gen) * 0.01 + 1e-3

    def producer_input(self) -> torch.Tensor:
        return self.randn(self.m, 2 * self.k) if self.producer == "silu_and_mul" else self.randn(self.m, self.k)


def bench_shape(s: Shape, vllm_ops, configs: list[tuple[int, str]], replays: int) -> dict[str, float]:
    """Times every variant for one shape; returns variant -> microseconds."""
    from vllm_sq import ops

    m, n, k = s.m, s.n, s.k
    graphs: dict[str, tuple[torch.cuda.CUDAGraph, int]] = {}
    keep = []  # the captured graphs read these inputs
    norm_w = (torch.rand(k, device="cuda") + 0.5).to(torch.bfloat16)

    def run(name: str, bytes_per_call: int, build) -> None:
        n_copies = copies_for(bytes_per_call)
        try:
            sets = [build() for _ in range(n_copies)]
            graphs[name] = capture_graph(lambda i: (lambda: sets[i][0](*sets[i][1:])), n_copies)
            keep.append(sets)
        except Exception as exc:  # one failing variant must not cost the rest of the run
            print(f"  {name} m={m} n={n} k={k} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            torch.cuda.synchronize()

    w_bytes, x_bytes = n * k, m * k
    out_bytes = 2 * m * n

    # bf16 baseline
    run("bf16", 2 * w_bytes + 2 * x_bytes + out_bytes,
        lambda: (torch.mm, s.activation(), s.randn(n, k).t()))

    def ours_gemm_call(config: int):
        def build():
            xq, sx = s.quantized_activation()
            w, sw = s.int8_weight()
            return (lambda a, b, sa, sb: ops.int8_scaled_mm(a, b, sa, sb, None, torch.bfloat16, config=config),
                    xq, w.t(), sx, sw)
        return build

    run("ours_gemm", w_bytes + x_bytes + out_bytes, ours_gemm_call(-1))

    if m <= 64:
        half = w_bytes // 2
        run("copy", w_bytes, lambda: (torch.Tensor.copy_, torch.empty(half, dtype=torch.int8, device="cuda"),
                                      torch.empty(half, dtype=torch.int8, device="cuda")))

    def ours_q_gemm(x, w, sw, config: int = -1):
        xq, sx, _ = ops.per_token_quant(x)
        return ops.int8_scaled_mm(xq, w, sx, sw, None, torch.bfloat16, config=config)

    if m <= 64:  # the quantization kernels alone, to split the q+gemm time (decode: latency, not bytes)
        run("ours_q", 3 * x_bytes, lambda: (lambda x: ops.per_token_quant(x), s.activation()))
        if vllm_ops is not None:
            run("vllm_q", 3 * x_bytes, lambda: (lambda x: vllm_ops.scaled_int8_quant(x), s.activation()))

    run("ours_q_gemm", w_bytes + 3 * x_bytes + out_bytes,
        lambda: (ours_q_gemm, s.activation(), *(lambda w, sw: (w.t(), sw))(*s.int8_weight())))

    if s.producer is not None:
        def ours_fused(p, w, sw):
            if s.producer == "rms_norm":
                xq, sx = ops.rms_norm_quant(p, norm_w, EPS)
            else:
                xq, sx = ops.silu_and_mul_quant(p)
            return ops.int8_scaled_mm(xq, w, sx, sw, None, torch.bfloat16)

        p_bytes = 2 * m * (2 * k if s.producer == "silu_and_mul" else k)
        run("ours_prod_q_gemm", w_bytes + p_bytes + x_bytes + out_bytes,
            lambda: (ours_fused, s.producer_input(), *(lambda w, sw: (w.t(), sw))(*s.int8_weight())))

    if vllm_ops is not None:
        def vllm_gemm(a, b, sa, sb):
            return vllm_ops.cutlass_scaled_mm(a, b, sa, sb.reshape(-1, 1), torch.bfloat16)

        def vllm_q_gemm(x, w, sw):
            xq, sx, _ = vllm_ops.scaled_int8_quant(x)
            return vllm_ops.cutlass_scaled_mm(xq, w, sx, sw.reshape(-1, 1), torch.bfloat16)

        run("vllm_gemm", w_bytes + x_bytes + out_bytes,
            lambda: (vllm_gemm, *(lambda q, sq, w, sw: (q, w.t(), sq, sw))(*s.quantized_activation(),
                                                                           *s.int8_weight())))
        run("vllm_q_gemm", w_bytes + 3 * x_bytes + out_bytes,
            lambda: (vllm_q_gemm, s.activation(), *(lambda w, sw: (w.t(), sw))(*s.int8_weight())))
        if m <= 64:
            def vllm_q_ours_gemm(x, w, sw):
                xq, sx, _ = vllm_ops.scaled_int8_quant(x)
                return ops.int8_scaled_mm(xq, w, sx, sw, None, torch.bfloat16)

            def ours_q_vllm_gemm(x, w, sw):
                xq, sx, _ = ops.per_token_quant(x)
                return vllm_ops.cutlass_scaled_mm(xq, w, sx, sw.reshape(-1, 1), torch.bfloat16)

            for name, fn in (("vllm_q_ours_gemm", vllm_q_ours_gemm), ("ours_q_vllm_gemm", ours_q_vllm_gemm)):
                run(name, w_bytes + 3 * x_bytes + out_bytes,
                    lambda fn=fn: (fn, s.activation(), *(lambda w, sw: (w.t(), sw))(*s.int8_weight())))
        if s.producer is not None:
            def bf16_producer(p):
                if s.producer == "rms_norm":
                    h = torch.empty_like(p)
                    vllm_ops.rms_norm(h, p, norm_w, EPS)
                else:
                    h = torch.empty(p.shape[0], p.shape[1] // 2, dtype=p.dtype, device=p.device)
                    torch.ops._C.silu_and_mul(h, p)
                return h

            def vllm_prod(p, w, sw):
                return vllm_q_gemm(bf16_producer(p), w, sw)

            def prod_gemm(gemm):  # the producer's bf16 output is not read: the GEMM's int8 input is given
                def call(p, xq, sx, w, sw):
                    bf16_producer(p)
                    return gemm(xq, w, sx, sw)
                return call

            def prod_gemm_inputs():
                xq, sx = s.quantized_activation()
                w, sw = s.int8_weight()
                return s.producer_input(), xq, sx, w.t(), sw

            p_bytes = 2 * m * (2 * k if s.producer == "silu_and_mul" else k)
            run("vllm_prod_q_gemm", w_bytes + p_bytes + 5 * x_bytes + out_bytes,
                lambda: (vllm_prod, s.producer_input(), *(lambda w, sw: (w.t(), sw))(*s.int8_weight())))
            def ours_gemm(a, b, sa, sb):
                return ops.int8_scaled_mm(a, b, sa, sb, None, torch.bfloat16)

            for name, gemm in (("ours_prod_gemm", ours_gemm), ("vllm_prod_gemm", vllm_gemm)):
                run(name, w_bytes + p_bytes + 3 * x_bytes + out_bytes,
                    lambda gemm=gemm: (prod_gemm(gemm), *prod_gemm_inputs()))

    for i, name in configs:  # (index in ops.gemm_configs(), name)
        if name.startswith("Skinny") and s.m > SKINNY_SWEEP_MAX_M:
            continue  # re-reads the weight once per 8 tokens: seconds per call at prefill sizes
        run(f"cfg:{name}", w_bytes + x_bytes + out_bytes, ours_gemm_call(i))
        if s.m <= 256:  # the quantization in front changes the ranking (programmatic launches up to M = 256, pdl.cuh)
            run(f"cfgq:{name}", w_bytes + 3 * x_bytes + out_bytes,
                lambda i=i: (lambda x, w, sw: ours_q_gemm(x, w, sw, config=i), s.activation(),
                             *(lambda w, sw: (w.t(), sw))(*s.int8_weight())))
    res = time_interleaved(graphs, replays)
    del graphs, keep
    torch.cuda.empty_cache()
    return res


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None else num / den


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _pct_over(a: float | None, b: float | None) -> float | None:
    """100 * (a / b - 1): how much longer a takes than b, in percent."""
    return None if a is None or b is None else 100.0 * (a / b - 1.0)


def derived(m: int, n: int, k: int, res: dict[str, float]) -> dict[str, float | None]:
    """TOP/s, % of peak, ratios to vLLM and to the weight-streaming bound (None where a variant is missing)."""
    ops_count = 2.0 * m * n * k
    ours = res.get("ours_gemm")
    bound = n * k / COPY_BW * 1e6
    tops = _ratio(ops_count / 1e6, ours)
    return {
        "ours_tops": tops,
        "ours_pct_peak": None if tops is None else 100.0 * tops / INT8_PEAK_TOPS,
        "bound_us": bound,
        "ours_over_bound": _ratio(ours, bound) if m <= 64 else None,
        "ours_over_copy": _ratio(ours, res.get("copy")),
        "copy_tbps": _ratio(n * k / 1e6, res.get("copy")),
        "vllm_over_ours_gemm": _ratio(res.get("vllm_gemm"), ours),
        "vllm_over_ours_q_gemm": _ratio(res.get("vllm_q_gemm"), res.get("ours_q_gemm")),
        "vllm_over_ours_prod_q_gemm": _ratio(res.get("vllm_prod_q_gemm"), res.get("ours_prod_q_gemm")),
        "q_overhead_pct": None if ours is None or "ours_q_gemm" not in res else 100.0 * (res["ours_q_gemm"] / ours - 1),
        "ours_quant_cost_pct": _pct_over(res.get("ours_prod_q_gemm"), res.get("ours_prod_gemm")),
        "vllm_quant_cost_pct": _pct_over(res.get("vllm_prod_q_gemm"), res.get("vllm_prod_gemm")),
        "vllm_tops": _ratio(ops_count / 1e6, res.get("vllm_gemm")),
    }


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"# INT8 GEMM: {meta['gpu']}, {meta['date']}, commit {meta['commit']}",
        "",
        f"vLLM: {meta['vllm']}. Microseconds per call, CUDA-graph replay, inputs rotated beyond L2, median of "
        f"{meta['replays']} interleaved replays. TOP/s and % of the {INT8_PEAK_TOPS:.0f} TOP/s int8 peak are for our GEMM "
        "alone; vLLM/ours > 1 means ours is faster; bound = int8 weight bytes / 3.0 TB/s and copy = a device copy moving as many bytes (M <= 64).",
        "",
        "| model | layer | M | bf16 | vLLM gemm | vLLM q+gemm | ours gemm | ours q+gemm | ours fused | TOP/s | % peak "
        "| vLLM/ours gemm | vLLM/ours q+gemm | vLLM/ours fused | ours/bound | copy | ours/copy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t, d = r["us"], r["derived"]
        lines.append(
            f"| {r['model']} | {r['layer']} | {r['m']} | {_fmt(t.get('bf16'), '.1f')} | "
            f"{_fmt(t.get('vllm_gemm'), '.1f')} | {_fmt(t.get('vllm_q_gemm'), '.1f')} | "
            f"{_fmt(t.get('ours_gemm'), '.1f')} | {_fmt(t.get('ours_q_gemm'), '.1f')} | "
            f"{_fmt(t.get('ours_prod_q_gemm'), '.1f')} | {_fmt(d['ours_tops'], '.0f')} | "
            f"{_fmt(d['ours_pct_peak'], '.0f')} | "
            f"{_fmt(d['vllm_over_ours_gemm'], '.2f')} | {_fmt(d['vllm_over_ours_q_gemm'], '.2f')} | "
            f"{_fmt(d.get('vllm_over_ours_prod_q_gemm'), '.2f')} | {_fmt(d['ours_over_bound'], '.2f')} | "
            f"{_fmt(t.get('copy'), '.1f')} | {_fmt(d.get('ours_over_copy'), '.2f')} |")
    quant = [r for r in rows if "ours_q" in r["us"]]
    if quant:
        lines += ["", "Quantization alone, and what it adds in front of a GEMM (us; q+gemm - that GEMM alone; "
                  "the last two pair one project's quantization with the other's GEMM):", "",
                  "| model | layer | M | ours q | vLLM q | ours q + ours gemm | vLLM q + vLLM gemm "
                  "| vLLM q + ours gemm | ours q + vLLM gemm |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in quant:
            t = r["us"]
            lines.append(f"| {r['model']} | {r['layer']} | {r['m']} | {_fmt(t.get('ours_q'), '.1f')} | "
                         f"{_fmt(t.get('vllm_q'), '.1f')} | "
                         f"{_fmt(_diff(t.get('ours_q_gemm'), t.get('ours_gemm')), '.1f')} | "
                         f"{_fmt(_diff(t.get('vllm_q_gemm'), t.get('vllm_gemm')), '.1f')} | "
                         f"{_fmt(_diff(t.get('vllm_q_ours_gemm'), t.get('ours_gemm')), '.1f')} | "
                         f"{_fmt(_diff(t.get('ours_q_vllm_gemm'), t.get('vllm_gemm')), '.1f')} |")
    prod = [r for r in rows if "ours_prod_gemm" in r["us"] or "vllm_prod_gemm" in r["us"]]
    if prod:
        lines += ["", "What the quantization costs a layer whose activation has a producer (us): the producer in "
                  "bf16 + the GEMM on an int8 activation given for free, against the producer with the "
                  "quantization + GEMM (ours: the fused kernel; vLLM: its producer, scaled_int8_quant); cost = "
                  "the second over the first - 1:", "",
                  "| model | layer | M | ours: bf16 prod + gemm | ours fused | ours cost % "
                  "| vLLM: bf16 prod + gemm | vLLM prod + q + gemm | vLLM cost % |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in prod:
            t, d = r["us"], r["derived"]
            lines.append(f"| {r['model']} | {r['layer']} | {r['m']} | {_fmt(t.get('ours_prod_gemm'), '.1f')} | "
                         f"{_fmt(t.get('ours_prod_q_gemm'), '.1f')} | {_fmt(d.get('ours_quant_cost_pct'), '+.1f')} | "
                         f"{_fmt(t.get('vllm_prod_gemm'), '.1f')} | {_fmt(t.get('vllm_prod_q_gemm'), '.1f')} | "
                         f"{_fmt(d.get('vllm_quant_cost_pct'), '+.1f')} |")
    for prefix, title in (("cfg:", "our GEMM alone"), ("cfgq:", "our quantization + GEMM, M <= 64")):
        lines += _sweep_table(rows, prefix, title)
    return "\n".join(lines) + "\n"


def _sweep_table(rows: list[dict], prefix: str, title: str) -> list[str]:
    """One row per shape, one column per forced configuration (keys `prefix + name`), and the fastest."""
    sweep = [r for r in rows if any(key.startswith(prefix) for key in r["us"])]
    if not sweep:
        return []
    names = sorted({key for r in sweep for key in r["us"] if key.startswith(prefix)})
    lines = ["", f"Tile configurations (us, {title}):", "",
             "| model | layer | M | " + " | ".join(x[len(prefix):] for x in names) + " | best |",
             "|---|---|---|" + "---|" * (len(names) + 1)]
    for r in sweep:
        vals = {x: r["us"].get(x) for x in names}
        timed = [(v, x) for x, v in vals.items() if v is not None]
        best = min(timed)[1][len(prefix):] if timed else "-"
        lines.append(f"| {r['model']} | {r['layer']} | {r['m']} | "
                     + " | ".join(_fmt(vals[x], ".1f") for x in names) + f" | {best} |")
    return lines


def commit() -> str:
    if os.environ.get("VLLM_SQ_COMMIT"):
        return os.environ["VLLM_SQ_COMMIT"]
    from benchmarks.run_info import git_commit

    return git_commit()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--models", default="7b,13b")
    ap.add_argument("--ms", default=",".join(map(str, DEFAULT_MS)))
    ap.add_argument("--replays", type=int, default=30)
    ap.add_argument("--sweep", action="store_true", help="also time every tile configuration (--sweep-models)")
    ap.add_argument("--sweep-models", default="7b", help="models whose shapes the sweep covers")
    ap.add_argument("--sweep-configs", default="", help="comma list of configuration names to sweep (default: all)")
    args = ap.parse_args(argv)

    from benchmarks.run_info import utc_now
    from vllm_sq import ops

    ok, reason = ops.available()
    if not ok:
        print(f"vllm_sq ops unavailable: {reason}", file=sys.stderr)
        return 2
    vllm_ops, vllm_err = _vllm_ops()
    gpu = torch.cuda.get_device_name()
    meta = {"gpu": gpu, "date": utc_now(), "commit": commit(), "replays": args.replays,
            "vllm": "unavailable (" + vllm_err + ")" if vllm_ops is None else "vLLM " + __import__("vllm").__version__,
            "torch": torch.__version__}
    configs = ops.gemm_configs()
    wanted = [c for c in args.sweep_configs.split(",") if c]
    unknown = sorted(set(wanted) - set(configs))
    if unknown:
        print(f"--sweep-configs: no configuration named {', '.join(unknown)} (have: {', '.join(configs)})",
              file=sys.stderr)
        return 2
    sweep = [(i, c) for i, c in enumerate(configs) if not wanted or c in wanted]
    rows = []
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "gemm_" + gpu.replace(" ", "_").replace("/", "_") + "_" + meta["date"][:10]

    def write() -> str:  # after every shape, so that a run cut short by its time limit still reports
        (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        md = markdown(meta, rows)
        (args.out / f"{stem}.md").write_text(md)
        return md

    for model in args.models.split(","):
        for layer, (n, k) in MODELS[model].items():
            for m in map(int, args.ms.split(",")):
                s = Shape(m, n, k, PRODUCER[layer], seed=m * 131 + n + k)
                res = bench_shape(s, vllm_ops, sweep if (args.sweep and model in args.sweep_models.split(",")) else [], args.replays)
                row = {"model": model, "layer": layer, "m": m, "n": n, "k": k, "us": res,
                       "derived": derived(m, n, k, res)}
                rows.append(row)
                d = row["derived"]
                print(f"{model} {layer:7s} M={m:5d}: ours {_fmt(res.get('ours_gemm'), '8.1f')} us "
                      f"({_fmt(d['ours_tops'], '6.0f')} TOP/s) vllm {_fmt(res.get('vllm_gemm'), '8.1f')} "
                      f"bf16 {_fmt(res.get('bf16'), '8.1f')}", flush=True)
                write()
    print(write())
    return 0


if __name__ == "__main__":
    sys.exit(main())
