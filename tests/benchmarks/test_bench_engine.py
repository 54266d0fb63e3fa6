"""The benchmark scripts end to end on CPU vLLM with a 2-layer model (one engine start per test)."""

import json
import os
import socket

import pytest

pytestmark = pytest.mark.vllm

vllm = pytest.importorskip("vllm")


@pytest.fixture(autouse=True)
def _cpu_env(monkeypatch):
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_throughput_of_a_smoothquant_dummy_model(tmp_path):
    from benchmarks import serve_throughput as st

    rc = st.main(["--models", "tiny", "--configs", "sq-dynamic", "--workloads", "mixed,decode", "--num-prompts", "4",
                  "--decode-prompts", "2", "--enforce-eager", "--results-dir", str(tmp_path)])
    report = json.loads((tmp_path / "serve_throughput.json").read_text())
    entry = report["results"][0]
    assert rc == 0, entry.get("error")
    assert entry["status"] == "ok" and entry["quantization"] == "smoothquant"
    assert entry["int8_tensors_filled"] > 0  # benchmarks/dummy_int8.py reached the engine's weights
    assert entry["workloads"]["mixed"]["output_tokens"] == 4 * 128  # ignore_eos: every token generated
    assert entry["workloads"]["decode"]["output_tokens"] == 2 * 256
    assert entry["workloads"]["decode"]["prompt_tokens"] == 2 * 128
    assert entry["kv_cache_tokens"] == entry["num_gpu_blocks"] * entry["block_size"] > 0
    assert entry["kv_cache_tokens_logged"] == entry["kv_cache_tokens"]  # vLLM's own log agrees
    rows = [r for r in (tmp_path / "serve_throughput.md").read_text().splitlines() if r.startswith("| tiny |")]
    assert len(rows) == 1 and rows[0].startswith("| tiny | sq-dynamic |") and rows[0].endswith("| ok |")


def test_latency_of_a_static_smoothquant_server(tmp_path):
    from benchmarks import serve_latency as sl

    rc = sl.main(["--models", "tiny", "--configs", "sq-static", "--rates", "inf", "--num-requests", "4",
                  "--input-len", "32", "--output-len", "8", "--enforce-eager", "--max-seconds-per-rate", "120",
                  "--results-dir", str(tmp_path)])
    entry = json.loads((tmp_path / "serve_latency.json").read_text())["results"][0]
    assert rc == 0, entry.get("error")
    rate = entry["rates"][0]
    assert (rate["completed"], rate["failed"]) == (4, 0)
    assert 0 < rate["ttft_ms"]["p50"] <= rate["ttft_ms"]["p99"]
    assert rate["itl_ms"]["p50"] is not None
    port = int(open(tmp_path / entry["log"]).readline().split("--port ")[1].split()[0])
    with socket.socket() as s:  # the server was stopped
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_perplexity_through_vllm_matches_the_simulation(tmp_path):
    from benchmarks import vllm_ppl

    rc = vllm_ppl.main(["--tiny", "--variants", "float,sq-a0.5", "--hidden-size", "64", "--num-layers", "2",
                        "--train-steps", "30", "--num-blocks", "4", "--seq-len", "64", "--enforce-eager",
                        "--results-dir", str(tmp_path)])
    results = {e["name"]: e for e in json.loads((tmp_path / "vllm_ppl.json").read_text())["results"]}
    assert rc == 0, [e.get("error") for e in results.values()]
    assert results["float"]["quantization"] is None and results["sq-a0.5"]["quantization"] == "smoothquant"
    for e in results.values():
        # vLLM (bf16 activations, int8 kernels) reproduces calibration's float32 simulation of the same checkpoint
        assert e["vllm_ppl"] == pytest.approx(e["torch_ppl"], rel=0.01)
    assert results["sq-a0.5"]["ppl_rel_to_ref"] == pytest.approx(0.0, abs=0.02)
    assert "| sq-a0.5 |" in (tmp_path / "vllm_ppl.md").read_text()
