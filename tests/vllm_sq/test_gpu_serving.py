"""GPU: a smoothquant model at Llama-2-7B shapes serves under vLLM's default torch.compile + CUDA graphs.

Weights are vLLM's dummy weights (`load_format="dummy"`; the plugin fills int8 weights and scales), so
this proves the serving path (loading, kernel choice, compilation, graph capture, generation) and gives a
throughput figure, not accuracy. With VLLM_SQ_RESULTS_DIR set, one JSON record per activation mode is
written there (vLLM version, GPU, kernel chosen, tokens/s).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

NUM_PROMPTS = 16
INPUT_LEN = 128
OUTPUT_LEN = 64


def _kernel_names(model: torch.nn.Module) -> list[str]:
    """Runs in the vLLM worker: the int8 kernel of every smoothquant linear layer."""
    names = set()
    for module in model.modules():
        kernel = getattr(getattr(module, "quant_method", None), "kernel", None)
        if kernel is not None:
            names.add(type(kernel).name)
    return sorted(names)


def _fusions(model: torch.nn.Module) -> dict[str, int]:
    """Runs in the vLLM worker: the producer + quantization fusions the compile pass made there."""
    from vllm_sq import producer_fusion

    return dict(producer_fusion.FUSED_TOTAL)


def _commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_llama2_7b_shapes_serve_compiled_with_cuda_graphs(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vllm = pytest.importorskip("vllm")
    from vllm import LLM, SamplingParams

    from calibration.models.dummy import write_dummy_model

    monkeypatch.setenv("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")  # for LLM.apply_model
    monkeypatch.setenv("VLLM_DISABLE_COMPILE_CACHE", "1")  # compile here, so the fusion pass runs
    model_dir = write_dummy_model(tmp_path / f"llama2-7b-sq-{mode}", "7b", f"smoothquant-{mode}")
    llm = LLM(
        str(model_dir), load_format="dummy", dtype="bfloat16", max_model_len=1024, max_num_seqs=NUM_PROMPTS,
        gpu_memory_utilization=0.45, seed=0,
    )
    try:
        compilation = llm.llm_engine.vllm_config.compilation_config
        assert not llm.llm_engine.vllm_config.model_config.enforce_eager
        assert "NONE" not in str(compilation.cudagraph_mode), "CUDA graphs are off"
        assert "NONE" not in str(compilation.mode), "torch.compile is off"
        kernels = llm.apply_model(_kernel_names)[0]
        assert kernels, "no smoothquant layers in the model"
        fusions = llm.apply_model(_fusions)[0]
        if any("vllm_sq-cutlass" in k for k in kernels):
            # Every producer of a quantized input fuses: the first input norm, the residual-add norms, SiLU-and-mul.
            assert {"rms_norm_quant", "fused_add_rms_norm_quant", "silu_and_mul_quant"} <= set(fusions), fusions

        gen = torch.Generator().manual_seed(0)
        prompts = [
            {"prompt_token_ids": torch.randint(3, 32000, (INPUT_LEN,), generator=gen).tolist()}
            for _ in range(NUM_PROMPTS)
        ]
        params = SamplingParams(max_tokens=OUTPUT_LEN, temperature=0, ignore_eos=True, logprobs=1)
        llm.generate(prompts[:2], params, use_tqdm=False)  # warm-up
        start = time.perf_counter()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        elapsed = time.perf_counter() - start
    finally:
        del llm
        gc.collect()
        torch.cuda.empty_cache()

    for out in outputs:
        completion = out.outputs[0]
        assert len(completion.token_ids) == OUTPUT_LEN
        chosen = [entry[tok].logprob for entry, tok in zip(completion.logprobs, completion.token_ids)]
        assert all(lp == lp and lp > float("-inf") for lp in chosen), "non-finite logprobs (bad scales?)"
    tokens_per_s = NUM_PROMPTS * OUTPUT_LEN / elapsed

    results_dir = os.environ.get("VLLM_SQ_RESULTS_DIR")
    if results_dir:
        record = {
            "test": "vllm_sq gpu serving (Llama-2-7B shapes, dummy weights)",
            "mode": mode,
            "vllm_version": vllm.__version__,
            "torch_version": torch.__version__,
            "gpu": torch.cuda.get_device_name(),
            "compute_capability": "".join(map(str, torch.cuda.get_device_capability())),
            "kernels": kernels,
            "producer_fusions": fusions,
            "compilation_mode": str(compilation.mode),
            "cudagraph_mode": str(compilation.cudagraph_mode),
            "num_prompts": NUM_PROMPTS,
            "input_len": INPUT_LEN,
            "output_len": OUTPUT_LEN,
            "elapsed_s": round(elapsed, 3),
            "output_tokens_per_s": round(tokens_per_s, 1),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "commit": _commit(),
        }
        out_dir = Path(results_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"gpu_serving_{mode}.json").write_text(json.dumps(record, indent=2) + "\n")


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_compiled_fused_path_matches_eager(mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A calibrated tiny Llama in bfloat16: the compiled engine, where the fusion pass merges norm / SiLU-and-mul
    with the quantization, gives the prompt logprobs of the eager engine, which quantizes after vLLM's own norm and
    activation ops. Both round to bfloat16 and may move a few int8 codes by one, so they agree to a few hundredths;
    a mis-wired fusion (a wrong residual, scale or half of SiLU-and-mul) moves logprobs by far more. Both are also
    equally close to the float model."""
    pytest.importorskip("vllm")
    from conftest import PROMPTS, export_tiny, prompt_logprobs, reference_logprobs, running_llm

    monkeypatch.setenv("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")
    monkeypatch.setenv("VLLM_DISABLE_COMPILE_CACHE", "1")
    static = dict(activation_granularity="per_tensor", activation_dynamic=False) if mode == "static" else {}
    ckpt, model = export_tiny(tmp_path / f"llama-{mode}", "llama", hidden_size=128, **static)
    runs = {}
    for eager in (True, False):
        with running_llm(ckpt, dtype="bfloat16", enforce_eager=eager, gpu_memory_utilization=0.3) as llm:
            runs[eager] = (prompt_logprobs(llm, PROMPTS), llm.apply_model(_kernel_names)[0],
                           llm.apply_model(_fusions)[0])
    (eager_lps, eager_kernels, eager_fusions), (comp_lps, comp_kernels, comp_fusions) = runs[True], runs[False]
    assert eager_kernels == comp_kernels and all("vllm_sq-cutlass" in k for k in comp_kernels), comp_kernels
    assert not eager_fusions
    assert {"rms_norm_quant", "fused_add_rms_norm_quant", "silu_and_mul_quant"} <= set(comp_fusions), comp_fusions
    for (ids, lp_eager), (ids_c, lp_comp) in zip(eager_lps, comp_lps, strict=True):
        assert torch.equal(ids, ids_c)
        assert float((lp_comp - lp_eager).abs().max()) < 0.1
        assert float((lp_comp - lp_eager).abs().mean()) < 0.02
        ref = reference_logprobs(model, ids)
        assert abs(float((lp_comp - ref).abs().mean()) - float((lp_eager - ref).abs().mean())) < 0.02
