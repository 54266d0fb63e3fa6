"""Derived numbers and the table of benchmarks/gemm.py, without a GPU."""

import pytest

from benchmarks import gemm


def test_derived_ratios_and_copy_column():
    m, n, k = 16, 4096, 4096
    res = {"ours_gemm": 10.0, "vllm_gemm": 11.0, "copy": 8.0}
    d = gemm.derived(m, n, k, res)
    assert d["ours_tops"] == pytest.approx(2 * m * n * k / 10.0 / 1e6)
    assert d["vllm_over_ours_gemm"] == pytest.approx(1.1)
    assert d["ours_over_copy"] == pytest.approx(10.0 / 8.0)
    assert d["copy_tbps"] == pytest.approx(n * k / 8.0 / 1e6)  # bytes per microsecond = TB/s
    assert d["ours_over_bound"] == pytest.approx(10.0 / (n * k / gemm.COPY_BW * 1e6))
    assert d["vllm_over_ours_q_gemm"] is None  # a missing variant gives None, not an error


def test_prefill_rows_have_no_bound_and_the_table_marks_missing_values():
    d = gemm.derived(1024, 4096, 4096, {"ours_gemm": 30.0})
    assert d["ours_over_bound"] is None and d["ours_over_copy"] is None
    meta = {"gpu": "GPU", "date": "2026-11-23T00:00:00Z", "commit": "abc", "vllm": "unavailable", "replays": 5}
    rows = [{"model": "7b", "layer": "o", "m": 1024, "n": 4096, "k": 4096,
             "us": {"ours_gemm": 30.0, "cfg:Large": 30.0, "cfg:Mid": 31.0}, "derived": d}]
    md = gemm.markdown(meta, rows)
    header, sep, row = md.splitlines()[4:7]
    assert header.count("|") == sep.count("|") == row.count("|")
    assert "| copy | ours/copy |" in header and row.endswith("| - | - |")
    assert md.splitlines()[-1].endswith("| Large |")  # the sweep table names the fastest configuration


def test_decode_sweep_has_a_table_per_variant_with_its_own_best():
    d = gemm.derived(16, 4096, 4096, {"ours_gemm": 10.0})
    meta = {"gpu": "GPU", "date": "2026-11-23T00:00:00Z", "commit": "abc", "vllm": "unavailable", "replays": 5}
    us = {"ours_gemm": 10.0, "cfg:Skinny16s": 10.5, "cfg:DecodeN64c8": 10.0,
          "cfgq:Skinny16s": 12.5, "cfgq:DecodeN64c8": 13.5}
    md = gemm.markdown(meta, [{"model": "7b", "layer": "o", "m": 16, "n": 4096, "k": 4096, "us": us, "derived": d}])
    alone = md.index("our GEMM alone")
    with_q = md.index("our quantization + GEMM")
    assert alone < with_q
    assert "| 7b | o | 16 | 10.0 | 10.5 | DecodeN64c8 |" in md[alone:with_q]
    assert "| 7b | o | 16 | 13.5 | 12.5 | Skinny16s |" in md[with_q:]


def test_llama3_shapes_are_grouped_query():
    shapes = gemm.MODELS["llama3-8b"]
    assert shapes["qkv"] == (4096 + 2 * 1024, 4096) and shapes["down"] == (4096, 14336)
    assert all(n % 16 == 0 and k % 16 == 0 for n, k in shapes.values())


def test_clock_summary_ignores_idle_and_unreadable_samples():
    from benchmarks.clock_summary import summarize

    log = ("2026/11/23 10:00:00.000, 1980, 70.5, 30\n"      # idle: below 200 W, ignored
           "2026/11/23 10:00:00.250, 1755, 690.1, 61\n"
           "2026/11/23 10:00:00.500, [N/A], [N/A], [N/A]\n"
           "2026/11/23 10:00:00.750, 1605, 700.0, 64\n"
           "2026/11/23 10:00:01.000, 1830, 650.0, 63\n")
    s = summarize(log)
    assert s["samples"] == 3 and s["sm_mhz_median"] == 1755 and s["sm_mhz_min"] == 1605
    assert s["power_w_max"] == 700.0 and s["temp_c_max"] == 64
    with pytest.raises(ValueError, match="no clock samples"):
        summarize("garbage\n")


def test_clock_summary_counts_the_clock_event_reasons():
    from benchmarks.clock_summary import summarize

    log = ("2026/11/24 10:00:00.000, 345, 73.0, 31, 0x0000000000000001\n"  # idle: not counted
           "2026/11/24 10:00:00.100, 1590, 411.2, 46, 0x0000000000000008\n"
           "2026/11/24 10:00:00.200, 1965, 450.6, 46, 0x0000000000000000\n"
           "2026/11/24 10:00:00.300, 1785, 582.7, 46, 0x000000000000000C\n")
    s = summarize(log)
    assert s["samples"] == 3 and s["sm_mhz_min"] == 1590.0
    assert s["reasons"] == {"sw_power_cap": 1, "hw_slowdown": 2}
    assert "reasons" not in summarize("t, 1980, 300.0, 40\n")
    no_events = summarize("t, 1980, 300.0, 40, 0x0\n")
    assert no_events["reasons"] == {}



def test_quantization_table_splits_what_the_quantization_adds():
    meta = {"gpu": "GPU", "date": "2026-11-23T00:00:00Z", "commit": "abc", "vllm": "vLLM 0", "replays": 5}
    us = {"ours_gemm": 9.5, "ours_q_gemm": 12.0, "ours_q": 2.8, "vllm_gemm": 10.5, "vllm_q_gemm": 12.8,
          "vllm_q_ours_gemm": 11.5}
    rows = [{"model": "7b", "layer": "o", "m": 1, "n": 4096, "k": 4096, "us": us,
             "derived": gemm.derived(1, 4096, 4096, us)}]
    lines = gemm.markdown(meta, rows).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Quantization alone"))
    header, sep, row = lines[start + 2:start + 5]
    assert header.count("|") == sep.count("|") == row.count("|")
    # ours q, vLLM q (not timed: "-"), each pair minus its own GEMM alone; the crossed pairs minus the GEMM's owner's
    assert row == "| 7b | o | 1 | 2.8 | - | 2.5 | 2.3 | 2.0 | - |"


def test_gemm_compare_reports_added_time_per_shape_and_in_total():
    from benchmarks import gemm_compare

    def result(fused: float) -> dict:
        us = {"ours_gemm": 100.0, "ours_q_gemm": 110.0, "ours_prod_q_gemm": fused, "vllm_gemm": 90.0}
        return {"rows": [{"model": "7b", "layer": "down", "m": 1024, "us": us},
                         {"model": "7b", "layer": "down", "m": 16, "us": us}]}

    text = gemm_compare.compare(result(150.0), result(130.0), min_m=1024)
    row = next(line for line in text.splitlines() if line.startswith("| 7b | down | 1024 |"))
    assert row == "| 7b | down | 1024 | 100.0 | 100.0 | 10.0 | 10.0 | 50.0 | 30.0 | - | - |"
    assert "| 16 |" not in text  # below --min-m
    assert "sum of fused added: 50.0 -> 30.0 us" in text


def test_quantization_cost_table_compares_against_the_bf16_producer():
    """The cost of the quantization in a layer with a producer: fused producer + GEMM over bf16 producer + GEMM."""
    meta = {"gpu": "GPU", "date": "2026-11-24T00:00:00Z", "commit": "abc", "vllm": "vLLM 0", "replays": 5}
    us = {"ours_gemm": 100.0, "ours_prod_gemm": 120.0, "ours_prod_q_gemm": 114.0,
          "vllm_prod_gemm": 130.0, "vllm_prod_q_gemm": 143.0}
    d = gemm.derived(4096, 4096, 11008, us)
    assert d["ours_quant_cost_pct"] == pytest.approx(-5.0)
    assert d["vllm_quant_cost_pct"] == pytest.approx(10.0)
    lines = gemm.markdown(meta, [{"model": "7b", "layer": "down", "m": 4096, "n": 4096, "k": 11008, "us": us,
                                  "derived": d}]).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("What the quantization costs"))
    header, sep, row = lines[start + 2:start + 5]
    assert header.count("|") == sep.count("|") == row.count("|")
    assert row == "| 7b | down | 4096 | 120.0 | 114.0 | -5.0 | 130.0 | 143.0 | +10.0 |"
    assert gemm.derived(4096, 4096, 11008, {"ours_gemm": 100.0})["ours_quant_cost_pct"] is None
