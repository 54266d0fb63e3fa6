"""What the quantization adds over the GEMM, in two benchmarks/gemm.py results side by side.

For every shape in both files: our GEMM alone, what our quantization adds in front of it (ours_q_gemm - ours_gemm),
what our fused producer adds (ours_prod_q_gemm - ours_gemm) and what vLLM's producer + quantization add
(vllm_prod_q_gemm - vllm_gemm), in microseconds; then the sums of the added times over the shapes both files have.
Used to compare two builds of the quantization kernels (kernel_notes.md).

Usage: python -m benchmarks.gemm_compare BEFORE.json AFTER.json [--min-m 1024]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ADDED = {  # column -> (variant, the GEMM it is measured over)
    "q": ("ours_q_gemm", "ours_gemm"),
    "fused": ("ours_prod_q_gemm", "ours_gemm"),
    "vllm prod+q": ("vllm_prod_q_gemm", "vllm_gemm"),
}


def added(us: dict[str, float]) -> dict[str, float | None]:
    """Microseconds each variant adds over its GEMM (None where the file lacks either)."""
    out: dict[str, float | None] = {}
    for col, (var, base) in ADDED.items():
        out[col] = us[var] - us[base] if var in us and base in us else None
    return out


def rows_by_shape(result: dict, min_m: int) -> dict[tuple[str, str, int], dict[str, float]]:
    return {(r["model"], r["layer"], r["m"]): r["us"] for r in result["rows"] if r["m"] >= min_m}


def compare(before: dict, after: dict, min_m: int = 1) -> str:
    a, b = rows_by_shape(before, min_m), rows_by_shape(after, min_m)
    shapes = [s for s in b if s in a]
    cols = list(ADDED)
    lines = ["| model | layer | M | GEMM before | GEMM after | "
             + " | ".join(f"{c} before | {c} after" for c in cols) + " |",
             "|---|---|---|---|---|" + "---|---|" * len(cols)]
    totals = {c: [0.0, 0.0] for c in cols}
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    for s in shapes:
        da, db = added(a[s]), added(b[s])
        cells = []
        for c in cols:
            cells += [fmt(da[c]), fmt(db[c])]
            if da[c] is not None and db[c] is not None:
                totals[c][0] += da[c]
                totals[c][1] += db[c]
        lines.append(f"| {s[0]} | {s[1]} | {s[2]} | {fmt(a[s].get('ours_gemm'))} | {fmt(b[s].get('ours_gemm'))} | "
                     + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"sum of {c} added: {t[0]:.1f} -> {t[1]:.1f} us" for c, t in totals.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--min-m", type=int, default=1)
    args = ap.parse_args(argv)
    print(compare(json.loads(args.before.read_text()), json.loads(args.after.read_text()), args.min_m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
