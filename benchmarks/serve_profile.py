"""Where a decode step's GPU time goes, per config: the kernels of vLLM's decode loop under torch.profiler.

The serving table (serve_throughput.py) gives one number per config; when two configs differ by a few percent, this
says in which kernels. Each config runs in a fresh process with the engine core in-process
(VLLM_ENABLE_V1_MULTIPROCESSING=0, so CUPTI sees the model's kernels, CUDA graphs included): dummy weights at real
shapes, a warm-up, then `--prompts` sequences of `--input-len` tokens decoding `--steps` tokens under the profiler.
Kernel time is summed per kernel name and divided by the decode steps; the prefill step is excluded by
subtracting a profiled one-token run. The wall time per decode step comes from unprofiled runs timed the same way
(best of three); wall - busy is what the GPU spends idle (host work, launch gaps) per step.

    python -m benchmarks.serve_profile --results-dir DIR --configs vllm-int8-w8a8,sq-dynamic

Writes DIR/serve_profile.json and DIR/serve_profile.md (and DIR/logs/<model>-<config>.log).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.clock_summary import summarize as summarize_clocks
from benchmarks.dummy_int8 import allow_function_rpc, fill_int8_weights
from benchmarks.run_info import REPO_ROOT, run_info, smoothquant_plugin_missing
from benchmarks.serve_throughput import CONFIGS, random_prompts
from benchmarks.subproc import run_logged

TOP_KERNELS = 25  # rows per config in the markdown


def kernel_table(trace: dict, steps: int) -> dict[str, Any]:
    """Per kernel name: calls and microseconds per step, from a Chrome trace's kernel (and memset/memcpy) events.

    Also the busy time per step (sum of all kernel durations) and the span per step (first start to last end), so
    that idle gaps between kernels show as span - busy.
    """
    events = [e for e in trace.get("traceEvents", [])
              if e.get("cat") in ("kernel", "gpu_memset", "gpu_memcpy") and "dur" in e]
    if not events or steps <= 0:
        return {"steps": steps, "busy_us_per_step": 0.0, "span_us_per_step": 0.0, "kernels": []}
    per_name: dict[str, list[float]] = {}
    for e in events:
        per_name.setdefault(e["name"], []).append(float(e["dur"]))
    rows = [{"name": name, "calls_per_step": len(d) / steps, "us_per_step": sum(d) / steps,
             "median_us": sorted(d)[len(d) // 2]} for name, d in per_name.items()]
    rows.sort(key=lambda r: -r["us_per_step"])
    start = min(float(e["ts"]) for e in events)
    end = max(float(e["ts"]) + float(e["dur"]) for e in events)
    return {"steps": steps, "busy_us_per_step": sum(r["us_per_step"] for r in rows),
            "span_us_per_step": (end - start) / steps, "kernels": rows}


def idle_gaps(trace: dict, steps: int, min_us: float = 3.0, top: int = 8) -> dict[str, Any]:
    """Where the GPU waits: gaps of at least `min_us` between consecutive kernels, per step, grouped by the pair
    of kernels around them (first 60 characters of each name), largest total first."""
    events = sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"]), e["name"])
                    for e in trace.get("traceEvents", [])
                    if e.get("cat") in ("kernel", "gpu_memset", "gpu_memcpy") and "dur" in e)
    groups: dict[str, list[float]] = {}
    end = None
    prev = ""
    for start, stop, name in events:
        if end is not None and start - end >= min_us:
            groups.setdefault(f"{prev[:60]} -> {name[:60]}", []).append(start - end)
        if end is None or stop > end:
            end, prev = stop, name
    rows = [{"between": k, "gaps_per_step": len(v) / steps, "us_per_step": sum(v) / steps} for k, v in groups.items()]
    rows.sort(key=lambda r: -r["us_per_step"])
    return {"idle_us_per_step": sum(r["us_per_step"] for r in rows),
            "gaps_per_step": sum(r["gaps_per_step"] for r in rows), "top": rows[:top]}


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """One engine: warm up, then profile the decode of spec["prompts"] sequences for spec["steps"] tokens."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    extra = {} if spec.get("num_gpu_blocks") is None else {"num_gpu_blocks_override": spec["num_gpu_blocks"]}
    allow_function_rpc()
    llm = LLM(model=spec["model_dir"], load_format="dummy", dtype="bfloat16", kv_cache_dtype=spec["kv_cache_dtype"],
              gpu_memory_utilization=spec["gpu_memory_utilization"], seed=0,
              compilation_config={"cudagraph_capture_sizes": spec["cudagraph_capture_sizes"]}, **extra)
    num_gpu_blocks = llm.llm_engine.vllm_config.cache_config.num_gpu_blocks
    int8_tensors = fill_int8_weights(llm)  # every config's int8 weights alike (benchmarks/dummy_int8.py)
    vocab = llm.llm_engine.vllm_config.model_config.get_vocab_size()
    seeds = iter(range(7, 10_000))

    def prompts() -> list:  # fresh token ids for every run: prefix caching must not skip the prefill
        return [TokensPrompt(prompt_token_ids=p)
                for p in random_prompts(spec["prompts"], spec["input_len"], vocab, seed=next(seeds))]

    def params(n: int) -> SamplingParams:
        return SamplingParams(temperature=1.0, top_p=1.0, max_tokens=n, ignore_eos=True)

    llm.generate(prompts(), params(8), use_tqdm=False)  # warm-up at the same batch

    def seconds(n: int) -> float:  # best of three unprofiled runs
        best = float("inf")
        for _ in range(3):
            batch = prompts()
            t0 = time.perf_counter()
            llm.generate(batch, params(n), use_tqdm=False)
            best = min(best, time.perf_counter() - t0)
        return best

    wall_us_per_step = (seconds(spec["steps"] + 1) - seconds(1)) / spec["steps"] * 1e6
    # Profile steps+1 tokens and a 1-token run alone: the difference is the decode steps without the prefill.
    traces = {}
    for label, n in (("all", spec["steps"] + 1), ("prefill", 1)):
        batch = prompts()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            llm.generate(batch, params(n), use_tqdm=False)
            torch.cuda.synchronize()
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            prof.export_chrome_trace(f.name)
            traces[label] = json.loads(Path(f.name).read_text())
    if spec.get("prefill_only"):  # the prefill run itself: every kernel of one forward over all prompts
        table = kernel_table(traces["prefill"], 1)
        return {"run_info": run_info(), "num_gpu_blocks": num_gpu_blocks, "int8_tensors_filled": int8_tensors, "steps": 1,
                "wall_us_per_step": seconds(1) * 1e6,
                "gaps": idle_gaps(traces["prefill"], 1), "busy_us_per_step": table["busy_us_per_step"],
                "kernels": table["kernels"]}
    full = kernel_table(traces["all"], 1)
    pre = kernel_table(traces["prefill"], 1)
    pre_us = {r["name"]: (r["calls_per_step"], r["us_per_step"]) for r in pre["kernels"]}
    steps = spec["steps"]
    rows = []
    for r in full["kernels"]:
        calls, us = pre_us.get(r["name"], (0.0, 0.0))
        if r["us_per_step"] - us > 0:
            rows.append({"name": r["name"], "calls_per_step": (r["calls_per_step"] - calls) / steps,
                         "us_per_step": (r["us_per_step"] - us) / steps, "median_us": r["median_us"]})
    rows.sort(key=lambda r: -r["us_per_step"])
    return {"run_info": run_info(), "num_gpu_blocks": num_gpu_blocks, "int8_tensors_filled": int8_tensors,
            "steps": steps,
            "wall_us_per_step": wall_us_per_step,
            "gaps": idle_gaps(traces["all"], steps + 1),
            "busy_us_per_step": (full["busy_us_per_step"] - pre["busy_us_per_step"]) / steps,
            "kernels": rows}


class ClockLog:
    """Samples SM clock, power, temperature and the clock event reasons with nvidia-smi while the block runs (nothing
    where it is missing): a kernel that differs between two engines may just have run at another clock."""

    def __init__(self, path: Path, interval_ms: int = 100) -> None:
        self.path, self.interval_ms, self.proc = path, interval_ms, None

    def __enter__(self) -> "ClockLog":
        if shutil.which("nvidia-smi"):
            with open(self.path, "w") as f:
                self.proc = subprocess.Popen(
                    ["nvidia-smi", "--query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_event_reasons.active",
                     "--format=csv,noheader,nounits", f"-lms={self.interval_ms}"], stdout=f, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def clock_summary_or_none(path: Path) -> dict[str, float] | None:
    """benchmarks.clock_summary over a ClockLog's file; None when there are no samples."""
    try:
        return summarize_clocks(path.read_text())
    except (OSError, ValueError):
        return None


def markdown(report: dict[str, Any]) -> str:
    info = report["run_info"]
    lines = [f"# Decode-step kernel profile: {info.get('device', '?')}, {info.get('date_utc', '?')}, commit "
             f"{info.get('commit', '?')}", "",
             (f"- prefill only: {report['prompts']} sequences x {report['input_len']} tokens, one output token; "
              "times are per run (every scheduler step of it), not per decode step"
              if report.get("prefill_only") else
              f"- {report['prompts']} sequences x {report['input_len']} tokens in, {report['steps']} decode steps "
              "profiled (prefill subtracted)") + "; vLLM engine in-process, torch.compile + CUDA graphs; dummy weights.",
             f"- command: `{report['command']}`", "",
             "| model | config | wall us per decode step (unprofiled) | GPU busy us per decode step | KV cache blocks "
             "| SM MHz / W (median while busy; clock event reasons: samples) | status |",
             "|---|---|---|---|---|---|---|"]
    for e in report["entries"]:
        ok = e.get("status") == "ok"
        busy = f"{e['busy_us_per_step']:.0f}" if ok else "-"
        wall = f"{e['wall_us_per_step']:.0f}" if ok else "-"
        clocks = e.get("clocks")
        clock = f"{clocks['sm_mhz_median']:.0f} / {clocks['power_w_median']:.0f}" if clocks else "-"
        if clocks and clocks.get("reasons"):
            clock += " (" + ", ".join(f"{k} {v}" for k, v in clocks["reasons"].items()) + ")"
        lines.append(f"| {e['model']} | {e['config']} | {wall} | {busy} | {e.get('num_gpu_blocks', '-')} | {clock} "
                     f"| {e.get('status')} {e.get('error', '')[:120]} |")
    for e in report["entries"]:
        if e.get("status") != "ok":
            continue
        lines += ["", f"## {e['model']} {e['config']} (top {TOP_KERNELS} kernels)", "",
                  "| kernel | calls / step | us / step | median us |", "|---|---|---|---|"]
        for r in e["kernels"][:TOP_KERNELS]:
            lines.append(f"| `{r['name'][:110]}` | {r['calls_per_step']:.1f} | {r['us_per_step']:.1f} | "
                         f"{r['median_us']:.2f} |")
        gaps = e.get("gaps")
        if gaps:
            lines += ["", f"Idle gaps >= 3 us (profiled run, prefill included, per token): "
                      f"{gaps['gaps_per_step']:.1f} gaps, {gaps['idle_us_per_step']:.0f} us", "",
                      "| between | gaps / step | us / step |", "|---|---|---|"]
            for r in gaps["top"]:
                lines.append(f"| `{r['between']}` | {r['gaps_per_step']:.1f} | {r['us_per_step']:.1f} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results-dir", type=Path, required=False)
    p.add_argument("--model", default="7b")
    p.add_argument("--configs", default="vllm-int8-w8a8,sq-dynamic", help=f"comma-separated, from {list(CONFIGS)}")
    p.add_argument("--prompts", type=int, default=64, help="sequences decoded together (the batch)")
    p.add_argument("--input-len", type=int, default=128)
    p.add_argument("--steps", type=int, default=32, help="decode steps profiled")
    p.add_argument("--prefill-only", action="store_true",
                   help="profile the prefill run (prompts x input-len tokens, one output token) instead")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--cudagraph-capture-sizes", default="1,2,4,8,16,24,32,48,64,96,128")
    p.add_argument("--num-gpu-blocks", type=int, default=None,
                   help="KV cache blocks for every engine (vLLM's num_gpu_blocks_override), so that the configs' "
                        "caches have the same size and layout; default: what each engine's memory profile leaves")
    p.add_argument("--config-timeout-s", type=float, default=300.0)
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.child and args.results_dir is None:
        p.error("--results-dir is required")
    unknown = set(args.configs.split(",")) - set(CONFIGS)
    if unknown:
        p.error(f"unknown config(s) {sorted(unknown)}; expected some of {list(CONFIGS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        args.child_out.write_text(json.dumps(run_child(json.loads(args.child.read_text()))))
        return 0
    from calibration.models.dummy import write_dummy_model

    out = args.results_dir
    (out / "logs").mkdir(parents=True, exist_ok=True)
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for config in args.configs.split(","):
            scheme, kv_dtype = CONFIGS[config]
            entry: dict[str, Any] = {"model": args.model, "config": config}
            if scheme.startswith("smoothquant") and (missing := smoothquant_plugin_missing()):
                entries.append({**entry, "status": "error", "error": missing})
                continue
            spec = {"model_dir": str(write_dummy_model(work / f"{args.model}-{scheme}", args.model, scheme)),
                    "kv_cache_dtype": kv_dtype, "gpu_memory_utilization": args.gpu_memory_utilization,
                    "cudagraph_capture_sizes": [int(x) for x in args.cudagraph_capture_sizes.split(",")],
                    "prompts": args.prompts, "input_len": args.input_len, "steps": args.steps,
                    "prefill_only": args.prefill_only, "num_gpu_blocks": args.num_gpu_blocks}
            spec_path, res_path = work / f"{config}.spec.json", work / f"{config}.result.json"
            spec_path.write_text(json.dumps(spec))
            cmd = [sys.executable, "-m", "benchmarks.serve_profile", "--child", str(spec_path),
                   "--child-out", str(res_path)]
            # one process, so that CUPTI in the child sees the model's kernels
            env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
            clock_log = out / "logs" / f"{args.model}-{config}-clocks.csv"
            with ClockLog(clock_log):
                res = run_logged(cmd, out / "logs" / f"{args.model}-{config}.log", args.config_timeout_s,
                                 cwd=REPO_ROOT, env=env)
            if res_path.exists():
                entries.append({**entry, "status": "ok", **json.loads(res_path.read_text()),
                                "clocks": clock_summary_or_none(clock_log)})
            else:
                reason = "timed out" if res.timed_out else f"exit code {res.returncode}"
                entries.append({**entry, "status": "error", "error": f"{reason}: {res.error_line()}"})
    report = {"run_info": next((e["run_info"] for e in entries if "run_info" in e), run_info()),
              "command": "python -m benchmarks.serve_profile " + " ".join(argv if argv is not None else sys.argv[1:]),
              "prompts": args.prompts, "input_len": args.input_len, "steps": args.steps,
              "prefill_only": args.prefill_only, "entries": entries}
    (out / "serve_profile.json").write_text(json.dumps(report, indent=2))
    (out / "serve_profile.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if all(e["status"] == "ok" for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
