"""Quantize + GEMM timed in isolation with benchmarks/gemm.py's own graph code, against gemm.py's full shape run.

gemm.py's table put our per_token_quant + GEMM pair 4-10% behind vLLM's on the cluster-tile decode shapes (Llama-3
qkv and 13B o_proj at M = 12-16), while benchmarks/pair_timeline.py timed the same pairs level or ahead. This builds
the pair's graph exactly as gemm.py does (Shape, capture_graph, time_interleaved: CUDA events, a sleep kernel in
front of each replay) for several numbers of weight copies, alone and interleaved with vLLM's pair and our GEMM
alone; then the two pairs interleaved with one other variant of gemm.py each (a companion graph replayed before
them in every round); then gemm.py's bench_shape on the same shape in the same process. Run 13h found the cause
this way: replayed after the `copy` variant, which leaves L2 full of dirty lines, our pair paid their write-back
(16.8 us against 15.1-15.5 after any other companion); gemm.py now reads twice the L2 size before each replay.

Usage: python -m benchmarks.pair_isolation [--shape 16x6144x4096] [--replays 30]   (needs the vLLM bundle)
Prints one line per copy count, one per companion and the bench_shape result (microseconds per call).
"""

from __future__ import annotations

import argparse
import sys

import torch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="16x6144x4096", help="MxNxK")
    ap.add_argument("--replays", type=int, default=30)
    args = ap.parse_args(argv)

    from benchmarks import gemm as g
    from vllm_sq import ops

    vo, err = g._vllm_ops()
    if vo is None:
        print(f"needs vLLM: {err}", file=sys.stderr)
        return 2
    m, n, k = map(int, args.shape.split("x"))
    s = g.Shape(m, n, k, "rms_norm", 1)
    xq0 = torch.randint(-127, 128, (m, k), dtype=torch.int8, device="cuda")
    sx0 = torch.rand(m, 1, device="cuda") * 0.01 + 1e-3

    variants = {
        "ours q+gemm": lambda x, w, sw: (lambda q, sq: ops.int8_scaled_mm(q, w, sq, sw, None, torch.bfloat16))(
            *ops.per_token_quant(x)[:2]),
        "vllm q+gemm": lambda x, w, sw: (lambda q, sq: vo.cutlass_scaled_mm(q, w, sq, sw.reshape(-1, 1),
                                                                            torch.bfloat16))(*vo.scaled_int8_quant(x)[:2]),
        "ours gemm": lambda x, w, sw: ops.int8_scaled_mm(xq0, w, sx0, sw, None, torch.bfloat16),
    }
    keep = []
    for copies in (4, 5, 8, 16):
        graphs = {}
        for name, fn in variants.items():
            sets = [(s.activation(), *(lambda w, sw: (w.t(), sw))(*s.int8_weight())) for _ in range(copies)]
            keep.append(sets)
            graphs[name] = g.capture_graph(lambda i, fn=fn, sets=sets: (lambda: fn(*sets[i])), copies)
        alone = {name: g.time_interleaved({name: gr}, args.replays)[name] for name, gr in graphs.items()}
        inter = g.time_interleaved(graphs, args.replays)
        print(f"copies {copies}: alone " + ", ".join(f"{k_} {v:.2f}" for k_, v in alone.items())
              + " | interleaved " + ", ".join(f"{k_} {v:.2f}" for k_, v in inter.items()), flush=True)
        del graphs

    def graph(build, copies):
        sets = [build() for _ in range(copies)]
        keep.append(sets)
        return g.capture_graph(lambda i: (lambda: sets[i][0](*sets[i][1:])), copies)

    def weight():
        w, sw = s.int8_weight()
        return w.t(), sw

    half = n * k // 2
    companions = {
        "none": None,
        "bf16": (lambda: (torch.mm, s.activation(), s.randn(n, k).t()), 3),
        "ours gemm": (lambda: (lambda x, w, sw: variants["ours gemm"](x, w, sw), s.activation(), *weight()), 5),
        "copy": (lambda: (torch.Tensor.copy_, torch.empty(half, dtype=torch.int8, device="cuda"),
                          torch.empty(half, dtype=torch.int8, device="cuda")), 5),
        "ours q": (lambda: (lambda x: ops.per_token_quant(x), s.activation()), 16),
        "vllm q": (lambda: (lambda x: vo.scaled_int8_quant(x), s.activation()), 16),
    }
    for name, companion in companions.items():
        graphs = {} if companion is None else {"companion": graph(*companion)}
        for pair in ("ours q+gemm", "vllm q+gemm"):
            graphs[pair] = graph(lambda pair=pair: (variants[pair], s.activation(), *weight()), 5)
        t = g.time_interleaved(graphs, args.replays)
        print(f"after {name}: ours q+gemm {t['ours q+gemm']:.2f}, vllm q+gemm {t['vllm q+gemm']:.2f}", flush=True)
        del graphs
    full = g.bench_shape(s, vo, [], args.replays)
    print("gemm.py bench_shape: " + ", ".join(f"{k_} {v:.2f}" for k_, v in full.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
