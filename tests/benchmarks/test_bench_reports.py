"""Report logic of the serving benchmarks, without starting an engine: log parsing, budgets, ratios, tables."""

import argparse
import json

import pytest

from benchmarks import serve_throughput as st
from benchmarks.serve_latency import markdown as latency_markdown, parse_rates
from benchmarks.vllm_ppl import mean_abs_delta, perplexity


def test_log_parsing_reads_vllm_026_and_032_lines():
    v026 = ("INFO [gpu_model_runner.py:5348] Model loading took 6.7841 GiB memory and 3.1 seconds\n"
            "INFO [kv_cache_utils.py:2177] GPU KV cache size: 464,336 tokens\n")
    v032 = "INFO [kv_cache_utils.py:2328] CPU KV cache size: 1,048,576 tokens, Maximum concurrency for 2,048 ..."
    assert st.parse_log(v026) == {"weights_gib": 6.7841, "kv_cache_tokens_logged": 464336}
    assert st.parse_log(v032) == {"weights_gib": None, "kv_cache_tokens_logged": 1048576}


def test_config_timeout_shares_the_budget():
    assert st.config_timeout(None, 5, 900) == 900
    assert st.config_timeout(500, 5, 900) == pytest.approx(200)  # twice its share
    assert st.config_timeout(100, 1, 900) == 100  # never beyond what is left
    assert st.config_timeout(-3, 2, 900) == 0


def test_workloads_are_issue_5_shapes():
    wls = {w.name: w for w in st.workloads(128, 64)}
    assert (wls["prefill"].input_len, wls["prefill"].output_len, wls["prefill"].num_prompts) == (1024, 1, 128)
    assert (wls["mixed"].input_len, wls["mixed"].output_len) == (512, 128)
    assert (wls["decode"].num_prompts, wls["decode"].input_len, wls["decode"].output_len) == (64, 128, 256)
    with pytest.raises(ValueError, match="unknown workload"):
        st.workloads(1, 1, ("prefil",))


def test_decode_batches_share_one_engine_start():
    wls = st.workloads(128, [16, 32, 64], ("prefill", "decode"))
    assert [(w.name, w.num_prompts) for w in wls] == [("prefill", 128), ("decode-16", 16), ("decode-32", 32),
                                                       ("decode-64", 64)]
    assert all((w.input_len, w.output_len) == (128, 256) for w in wls[1:])
    assert st.parse_args(["--decode-prompts", "16,32"]).decode_prompts == [16, 32]
    assert [w.name for w in st.workloads(1, st.parse_args([]).decode_prompts, ("decode",))] == ["decode"]
    for bad in ([], [0], [16, 16]):
        with pytest.raises(ValueError, match="distinct positive"):
            st.workloads(1, bad, ("decode",))


def _entry(config, prefill, mixed, kv, status="ok"):
    return {"model": "7b", "config": config, "status": status, "kv_cache_tokens": kv, "weights_gib": 6.5,
            "workloads": {"prefill": {"headline": "total", "total_tok_s": prefill, "output_tok_s": 1.0},
                          "mixed": {"headline": "output", "total_tok_s": 1.0, "output_tok_s": mixed}}}


def test_ratios_and_table_against_bf16():
    entries = [_entry("bf16", 40000.0, 4000.0, 400000), _entry("sq-dynamic", 70000.0, 5600.0, 520000),
               {"model": "7b", "config": "sq-static", "status": "timeout", "error": "timed out after 90 s: x",
                "log": "logs/7b-sq-static.log"}]
    st.add_ratios(entries)
    sq = entries[1]["ratio_to_bf16"]
    assert sq["prefill"] == pytest.approx(1.75) and sq["mixed"] == pytest.approx(1.4)
    assert sq["kv_cache_tokens"] == pytest.approx(1.3)
    report = {"run_info": {"device": "H100", "vllm": "0.26.0", "torch": "2.11", "date_utc": "d", "commit": "c"},
              "command": "python -m benchmarks.serve_throughput",
              "workloads": [{"name": "prefill", "num_prompts": 8, "input_len": 1024, "output_len": 1,
                             "headline": "total"},
                            {"name": "mixed", "num_prompts": 8, "input_len": 512, "output_len": 128,
                             "headline": "output"}],
              "results": entries}
    table = st.markdown(report)
    assert "| 7b | sq-dynamic | 70,000 (1.75x) | 5,600 (1.40x) | 6.50 | 520,000 (1.30x) | ok |" in table
    assert "| 7b | sq-static | - | - | - | - | timeout |" in table
    assert "7b / sq-static: timeout: timed out after 90 s: x (see logs/7b-sq-static.log)" in table


def _report(tmp_path, name, entries, commit, workloads=None):
    wls = workloads or [{"name": "prefill", "num_prompts": 8, "input_len": 1024, "output_len": 1, "headline": "total"},
                        {"name": "mixed", "num_prompts": 8, "input_len": 512, "output_len": 128, "headline": "output"}]
    info = {"device": "H100", "vllm": "0.26.0", "torch": "2.11", "date_utc": f"d-{commit}", "commit": commit}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"run_info": info, "command": "c", "workloads": wls, "results": entries}))
    return path


def test_merge_joins_runs_split_over_calls(tmp_path):
    """Configs measured in a later call get their ratios against the earlier call's bf16, with both commits named."""
    a = _report(tmp_path, "a", [_entry("bf16", 40000.0, 4000.0, 400000)], "c1")
    b = _report(tmp_path, "b", [_entry("sq-static", 72000.0, 5200.0, 440000)], "c2")
    report = st.merge_reports([a, b], "merge")
    static = report["results"][1]
    assert static["ratio_to_bf16"]["prefill"] == pytest.approx(1.8)
    assert static["ratio_to_bf16"]["kv_cache_tokens"] == pytest.approx(1.1)
    assert static["run_info"]["commit"] == "c2" and report["run_info"]["commit"] == "c1 + c2"
    assert "| 7b | sq-static | 72,000 (1.80x) | 5,200 (1.30x) |" in st.markdown(report)
    other = _report(tmp_path, "o", [], "c3", workloads=[{"name": "decode", "num_prompts": 64, "input_len": 128,
                                                          "output_len": 256, "headline": "output"}])
    with pytest.raises(SystemExit, match="workloads differ"):
        st.merge_reports([a, other], "merge")


def test_commit_variable_wins_over_a_stale_checkout(monkeypatch):
    from benchmarks.run_info import git_commit

    monkeypatch.setenv("VLLM_SQ_COMMIT", "abc1234")
    assert git_commit() == "abc1234"


def _args(**kw):
    base = dict(num_layers=None, dtype="bfloat16", tp=1, gpu_memory_utilization=0.9, enforce_eager=True,
                max_model_len=None, cudagraph_capture_sizes=None)
    return argparse.Namespace(**{**base, **kw})


def test_spent_budget_and_missing_plugin_are_recorded_without_an_engine(tmp_path, monkeypatch):
    wls = st.workloads(2, 2, ("mixed",))
    skipped = st.run_one("tiny", "bf16", _args(), wls, tmp_path, tmp_path, timeout_s=0)
    assert skipped["status"] == "skipped" and "budget" in skipped["error"]
    monkeypatch.setattr(st, "smoothquant_plugin_missing", lambda: "entry point 'smoothquant' is not installed")
    missing = st.run_one("tiny", "sq-static", _args(), wls, tmp_path, tmp_path, timeout_s=60)
    assert missing["status"] == "error" and "not installed" in missing["error"]


def test_unknown_names_stop_before_any_work(tmp_path):
    with pytest.raises(SystemExit, match="unknown model"):
        st.main(["--models", "70b", "--results-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="sq-dynmic"):
        st.main(["--configs", "sq-dynmic", "--results-dir", str(tmp_path)])


def test_latency_rates_and_table():
    assert parse_rates("1, 4,inf") == [1.0, 4.0, float("inf")]
    with pytest.raises(argparse.ArgumentTypeError):
        parse_rates("0")
    pct = {"p50": 10.0, "p90": 20.0, "p99": 30.0}
    report = {"run_info": {"device": "H100", "vllm": "0.26.0", "date_utc": "d", "commit": "c"},
              "params": {"input_len": 512, "output_len": 128, "num_requests": 32, "max_seconds_per_rate": 30.0},
              "command": "x", "results": [
                  {"model": "7b", "config": "sq-dynamic", "status": "ok", "rates": [
                      {"request_rate": 4.0, "completed": 32, "sent": 32, "output_tok_s": 500.0, "ttft_ms": pct,
                       "itl_ms": pct}]},
                  {"model": "7b", "config": "bf16", "status": "error", "error": "server exited", "rates": []}]}
    table = latency_markdown(report)
    assert "| 7b | sq-dynamic | 4.0 | 32/32 | 500 | 10.0 / 20.0 / 30.0 | 10.0 / 20.0 / 30.0 |" in table
    assert "error: server exited" in table
    json.dumps(report)  # everything recorded is plain JSON


def test_perplexity_from_token_logprobs():
    rows = [[-1.0, -2.0], [-3.0, -2.0]]
    assert perplexity(rows) == pytest.approx(2.718281828 ** 2)
    assert mean_abs_delta(rows, [[-1.5, -2.0], [-3.0, -1.0]]) == pytest.approx(0.375)


def test_naive_static_variant_is_the_papers_baseline(tmp_path):
    """naive-w8a8-static: per-tensor static input scales without smoothing, next to sq-auto-static (no engine)."""
    pytest.importorskip("transformers")
    from benchmarks import vllm_ppl

    assert {"naive-w8a8-static", "sq-auto-static"} <= set(vllm_ppl.DEFAULT_VARIANTS)
    args = vllm_ppl.parse_args(["--tiny", "--variants", "naive-w8a8-static,sq-auto-static", "--hidden-size", "64",
                                "--num-layers", "1", "--train-steps", "0"])
    dirs, _, _ = vllm_ppl.build_tiny_checkpoints(args, tmp_path)
    from safetensors import safe_open

    for name, smoothed in (("naive-w8a8-static", False), ("sq-auto-static", True)):
        qcfg = json.loads((dirs[name] / "config.json").read_text())["quantization_config"]
        assert (qcfg["activation_granularity"], qcfg["activation_dynamic"]) == ("per_tensor", False)
        assert bool(qcfg["alpha"]) == smoothed  # naive: no layer smoothed
        with safe_open(str(dirs[name] / "model.safetensors"), "pt") as f:
            scales = [k for k in f.keys() if k.endswith(".input_scale")]
            assert scales and all(f.get_tensor(k).shape == (1,) for k in scales)
