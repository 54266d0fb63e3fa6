"""Offline serving throughput in vLLM: bf16 vs vLLM's INT8 W8A8 vs this project's SmoothQuant (+ FP8 KV cache).

Dummy weights at real Llama shapes (`load_format="dummy"`, token-id prompts, `ignore_eos`), so the numbers
measure the serving path, not a checkpoint. Every config runs in a fresh process (one engine start, all
workloads in it); a config that fails or times out is recorded and the run goes on.

    python -m benchmarks.serve_throughput --results-dir DIR                  # GPU suite: 7B, all configs
    python -m benchmarks.serve_throughput --full --results-dir DIR           # 7B, 13B, Llama-3-8B, 512 prompts
    python -m benchmarks.serve_throughput --merge A.json B.json --results-dir DIR
                                # one table from runs split over several calls (same workloads required)

Writes DIR/serve_throughput.json, DIR/serve_throughput.md and DIR/logs/<model>-<config>.log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.dummy_int8 import allow_function_rpc, fill_int8_weights
from benchmarks.run_info import REPO_ROOT, run_info, smoothquant_plugin_missing
from benchmarks.subproc import run_logged

# config name -> (dummy-model quantization scheme, kv_cache_dtype)
CONFIGS: dict[str, tuple[str, str]] = {
    "bf16": ("bf16", "auto"),
    "vllm-int8-w8a8": ("w8a8-int8", "auto"),
    "sq-dynamic": ("smoothquant-dynamic", "auto"),
    "sq-static": ("smoothquant-static", "auto"),
    "sq-dynamic-fp8kv": ("smoothquant-dynamic", "fp8"),
}
BASELINE = "bf16"
MODELS = ("7b", "13b", "llama3-8b")
WORKLOADS = ("prefill", "mixed", "decode")

# issue 5 targets (smoothquant vs bf16), for the table's last line
TARGETS = {"prefill": 1.65, "mixed": 1.35, "decode": 1.45, "kv_cache_tokens": 1.25}

_WEIGHTS_RE = re.compile(r"Model loading took ([0-9.]+) GiB")
_KV_RE = re.compile(r"KV cache size: ([0-9,]+) tokens")


@dataclass(frozen=True)
class Workload:
    name: str
    num_prompts: int
    input_len: int
    output_len: int
    headline: str  # which throughput the table shows: "total" or "output" tokens per second


def workloads(num_prompts: int, decode_prompts: int | list[int],
              names: tuple[str, ...] = WORKLOADS) -> list[Workload]:
    """The three shapes of issue 5: prefill-heavy, mixed, and decode at a fixed batch.

    Several decode batches (a list) become workloads "decode-<batch>", timed in the same engine start, so a
    batch sweep costs one engine start per config instead of one per batch.
    """
    batches = [decode_prompts] if isinstance(decode_prompts, int) else list(decode_prompts)
    if not batches or min(batches) < 1 or len(set(batches)) != len(batches):
        raise ValueError(f"decode batches must be distinct positive integers, got {batches}")
    decode = [Workload("decode" if len(batches) == 1 else f"decode-{b}", b, 128, 256, "output") for b in batches]
    table = {
        "prefill": [Workload("prefill", num_prompts, 1024, 1, "total")],
        "mixed": [Workload("mixed", num_prompts, 512, 128, "output")],
        "decode": decode,
    }
    unknown = set(names) - set(table)
    if unknown:
        raise ValueError(f"unknown workload(s) {sorted(unknown)}; expected some of {WORKLOADS}")
    return [w for n in names for w in table[n]]


# ----------------------------------------------------------------------------------------------------------
# child: one engine start, all workloads


def random_prompts(n: int, length: int, vocab_size: int, seed: int) -> list[list[int]]:
    """Distinct random token-id prompts (no shared prefixes, so prefix caching cannot help)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.integers(3, vocab_size, size=(n, length)).tolist()


def time_workload(llm: Any, wl: Workload, vocab_size: int, seed: int) -> dict[str, Any]:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    prompts = [TokensPrompt(prompt_token_ids=p) for p in random_prompts(wl.num_prompts, wl.input_len, vocab_size, seed)]
    params = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=wl.output_len, ignore_eos=True)
    start = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    elapsed = time.perf_counter() - start
    in_tok = sum(len(o.prompt_token_ids) for o in outputs)
    out_tok = sum(len(o.outputs[0].token_ids) for o in outputs)
    return {
        **asdict(wl),
        "seconds": elapsed,
        "prompt_tokens": in_tok,
        "output_tokens": out_tok,
        "total_tok_s": (in_tok + out_tok) / elapsed,
        "output_tok_s": out_tok / elapsed,
        "requests_s": len(outputs) / elapsed,
    }


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Start one engine for spec["model_dir"] and time every workload in it."""
    from vllm import LLM

    engine_kwargs: dict[str, Any] = dict(
        model=spec["model_dir"],
        load_format="dummy",
        dtype=spec["dtype"],
        kv_cache_dtype=spec["kv_cache_dtype"],
        tensor_parallel_size=spec["tp"],
        gpu_memory_utilization=spec["gpu_memory_utilization"],
        enforce_eager=spec["enforce_eager"],
        seed=0,
    )
    if spec.get("max_model_len"):
        engine_kwargs["max_model_len"] = spec["max_model_len"]
    if spec.get("cudagraph_capture_sizes"):
        engine_kwargs["compilation_config"] = {"cudagraph_capture_sizes": spec["cudagraph_capture_sizes"]}
    allow_function_rpc()
    t0 = time.perf_counter()
    llm = LLM(**engine_kwargs)
    startup_s = time.perf_counter() - t0
    int8_tensors = fill_int8_weights(llm)  # every config's int8 weights alike (benchmarks/dummy_int8.py)
    cache = llm.llm_engine.vllm_config.cache_config
    vocab_size = llm.llm_engine.vllm_config.model_config.get_vocab_size()
    result: dict[str, Any] = {
        "startup_s": startup_s,
        "int8_tensors_filled": int8_tensors,
        "num_gpu_blocks": cache.num_gpu_blocks,
        "block_size": cache.block_size,
        "kv_cache_tokens": (cache.num_gpu_blocks or 0) * cache.block_size,
        "kv_cache_dtype": str(cache.cache_dtype),
        "quantization": llm.llm_engine.vllm_config.model_config.quantization,
        "run_info": run_info(),
        "workloads": {},
    }
    wls = [Workload(**w) for w in spec["workloads"]]
    # Warm-up: one small batch of the longest prompt shape (first-call allocations, sampler, detokenizer).
    warm = Workload("warmup", min(8, max(w.num_prompts for w in wls)), max(w.input_len for w in wls), 4, "total")
    time_workload(llm, warm, vocab_size, seed=1234)
    for i, wl in enumerate(wls):
        result["workloads"][wl.name] = time_workload(llm, wl, vocab_size, seed=i)
        print(f"[serve_throughput] {wl.name}: {json.dumps(result['workloads'][wl.name])}", flush=True)
    return result


# ----------------------------------------------------------------------------------------------------------
# parent: one child per (model, config), then the report


def parse_log(text: str) -> dict[str, Any]:
    """Weight memory and KV-cache size as vLLM logs them (the GPU model runner logs weights; CPU does not)."""
    weights = _WEIGHTS_RE.findall(text)
    kv = _KV_RE.findall(text)
    return {
        "weights_gib": float(weights[-1]) if weights else None,
        "kv_cache_tokens_logged": int(kv[-1].replace(",", "")) if kv else None,
    }


def config_timeout(remaining_budget_s: float | None, configs_left: int, cap_s: float) -> float:
    """Seconds a child may take: twice its share of what is left of the budget, never above the cap or what is left.

    The slack lets a slow first engine start (cold torch.compile cache) finish; later configs get less, and what
    does not fit is recorded as timed out or skipped rather than overrunning the budget.
    """
    if remaining_budget_s is None:
        return cap_s
    share = 2.0 * remaining_budget_s / max(configs_left, 1)
    return max(0.0, min(cap_s, share, remaining_budget_s))


def run_one(model: str, config: str, args: argparse.Namespace, wls: list[Workload], work_dir: Path,
            results_dir: Path, timeout_s: float) -> dict[str, Any]:
    from calibration.models.dummy import write_dummy_model

    scheme, kv_dtype = CONFIGS[config]
    overrides = {"num_hidden_layers": args.num_layers} if args.num_layers else {}
    model_dir = write_dummy_model(work_dir / f"{model}-{scheme}", model, scheme, **overrides)
    spec = {
        "model_dir": str(model_dir),
        "dtype": args.dtype,
        "kv_cache_dtype": kv_dtype,
        "tp": args.tp,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "enforce_eager": args.enforce_eager,
        "max_model_len": args.max_model_len,
        "cudagraph_capture_sizes": args.cudagraph_capture_sizes,
        "workloads": [asdict(w) for w in wls],
    }
    spec_path = work_dir / f"{model}-{config}.spec.json"
    out_path = work_dir / f"{model}-{config}.result.json"
    spec_path.write_text(json.dumps(spec))
    log_path = results_dir / "logs" / f"{model}-{config}.log"
    entry: dict[str, Any] = {"model": model, "config": config, "scheme": scheme, "kv_cache_dtype": kv_dtype}
    if timeout_s <= 0:
        return {**entry, "status": "skipped", "error": "time budget spent before this config started"}
    if scheme.startswith("smoothquant") and (missing := smoothquant_plugin_missing()):
        return {**entry, "status": "error", "error": missing}
    cmd = [sys.executable, "-m", "benchmarks.serve_throughput", "--child", str(spec_path), "--child-out", str(out_path)]
    res = run_logged(cmd, log_path, timeout_s, cwd=REPO_ROOT)
    entry.update(parse_log(log_path.read_text(errors="replace")))
    entry["wall_s"] = res.seconds
    entry["log"] = str(log_path.relative_to(results_dir))
    if out_path.exists():
        entry.update(json.loads(out_path.read_text()))
        entry["status"] = "ok"
    else:
        entry["status"] = "timeout" if res.timed_out else "error"
        reason = f"timed out after {timeout_s:.0f} s" if res.timed_out else f"exit code {res.returncode}"
        entry["error"] = f"{reason}: {res.error_line()}\n" + res.log_tail(25)
    return entry


def headline(entry: dict[str, Any], wl: str) -> float | None:
    w = entry.get("workloads", {}).get(wl)
    if not w:
        return None
    return w["total_tok_s"] if w["headline"] == "total" else w["output_tok_s"]


def add_ratios(entries: list[dict[str, Any]]) -> None:
    """Each config's throughput and KV capacity relative to bf16 of the same model."""
    base = {e["model"]: e for e in entries if e["config"] == BASELINE and e["status"] == "ok"}
    for e in entries:
        b = base.get(e["model"])
        if e["status"] != "ok" or b is None:
            continue
        e["ratio_to_bf16"] = {}
        for wl in e["workloads"]:
            x, y = headline(e, wl), headline(b, wl)
            if x is not None and y:
                e["ratio_to_bf16"][wl] = x / y
        if e.get("kv_cache_tokens") and b.get("kv_cache_tokens"):
            e["ratio_to_bf16"]["kv_cache_tokens"] = e["kv_cache_tokens"] / b["kv_cache_tokens"]


def markdown(report: dict[str, Any]) -> str:
    info = report["run_info"]
    wls = report["workloads"]
    lines = [
        "# Offline serving throughput (vLLM `LLM.generate`, dummy weights)",
        "",
        f"- device: {info['device']}; vLLM {info['vllm']}; torch {info['torch']}; date {info['date_utc']}; "
        f"commit {info['commit']}",
        "- workloads: " + "; ".join(
            f"{w['name']} {w['num_prompts']} prompts x {w['input_len']} in / {w['output_len']} out "
            f"({w['headline']} tok/s)" for w in wls),
        f"- command: `{report['command']}`",
        "",
    ]
    header = ["model", "config"] + [w["name"] for w in wls] + ["weights GiB", "KV cache tokens", "status"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in report["results"]:
        ratios = e.get("ratio_to_bf16", {})
        cells = [e["model"], e["config"]]
        for w in wls:
            v = headline(e, w["name"]) if e["status"] == "ok" else None
            r = ratios.get(w["name"])
            cells.append("-" if v is None else f"{v:,.0f}" + (f" ({r:.2f}x)" if r is not None else ""))
        wg = e.get("weights_gib")
        cells.append("-" if wg is None else f"{wg:.2f}")
        kv = e.get("kv_cache_tokens")
        rk = ratios.get("kv_cache_tokens")
        cells.append("-" if not kv else f"{kv:,}" + (f" ({rk:.2f}x)" if rk is not None else ""))
        cells.append(e["status"])
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Targets for smoothquant vs bf16 (issue 5): " + ", ".join(f"{k} >= {v}x" for k, v in TARGETS.items()),
              ""]
    failed = [e for e in report["results"] if e["status"] != "ok"]
    for e in failed:
        first = (e.get("error") or "").splitlines()[0] if e.get("error") else ""
        lines.append(f"- {e['model']} / {e['config']}: {e['status']}: {first} (see {e.get('log', 'no log')})")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="7b", help=f"comma-separated, from {MODELS} (and 'tiny' for CPU smoke runs)")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, from {list(CONFIGS)}")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated, from {WORKLOADS}")
    p.add_argument("--num-prompts", type=int, default=128, help="prompts of the prefill and mixed workloads")
    p.add_argument("--decode-prompts", type=lambda v: [int(x) for x in v.split(",")], default=[64],
                   help="prompts (= batch) of the decode workload; a comma list (16,32,64) times each batch in the "
                        "same engine start (workloads decode-16, decode-32, ...)")
    p.add_argument("--full", action="store_true", help="all three models, 512 prompts (the note's baseline setup)")
    p.add_argument("--budget-s", type=float, default=None, help="wall-clock budget for all configs together")
    p.add_argument("--config-timeout-s", type=float, default=900.0, help="cap for one config (engine start included)")
    p.add_argument("--results-dir", type=Path, default=None)
    p.add_argument("--tp", type=int, default=1, help="tensor_parallel_size")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--max-model-len", type=int, default=None)
    p.add_argument("--cudagraph-capture-sizes", type=lambda v: [int(x) for x in v.split(",")], default=None,
                   help="batch sizes vLLM captures CUDA graphs for (default: vLLM's list, ~67 sizes up to 512); a "
                        "shorter list that covers the workloads' batches shortens every engine start alike")
    p.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs / compile (CPU smoke runs)")
    p.add_argument("--num-layers", type=int, default=None, help="override the model's layer count (smoke runs)")
    p.add_argument("--merge", type=Path, nargs="+", default=None,
                   help="serve_throughput.json files of earlier runs: write one report of all their results")
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.full:
        args.models, args.num_prompts = ",".join(MODELS), 512
    return args


def merge_reports(paths: list[Path], command: str) -> dict[str, Any]:
    """One report from runs split over several calls; each result keeps its own run_info (date, commit)."""
    reports = [json.loads(p.read_text()) for p in paths]
    wls = reports[0]["workloads"]
    for path, r in zip(paths, reports):
        if r["workloads"] != wls:
            raise SystemExit(f"{path}: its workloads differ from {paths[0]}'s; only runs of the same workloads merge")
    entries: list[dict[str, Any]] = []
    for r in reports:
        for e in r["results"]:
            e = dict(e)
            e.pop("ratio_to_bf16", None)
            e.setdefault("run_info", r["run_info"])
            entries.append(e)
    add_ratios(entries)
    info = dict(reports[0]["run_info"])
    info["commit"] = " + ".join(dict.fromkeys(r["run_info"]["commit"] for r in reports))
    info["date_utc"] = " / ".join(dict.fromkeys(r["run_info"]["date_utc"] for r in reports))
    return {"run_info": info, "command": command, "workloads": wls, "tp": reports[0].get("tp", 1),
            "merged_from": [str(p) for p in paths], "results": entries}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.merge:
        command = " ".join(["python -m benchmarks.serve_throughput"] + (argv if argv is not None else sys.argv[1:]))
        report = merge_reports(args.merge, command)
        out = args.results_dir or Path(".")
        out.mkdir(parents=True, exist_ok=True)
        (out / "serve_throughput.json").write_text(json.dumps(report, indent=2))
        (out / "serve_throughput.md").write_text(markdown(report))
        print(markdown(report))
        return 0
    if args.child:
        result = run_child(json.loads(args.child.read_text()))
        args.child_out.write_text(json.dumps(result, indent=2))
        return 0

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    from calibration.models.dummy import SHAPES

    bad = [m for m in models if m not in SHAPES] + [c for c in configs if c not in CONFIGS]
    if bad:
        raise SystemExit(f"unknown model(s)/config(s): {bad}; models: {list(SHAPES)}, configs: {list(CONFIGS)}")
    wls = workloads(args.num_prompts, args.decode_prompts, tuple(w.strip() for w in args.workloads.split(",")))
    results_dir = args.results_dir or REPO_ROOT / "benchmarks" / "results" / (
        "serve_throughput-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    results_dir.mkdir(parents=True, exist_ok=True)

    start = time.monotonic()
    entries: list[dict[str, Any]] = []
    plan = [(m, c) for m in models for c in configs]
    report: dict[str, Any] = {
        "run_info": run_info(),
        "command": " ".join(["python -m benchmarks.serve_throughput"] + (argv if argv is not None else sys.argv[1:])),
        "workloads": [asdict(w) for w in wls],
        "tp": args.tp,
        "results": entries,
    }
    with tempfile.TemporaryDirectory(prefix="serve_throughput-") as tmp:
        for i, (model, config) in enumerate(plan):
            remaining = None if args.budget_s is None else args.budget_s - (time.monotonic() - start)
            timeout = config_timeout(remaining, len(plan) - i, args.config_timeout_s)
            print(f"[serve_throughput] {model} / {config}: up to {timeout:.0f} s", flush=True)
            entry = run_one(model, config, args, wls, Path(tmp), results_dir, timeout)
            entries.append(entry)
            speeds = ", ".join(f"{w.name}={headline(entry, w.name) or 0:,.0f}" for w in wls)
            print(f"[serve_throughput] {model} / {config}: {entry['status']} {speeds}", flush=True)
            if entry["status"] != "ok":
                print(entry.get("error", ""), flush=True)
            add_ratios(entries)
            # Rewrite after every config: a suite killed from outside still leaves what finished.
            (results_dir / "serve_throughput.json").write_text(json.dumps(report, indent=2))
            (results_dir / "serve_throughput.md").write_text(markdown(report))
    report["total_s"] = time.monotonic() - start
    (results_dir / "serve_throughput.json").write_text(json.dumps(report, indent=2))
    print(markdown(report))
    return 0 if all(e["status"] == "ok" for e in entries) else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
