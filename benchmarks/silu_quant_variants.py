"""SiLU-and-mul + quant variants, alone and in front of down_proj's GEMM (GPU).

Experiment of session 14: the staged kernel (rows through a shared-memory ring, one persistent CTA per SM)
against the one-row-per-CTA kernel at 133-4,095 rows. Each variant is forced through the temporary
VLLM_SQ_SILU_EXP switch of csrc/quant/quant_kernels.cu ('' = the default rule, 'staged<S>'), read when the call
is captured; timing as benchmarks/gemm.py (CUDA-graph replay, inputs rotated beyond L2, median of interleaved
replays).

    python -m benchmarks.silu_quant_variants --out DIR [--ms 256,1024] [--variants ";staged2;staged3"]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from benchmarks.gemm import capture_graph, copies_for, time_interleaved

DOWN = {"7b": (4096, 11008), "13b": (5120, 13824), "llama3-8b": (4096, 14336)}  # down_proj N, K


def main(argv: list[str] | None = None) -> int:
    from vllm_sq.ops import int8_scaled_mm, silu_and_mul_quant

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--ms", default="256,1024")
    ap.add_argument("--variants", default=";staged2;staged3;staged4",
                    help="semicolon list of VLLM_SQ_SILU_EXP values ('' = the default rule)")
    ap.add_argument("--replays", type=int, default=30)
    ap.add_argument("--models", default=",".join(DOWN))
    args = ap.parse_args(argv)
    variants = args.variants.split(";")
    rows = []
    for model in args.models.split(","):
        n, k = DOWN[model]
        for m in map(int, args.ms.split(",")):
            copies = copies_for(m * 2 * k * 2 + n * k)
            xs = [torch.randn(m, 2 * k, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
            ws = [torch.randint(-127, 128, (n, k), device="cuda", dtype=torch.int8) for _ in range(copies)]
            sb = torch.rand(n, 1, device="cuda", dtype=torch.float32) / 100
            graphs = {}
            mismatch = {}
            os.environ["VLLM_SQ_SILU_EXP"] = ""
            ref_q, ref_s = silu_and_mul_quant(xs[0])
            for v in variants:  # every variant's codes and scales equal the default rule's
                os.environ["VLLM_SQ_SILU_EXP"] = v
                q0, s0 = silu_and_mul_quant(xs[0])
                mismatch[v] = int((q0 != ref_q).sum()) + int((s0 != ref_s).sum())
            for v in variants:
                os.environ["VLLM_SQ_SILU_EXP"] = v
                graphs[f"silu[{v}]"] = capture_graph(lambda i: (lambda: silu_and_mul_quant(xs[i])), copies)

                def pair(i):
                    def call():
                        q, s = silu_and_mul_quant(xs[i])
                        return int8_scaled_mm(q, ws[i].t(), s, sb, None, torch.bfloat16)
                    return call

                graphs[f"pair[{v}]"] = capture_graph(pair, copies)
            os.environ.pop("VLLM_SQ_SILU_EXP", None)
            qs = [silu_and_mul_quant(x) for x in xs]
            graphs["gemm"] = capture_graph(
                lambda i: (lambda: int8_scaled_mm(qs[i][0], ws[i].t(), qs[i][1], sb, None, torch.bfloat16)), copies)
            us = time_interleaved(graphs, args.replays)
            row = {"model": model, "m": m, "us": us, "mismatch": mismatch}
            rows.append(row)
            print(json.dumps(row), flush=True)
            del graphs, xs, ws, qs
            torch.cuda.empty_cache()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "silu_quant_variants.json").write_text(json.dumps(
        {"device": torch.cuda.get_device_name(), "commit": os.environ.get("VLLM_SQ_COMMIT", ""), "rows": rows},
        indent=2))
    lines = ["| model | M | gemm | " + " | ".join(f"silu [{v or 'default'}] | pair [{v or 'default'}]" for v in variants)
             + " |", "|" + "---|" * (3 + 2 * len(variants))]
    for r in rows:
        u = r["us"]
        lines.append(f"| {r['model']} | {r['m']} | {u['gemm']:.1f} | " + " | ".join(
            f"{u[f'silu[{v}]']:.1f} | {u[f'pair[{v}]']:.1f}" for v in variants) + " |"
                     + ("" if not any(r["mismatch"].values()) else f" MISMATCH {r['mismatch']}"))
    (args.out / "silu_quant_variants.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
