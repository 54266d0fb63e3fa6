"""Online serving latency: `vllm serve` on 127.0.0.1 with a dummy-weight checkpoint, TTFT and ITL percentiles.

For each config a server is started (`python -m vllm.entrypoints.cli.main serve`, which works where vLLM is
only on PYTHONPATH), driven by `benchmarks.load_gen` at a few request rates (bounded in requests and time),
and stopped. A config that fails is recorded and the run goes on.

    python -m benchmarks.serve_latency --results-dir DIR                      # smoothquant dynamic, 7B shapes
    python -m benchmarks.serve_latency --configs bf16,sq-dynamic --rates 1,4,16,inf --num-requests 200

Writes DIR/serve_latency.json, DIR/serve_latency.md and DIR/logs/latency-<model>-<config>.log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.load_gen import run_rate
from benchmarks.run_info import REPO_ROOT, run_info, smoothquant_plugin_missing
from benchmarks.serve_throughput import CONFIGS, random_prompts
from benchmarks.subproc import stop_group

SERVED_NAME = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(model_dir: Path, port: int, kv_cache_dtype: str, args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", str(model_dir),
           "--host", "127.0.0.1", "--port", str(port), "--served-model-name", SERVED_NAME,
           "--load-format", "dummy", "--dtype", args.dtype, "--kv-cache-dtype", kv_cache_dtype, "--seed", "0",
           "--gpu-memory-utilization", str(args.gpu_memory_utilization), "--tensor-parallel-size", str(args.tp),
           "--disable-uvicorn-access-log"]
    if args.max_model_len:
        cmd += ["--max-model-len", str(args.max_model_len)]
    if args.enforce_eager:
        cmd.append("--enforce-eager")
    if args.cudagraph_capture_sizes:
        cmd += ["--compilation-config", json.dumps({"cudagraph_capture_sizes": args.cudagraph_capture_sizes})]
    return cmd


def wait_ready(proc: subprocess.Popen, port: int, timeout_s: float) -> str | None:
    """Poll /health until 200; returns an error text if the server died or did not come up in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"server exited with code {proc.returncode} before it was ready"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                if resp.status == 200:
                    return None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(2)
    return f"server not ready after {timeout_s:.0f} s"


def last_error_line(log_path: Path) -> str:
    lines = log_path.read_text(errors="replace").splitlines()
    for line in reversed(lines[-200:]):
        if "Error" in line or "Exception" in line:
            return line.strip()[:400]
    return ""


def run_config(model: str, config: str, args: argparse.Namespace, work: Path, results_dir: Path,
               budget_end: float) -> dict[str, Any]:
    from calibration.models.dummy import resolve_shape, write_dummy_model

    scheme, kv_dtype = CONFIGS[config]
    overrides = {"num_hidden_layers": args.num_layers} if args.num_layers else {}
    model_dir = write_dummy_model(work / f"{model}-{scheme}", model, scheme, **overrides)
    port = free_port()
    log_path = results_dir / "logs" / f"latency-{model}-{config}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    entry: dict[str, Any] = {"model": model, "config": config, "scheme": scheme, "kv_cache_dtype": kv_dtype,
                             "log": str(log_path.relative_to(results_dir)), "rates": []}
    if scheme.startswith("smoothquant") and (missing := smoothquant_plugin_missing()):
        return {**entry, "status": "error", "error": missing}
    cmd = server_command(model_dir, port, kv_dtype, args)
    start = time.monotonic()
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True)
        try:
            ready_timeout = min(args.server_timeout_s, max(budget_end - time.monotonic(), 1.0))
            err = wait_ready(proc, port, ready_timeout)
            entry["startup_s"] = time.monotonic() - start
            if err:
                entry.update(status="error", error=f"{err}: {last_error_line(log_path)}")
                return entry
            vocab = resolve_shape(model).vocab_size
            prompts = random_prompts(args.num_requests, args.input_len, vocab, seed=0)
            # Warm-up requests outside the measurement (first-request allocations, detokenizer).
            asyncio.run(run_rate("127.0.0.1", port, SERVED_NAME, prompts[:2], 8, float("inf"), 120.0))
            for i, rate in enumerate(args.rates):
                left = budget_end - time.monotonic()
                if left < 5:
                    entry["rates"].append({"request_rate": "inf" if rate == float("inf") else rate,
                                          "skipped": "time budget spent"})
                    continue
                res = asyncio.run(run_rate("127.0.0.1", port, SERVED_NAME, prompts, args.output_len, rate,
                                           min(args.max_seconds_per_rate, left), seed=i))
                entry["rates"].append(res)
                print(f"[serve_latency] {model}/{config} rate {res['request_rate']}: {res['completed']} ok, "
                      f"TTFT p50 {res['ttft_ms']['p50']} ms, ITL p50 {res['itl_ms']['p50']} ms", flush=True)
            measured = [r for r in entry["rates"] if "completed" in r]
            ok = bool(measured) and all(r["completed"] > 0 for r in measured)
            entry["status"] = "ok" if ok else "error"
            if not ok:
                entry["error"] = "; ".join(e for r in measured for e in r.get("errors", [])) or "no rate measured"
        finally:
            stop_group(proc)
            entry["wall_s"] = time.monotonic() - start
    return entry


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f}"


def markdown(report: dict[str, Any]) -> str:
    info = report["run_info"]
    p = report["params"]
    lines = [
        "# Online serving latency (`vllm serve`, dummy weights, streamed /v1/completions)",
        "",
        f"- device: {info['device']}; vLLM {info['vllm']}; date {info['date_utc']}; commit {info['commit']}",
        f"- {p['input_len']} in / {p['output_len']} out tokens, up to {p['num_requests']} requests and "
        f"{p['max_seconds_per_rate']:.0f} s per rate, Poisson arrivals; command: `{report['command']}`",
        "",
        "| model | config | rate (req/s) | done | out tok/s | TTFT p50 / p90 / p99 ms | ITL p50 / p90 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in report["results"]:
        if e["status"] != "ok" and not e.get("rates"):
            why = f"{e['status']}: {e.get('error', '')[:120]}"
            lines.append(f"| {e['model']} | {e['config']} | - | - | - | {why} | - |")
            continue
        for r in e["rates"]:
            if "completed" not in r:
                lines.append(f"| {e['model']} | {e['config']} | {r['request_rate']} | - | - | {r['skipped']} | - |")
                continue
            t, i = r["ttft_ms"], r["itl_ms"]
            lines.append(
                f"| {e['model']} | {e['config']} | {r['request_rate']} | {r['completed']}/{r['sent']} | "
                f"{r['output_tok_s']:,.0f} | {_fmt(t['p50'])} / {_fmt(t['p90'])} / {_fmt(t['p99'])} | "
                f"{_fmt(i['p50'])} / {_fmt(i['p90'])} / {_fmt(i['p99'])} |")
    return "\n".join(lines) + "\n"


def parse_rates(text: str) -> list[float]:
    rates = []
    for tok in text.split(","):
        tok = tok.strip()
        rate = float("inf") if tok == "inf" else float(tok)
        if rate <= 0:
            raise argparse.ArgumentTypeError(f"request rates must be > 0 or 'inf', got {tok!r}")
        rates.append(rate)
    return rates


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="7b", help="comma-separated dummy shapes (calibration.models.dummy.SHAPES)")
    p.add_argument("--configs", default="sq-dynamic", help=f"comma-separated, from {list(CONFIGS)}")
    p.add_argument("--rates", type=parse_rates, default=parse_rates("2,8,inf"), help="req/s list; 'inf' = all at once")
    p.add_argument("--num-requests", type=int, default=64, help="requests per rate (the bound)")
    p.add_argument("--max-seconds-per-rate", type=float, default=60.0, help="deadline per rate (the other bound)")
    p.add_argument("--input-len", type=int, default=512)
    p.add_argument("--output-len", type=int, default=128)
    p.add_argument("--budget-s", type=float, default=None, help="wall-clock budget for the whole run")
    p.add_argument("--server-timeout-s", type=float, default=600.0, help="longest wait for a server to be ready")
    p.add_argument("--results-dir", type=Path, default=None)
    p.add_argument("--tp", type=int, default=1)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--max-model-len", type=int, default=None)
    p.add_argument("--enforce-eager", action="store_true")
    p.add_argument("--cudagraph-capture-sizes", type=lambda v: [int(x) for x in v.split(",")], default=None,
                   help="batch sizes the server captures CUDA graphs for (default: vLLM's list)")
    p.add_argument("--num-layers", type=int, default=None, help="override the model's layer count (smoke runs)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    from calibration.models.dummy import SHAPES

    bad = [m for m in models if m not in SHAPES] + [c for c in configs if c not in CONFIGS]
    if bad:
        raise SystemExit(f"unknown model(s)/config(s): {bad}; models: {list(SHAPES)}, configs: {list(CONFIGS)}")
    results_dir = args.results_dir or REPO_ROOT / "benchmarks" / "results" / (
        "serve_latency-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    results_dir.mkdir(parents=True, exist_ok=True)
    budget_end = time.monotonic() + (args.budget_s if args.budget_s is not None else 1e9)
    entries: list[dict[str, Any]] = []
    report = {
        "run_info": run_info(),
        "command": " ".join(["python -m benchmarks.serve_latency"] + (argv if argv is not None else sys.argv[1:])),
        "params": {k: getattr(args, k) for k in ("input_len", "output_len", "num_requests", "max_seconds_per_rate")},
        "results": entries,
    }
    with tempfile.TemporaryDirectory(prefix="serve_latency-") as tmp:
        for model in models:
            for config in configs:
                if budget_end - time.monotonic() < 10:
                    entries.append({"model": model, "config": config, "status": "skipped",
                                    "error": "time budget spent", "rates": []})
                    continue
                print(f"[serve_latency] {model} / {config}: starting server", flush=True)
                entries.append(run_config(model, config, args, Path(tmp), results_dir, budget_end))
                print(f"[serve_latency] {model} / {config}: {entries[-1]['status']} {entries[-1].get('error', '')}",
                      flush=True)
                (results_dir / "serve_latency.json").write_text(json.dumps(report, indent=2, default=str))
                (results_dir / "serve_latency.md").write_text(markdown(report))
    (results_dir / "serve_latency.json").write_text(json.dumps(report, indent=2, default=str))
    (results_dir / "serve_latency.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if entries and all(e["status"] == "ok" for e in entries) else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
