"""Tensor parallelism check: a smoothquant checkpoint at TP=N generates what it generates at TP=1.

Dummy weights cannot be compared across TP sizes (vLLM draws them per shard), so this exports a real
checkpoint: the outlier-injected tiny Llama of calibration.models.tiny at a width that shards (default hidden
1024, 16 heads), calibrated and exported with SmoothQuant. Both runs (each its own process) produce greedy
tokens and the teacher-forced prompt logprobs of the same prompts; reported are the share of identical greedy
sequences, the mean length of the common prefix, and the largest prompt-logprob difference (robust to a
near-tie flipping one argmax). Throughput at TP=N is measured by `serve_throughput --tp N`.

    python -m benchmarks.tp_greedy --tp 2 --results-dir DIR            # two GPUs (H200 x2)
    python -m benchmarks.tp_greedy --checkpoint /path/to/sq --tp 2     # an existing checkpoint
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.run_info import REPO_ROOT, run_info
from benchmarks.subproc import run_logged


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    kwargs: dict[str, Any] = dict(model=spec["model_dir"], dtype=spec["dtype"], seed=0,
                                  tensor_parallel_size=spec["tp"], enforce_eager=spec["enforce_eager"],
                                  enable_prefix_caching=False, max_model_len=spec["max_model_len"])
    if spec.get("gpu_memory_utilization"):
        kwargs["gpu_memory_utilization"] = spec["gpu_memory_utilization"]
    llm = LLM(**kwargs)
    prompts = [TokensPrompt(prompt_token_ids=p) for p in spec["prompts"]]
    greedy = llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=spec["max_tokens"], ignore_eos=True),
                          use_tqdm=False)
    scored = llm.generate(prompts, SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0), use_tqdm=False)
    logprobs = [[float(out.prompt_logprobs[i][p[i]].logprob) for i in range(1, len(p))]
                for p, out in zip(spec["prompts"], scored)]
    return {"tokens": [list(o.outputs[0].token_ids) for o in greedy], "prompt_logprobs": logprobs,
            "quantization": llm.llm_engine.vllm_config.model_config.quantization, "run_info": run_info()}


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Agreement of two runs' greedy tokens and prompt logprobs."""
    prefixes, identical = [], 0
    for ta, tb in zip(a["tokens"], b["tokens"]):
        n = 0
        while n < min(len(ta), len(tb)) and ta[n] == tb[n]:
            n += 1
        prefixes.append(n / max(len(ta), 1))
        identical += ta == tb
    diffs = [abs(x - y) for ra, rb in zip(a["prompt_logprobs"], b["prompt_logprobs"]) for x, y in zip(ra, rb)]
    return {"identical_sequences": identical, "num_sequences": len(a["tokens"]),
            "mean_common_prefix": sum(prefixes) / len(prefixes), "max_abs_prompt_logprob_diff": max(diffs),
            "mean_abs_prompt_logprob_diff": sum(diffs) / len(diffs)}


def export_tiny(work: Path, args: argparse.Namespace) -> Path:
    import torch

    from calibration.act_scales import collect_act_scales
    from calibration.data import token_blocks
    from calibration.export import export_checkpoint
    from calibration.models.tiny import build_tiny_model, sample_texts

    torch.manual_seed(0)
    model, tok = build_tiny_model("llama", hidden_size=args.hidden_size, num_layers=args.num_layers, outliers=True,
                                  vocab_size=args.vocab_size)
    calib = token_blocks(tok, sample_texts(64, seed=0), num_samples=8, seq_len=128)
    scales = collect_act_scales(model, tok, calib, batch_size=4, progress=False)
    return export_checkpoint(model, tok, scales, work / "sq", alpha=0.5)


def markdown(report: dict[str, Any]) -> str:
    info = report["run_info"]
    lines = [f"# Tensor parallelism: TP={report['tp']} vs TP=1, greedy", "",
             f"- device: {info['device']}; vLLM {info['vllm']}; date {info['date_utc']}; commit {info['commit']}",
             f"- checkpoint: {report.get('checkpoint', '-')}; command: `{report['command']}`", ""]
    for tp, run in report["runs"].items():
        lines.append(f"- TP={tp}: {run['status']}" + (f" ({run['error']})" if run["status"] != "ok" else
                                                      f", quantization {run['quantization']}"))
    a = report.get("agreement")
    if a:
        lines += ["", "| identical greedy sequences | mean common prefix | max / mean abs prompt-logprob diff |",
                  "|---|---|---|",
                  f"| {a['identical_sequences']}/{a['num_sequences']} | {100 * a['mean_common_prefix']:.1f}% | "
                  f"{a['max_abs_prompt_logprob_diff']:.4f} / {a['mean_abs_prompt_logprob_diff']:.5f} |"]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tp", type=int, default=2)
    p.add_argument("--checkpoint", type=Path, default=None, help="default: export the tiny outlier model")
    p.add_argument("--hidden-size", type=int, default=1024)
    p.add_argument("--num-layers", type=int, default=4)
    p.add_argument("--vocab-size", type=int, default=512)
    p.add_argument("--num-prompts", type=int, default=16)
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--gpu-memory-utilization", type=float, default=None)
    p.add_argument("--enforce-eager", action="store_true")
    p.add_argument("--timeout-s", type=float, default=600.0)
    p.add_argument("--results-dir", type=Path, default=None)
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        args.child_out.write_text(json.dumps(run_child(json.loads(args.child.read_text()))))
        return 0
    import numpy as np

    results_dir = args.results_dir or REPO_ROOT / "benchmarks" / "results" / (
        "tp_greedy-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    results_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"run_info": run_info(), "tp": args.tp, "runs": {},
                              "command": " ".join(["python -m benchmarks.tp_greedy"] +
                                                  (argv if argv is not None else sys.argv[1:]))}
    with tempfile.TemporaryDirectory(prefix="tp_greedy-") as tmp:
        work = Path(tmp)
        ckpt = args.checkpoint or export_tiny(work, args)
        vocab = json.loads((ckpt / "config.json").read_text())["vocab_size"]
        prompts = np.random.default_rng(0).integers(3, vocab, size=(args.num_prompts, args.prompt_len)).tolist()
        report["checkpoint"] = str(args.checkpoint) if args.checkpoint else (
            f"tiny llama, hidden {args.hidden_size}, {args.num_layers} layers, outliers, smoothquant alpha 0.5")
        outs: dict[int, dict[str, Any]] = {}
        for tp in (1, args.tp):
            spec = {"model_dir": str(ckpt), "prompts": prompts, "max_tokens": args.max_tokens, "tp": tp,
                    "dtype": args.dtype, "enforce_eager": args.enforce_eager,
                    "max_model_len": args.prompt_len + args.max_tokens + 8,
                    "gpu_memory_utilization": args.gpu_memory_utilization}
            spec_path, out_path = work / f"tp{tp}.spec.json", work / f"tp{tp}.out.json"
            spec_path.write_text(json.dumps(spec))
            res = run_logged([sys.executable, "-m", "benchmarks.tp_greedy", "--child", str(spec_path),
                              "--child-out", str(out_path)], results_dir / "logs" / f"tp_greedy-tp{tp}.log",
                             args.timeout_s, cwd=REPO_ROOT)
            if out_path.exists():
                outs[tp] = json.loads(out_path.read_text())
                report["runs"][str(tp)] = {"status": "ok", "quantization": outs[tp]["quantization"],
                                           "seconds": res.seconds}
            else:
                report["runs"][str(tp)] = {"status": "error", "error": res.error_line() or
                                           (f"timed out after {args.timeout_s:.0f} s" if res.timed_out else
                                            f"exit code {res.returncode}")}
    if 1 in outs and args.tp in outs:
        report["agreement"] = compare(outs[1], outs[args.tp])
    (results_dir / "tp_greedy.json").write_text(json.dumps(report, indent=2))
    (results_dir / "tp_greedy.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if "agreement" in report else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
