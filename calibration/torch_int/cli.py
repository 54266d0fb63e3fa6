"""Command line: `python -m calibration.torch_int convert SRC DST [--overwrite]` and `... compare [options]`."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """`python -m calibration.torch_int convert SRC DST [--overwrite]` | `... compare [options]`."""
    from calibration.torch_int.compare import compare_tiny
    from calibration.torch_int.convert import convert_torch_int

    p = argparse.ArgumentParser(prog="python -m calibration.torch_int",
                                description="original SmoothQuant (torch-int Int8OPT) OPT checkpoints")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="convert a torch-int checkpoint directory into a smoothquant checkpoint")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    m = sub.add_parser("compare", help="measure conversion fidelity on a tiny OPT (docs/torch_int.md)")
    m.add_argument("--seq-len", type=int, default=32)
    m.add_argument("--hidden-size", type=int, default=64)
    m.add_argument("--layers", type=int, default=2)
    m.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.command == "convert":
        try:
            print(convert_torch_int(args.src, args.dst, overwrite=args.overwrite))
        except (ValueError, FileExistsError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    rows = compare_tiny(seq_len=args.seq_len, hidden_size=args.hidden_size, num_layers=args.layers, seed=args.seed)
    print("| a | b | relative logits error | max abs logprob diff | top-1 agreement |")
    print("|---|---|---|---|---|")
    for a, b, rel, lp, top1 in rows:
        print(f"| {a} | {b} | {rel:.3g} | {lp:.3g} | {top1:.3f} |")
    return 0
