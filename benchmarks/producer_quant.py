"""The int8 activation's producer alone: RMSNorm + quant and SiLU-and-mul + quant, three ways, on the GPU.

Under torch.compile, the project's fused CUDA kernels (`vllm_sq.ops.rms_norm_quant`, `silu_and_mul_quant`) produce
the int8 activation (vllm_sq/producer_fusion.py); with vLLM's INT8 kernels as the backend, vllm_sq writes the
quantization in torch ops and Inductor fuses it into the norm / SiLU-and-mul kernel (vllm_sq/kernels/cuda.py; the
only path before session 9). This times both against vLLM's unfused pair (its
`rms_norm` / `silu_and_mul` op, then `scaled_int8_quant`), per shape, as benchmarks/gemm.py times GEMMs (CUDA-graph
replay, inputs rotated beyond L2, median of interleaved replays). The Inductor variant is the native forward of
vLLM's RMSNorm / SiluAndMul followed by `quantize_activation`, compiled once per width with M dynamic, as vLLM
compiles a model.

    python -m benchmarks.producer_quant --out DIR [--models 7b,13b] [--ms 1,16,64,256,1024,4096,16384]

Writes DIR/producer_quant_<gpu>_<date>.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

from vllm_sq.kernels.quant_torch import quantize_activation

WIDTHS = {"7b": (4096, 11008), "13b": (5120, 13824), "llama3-8b": (4096, 14336)}  # hidden, intermediate
EPS = 1e-5


def rms_norm_native(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """vLLM's RMSNorm.forward_native without a residual: fp32 statistics, rounded to x's dtype, times weight."""
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + EPS)
    return xf.to(x.dtype) * weight


def silu_and_mul_native(x: torch.Tensor) -> torch.Tensor:
    d = x.shape[-1] // 2
    return torch.nn.functional.silu(x[..., :d]) * x[..., d:]


def rms_quant_torch(x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    q, s, _ = quantize_activation(rms_norm_native(x, weight), dynamic=True, per_token=True, symmetric=True)
    return q, s


def silu_quant_torch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    q, s, _ = quantize_activation(silu_and_mul_native(x), dynamic=True, per_token=True, symmetric=True)
    return q, s


def variants(producer: str, vllm_ops: Any, compiled: Callable) -> dict[str, Callable]:
    """name -> fn(inputs) for one producer; inputs are (x, weight) for rms, (x,) for silu."""
    from vllm_sq import ops

    if producer == "rms":
        out = {"ours_cuda": lambda x, w: ops.rms_norm_quant(x, w, EPS),
               "inductor": lambda x, w: compiled(x, w)}
        if vllm_ops is not None:
            def vllm_rms(x, w):
                h = torch.empty_like(x)
                vllm_ops.rms_norm(h, x, w, EPS)
                return vllm_ops.scaled_int8_quant(h)
            out["vllm"] = vllm_rms
        return out
    out = {"ours_cuda": lambda x: ops.silu_and_mul_quant(x), "inductor": lambda x: compiled(x)}
    if vllm_ops is not None:
        def vllm_silu(x):
            h = torch.empty(x.shape[0], x.shape[1] // 2, dtype=x.dtype, device=x.device)
            torch.ops._C.silu_and_mul(h, x)
            return vllm_ops.scaled_int8_quant(h)
        out["vllm"] = vllm_silu
    return out


def bench(models: list[str], ms: list[int], replays: int) -> list[dict[str, Any]]:
    from benchmarks.gemm import _vllm_ops, capture_graph, copies_for, time_interleaved

    vllm_ops, _ = _vllm_ops()
    rows = []
    for model in models:
        hidden, inter = WIDTHS[model]
        for producer, width in (("rms", hidden), ("silu", inter)):
            fn = rms_quant_torch if producer == "rms" else silu_quant_torch
            compiled = torch.compile(fn, dynamic=None)
            for m in ms:
                gen = torch.Generator("cuda").manual_seed(m + width)
                in_cols = width if producer == "rms" else 2 * width
                bytes_per_call = m * in_cols * 2 + m * width + 4 * m
                n = copies_for(bytes_per_call)
                xs = [torch.randn(m, in_cols, device="cuda", generator=gen).bfloat16() for _ in range(n)]
                w = (torch.rand(width, device="cuda", generator=gen) + 0.5).bfloat16()
                if m > 1:  # dynamo specializes size-1 dims; M = 1 gets its own graph
                    for x in xs:
                        torch._dynamo.mark_dynamic(x, 0)  # one compile per width, M dynamic (as vLLM compiles)
                args = [(x, w) if producer == "rms" else (x,) for x in xs]
                graphs = {}
                for name, f in variants(producer, vllm_ops, compiled).items():
                    graphs[name] = capture_graph(lambda i, f=f: (lambda: f(*args[i])), n)
                us = time_interleaved(graphs, replays)
                rows.append({"model": model, "producer": producer, "m": m, "width": width,
                             "bytes": bytes_per_call, "us": us})
                print(f"[producer_quant] {model} {producer} M={m}: {json.dumps(us)}", flush=True)
                del graphs, xs, args
                torch.cuda.empty_cache()
    return rows


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [f"# int8 activation producers: {meta['gpu']}, {meta['date']}, commit {meta['commit']}", "",
             "Microseconds per call, CUDA-graph replay, inputs rotated beyond L2, median of interleaved replays. "
             "rms: RMSNorm(x [M, hidden]) * w -> int8 + per-token scales; silu: silu(gate) * up of x [M, 2 x "
             "intermediate] -> int8 + scales. inductor: vLLM's native forward + `quantize_activation`, "
             "torch.compile'd (what vllm_sq runs under torch.compile); ours_cuda: `vllm_sq.ops` kernel; vllm: "
             "vLLM's op + `scaled_int8_quant`. GB/s: input + output bytes over the ours_cuda time.", "",
             "| model | producer | M | ours_cuda | inductor | vllm | inductor / ours_cuda | GB/s (ours_cuda) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        u = r["us"]
        vl = f"{u['vllm']:.1f}" if "vllm" in u else "-"
        lines.append(f"| {r['model']} | {r['producer']} | {r['m']} | {u['ours_cuda']:.1f} | {u['inductor']:.1f} | "
                     f"{vl} | {u['inductor'] / u['ours_cuda']:.2f} | {r['bytes'] / u['ours_cuda'] / 1e3:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--models", default="7b,13b")
    ap.add_argument("--ms", default="1,16,64,256,1024,4096,16384")
    ap.add_argument("--replays", type=int, default=30)
    args = ap.parse_args(argv)
    models = args.models.split(",")
    unknown = set(models) - set(WIDTHS)
    if unknown:
        ap.error(f"unknown model(s) {sorted(unknown)}; expected some of {sorted(WIDTHS)}")
    if not torch.cuda.is_available():
        print("producer_quant needs a CUDA GPU", file=sys.stderr)
        return 2
    from benchmarks.gemm import commit

    rows = bench(models, [int(m) for m in args.ms.split(",")], args.replays)
    meta = {"gpu": torch.cuda.get_device_name(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "commit": commit(), "torch": torch.__version__}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"producer_quant_{meta['gpu'].replace(' ', '_')}_{meta['date'][:10]}"
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (args.out / f"{stem}.md").write_text(markdown(meta, rows))
    print(markdown(meta, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
