"""The per-kernel decode-step summary of benchmarks/serve_profile.py, on synthetic traces (no GPU)."""

import pytest

from benchmarks import serve_profile as sp


def _trace(steps: int) -> dict:
    events, t = [], 0.0
    for _ in range(steps):  # per step: two GEMMs of 10 us, one quantization of 2 us, a 4-us gap
        for name, dur in (("gemm", 10.0), ("quant", 2.0), ("gemm", 10.0)):
            events.append({"cat": "kernel", "name": name, "ts": t, "dur": dur})
            t += dur
        t += 4.0
    events.append({"cat": "gpu_memset", "name": "Memset", "ts": t, "dur": 1.0})
    events.append({"cat": "cpu_op", "name": "aten::mm", "ts": 0.0, "dur": 50.0})  # not on the GPU
    return {"traceEvents": events}


def test_kernel_table_sums_per_name_and_step():
    table = sp.kernel_table(_trace(4), steps=4)
    rows = {r["name"]: r for r in table["kernels"]}
    assert set(rows) == {"gemm", "quant", "Memset"}
    assert rows["gemm"]["calls_per_step"] == 2.0 and rows["gemm"]["us_per_step"] == 20.0
    assert rows["quant"]["us_per_step"] == 2.0 and rows["quant"]["median_us"] == 2.0
    assert [r["name"] for r in table["kernels"]] == ["gemm", "quant", "Memset"]  # by time, largest first
    assert table["busy_us_per_step"] == pytest.approx(22.25)
    assert table["span_us_per_step"] == pytest.approx((4 * 26 + 1) / 4)  # the gaps count in the span


def test_kernel_table_without_kernels_is_empty():
    assert sp.kernel_table({"traceEvents": []}, steps=8)["kernels"] == []


def test_markdown_lists_each_config_and_its_top_kernels():
    entry = {"model": "7b", "config": "sq-dynamic", "status": "ok", "busy_us_per_step": 5000.0,
             "wall_us_per_step": 6000.0, "num_gpu_blocks": 8000,
             "clocks": {"sm_mhz_median": 1755.0, "power_w_median": 512.0},
             "kernels": [{"name": "gemm", "calls_per_step": 128.0, "us_per_step": 3000.0, "median_us": 20.0}]}
    failed = {"model": "7b", "config": "vllm-int8-w8a8", "status": "error", "error": "exit code 1: OOM"}
    md = sp.markdown({"run_info": {"device": "H100", "date_utc": "d", "commit": "c"}, "command": "cmd",
                      "prompts": 64, "input_len": 128, "steps": 32, "entries": [entry, failed]})
    assert "| 7b | sq-dynamic | 6000 | 5000 | 8000 | 1755 / 512 | ok" in md
    assert "| 7b | vllm-int8-w8a8 | - | - | - | - | error exit code 1: OOM" in md
    assert "| `gemm` | 128.0 | 3000.0 | 20.00 |" in md


def test_num_gpu_blocks_defaults_to_each_engines_own():
    assert sp.parse_args(["--results-dir", "/tmp/x"]).num_gpu_blocks is None
    assert sp.parse_args(["--results-dir", "/tmp/x", "--num-gpu-blocks", "8000"]).num_gpu_blocks == 8000


def test_clock_summary_of_a_log(tmp_path):
    log = tmp_path / "clocks.csv"
    log.write_text("2026/11/24 10:00:00.000, 1980, 95.1, 40\n2026/11/24 10:00:00.100, 1755, 610.0, 60\n"
                   "2026/11/24 10:00:00.200, 1785, 580.0, 61\n")
    clocks = sp.clock_summary_or_none(log)
    assert clocks["samples"] == 2 and clocks["sm_mhz_median"] == 1770.0 and clocks["power_w_max"] == 610.0
    assert sp.clock_summary_or_none(tmp_path / "missing.csv") is None
    (tmp_path / "empty.csv").write_text("")
    assert sp.clock_summary_or_none(tmp_path / "empty.csv") is None


def test_clock_log_without_nvidia_smi_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(sp.shutil, "which", lambda name: None)
    with sp.ClockLog(tmp_path / "c.csv") as log:
        assert log.proc is None
    assert not (tmp_path / "c.csv").exists()


def test_rejects_unknown_config():
    with pytest.raises(SystemExit):
        sp.parse_args(["--results-dir", "/tmp/x", "--configs", "sq-dynamic,fp4"])


def test_idle_gaps_groups_waits_by_the_kernels_around_them():
    gaps = sp.idle_gaps(_trace(4), steps=4)
    # 4-us waits after each step's second GEMM: three between steps, one before the memset
    assert gaps["gaps_per_step"] == 1.0 and gaps["idle_us_per_step"] == 4.0
    assert gaps["top"][0] == {"between": "gemm -> gemm", "gaps_per_step": 0.75, "us_per_step": 3.0}
    assert gaps["top"][1]["between"] == "gemm -> Memset"


def test_markdown_says_when_it_profiled_the_prefill():
    md = sp.markdown({"run_info": {}, "command": "cmd", "prompts": 16, "input_len": 1024, "steps": 1,
                      "prefill_only": True, "entries": []})
    assert "prefill only: 16 sequences x 1024 tokens" in md and "decode steps profiled" not in md
