"""Calibrated checkpoints served by a real vLLM engine agree with `calibration.simulate`'s reference.

Each checkpoint is a tiny outlier-injected model calibrated and exported by `calibration`. The engine runs
in float32 so that the int8 path can be compared tightly: a vLLM layer computes an exact int32 GEMM of
the same int8 values the simulated reference multiplies in float32, so the two agree up to float
rounding (and the rare activation that sits on a rounding boundary). The tolerances below are far
smaller than the effect of quantization itself, which each test also measures against the float model.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from conftest import PROMPTS, export_tiny, prompt_logprobs, reference_logprobs, running_llm

pytestmark = pytest.mark.vllm

LOGPROB_ATOL = 5e-3  # |vLLM - simulated reference| of prompt-token logprobs
# ||vLLM layer - reference layer|| / ||reference layer||: float rounding, plus the odd activation that lands
# on a rounding boundary and moves one int8 step (kernels may compute x / s as x * (1 / s)).
LAYER_RTOL = 5e-3

# Fused vLLM layer -> the Hugging Face modules whose outputs it concatenates (layer 0; llama and qwen2 names).
FUSED_LAYERS = {
    "model.layers.0.self_attn.qkv_proj": ["q_proj", "k_proj", "v_proj"],
    "model.layers.0.self_attn.o_proj": ["o_proj"],
    "model.layers.0.mlp.gate_up_proj": ["gate_proj", "up_proj"],
    "model.layers.0.mlp.down_proj": ["down_proj"],
}


def _run_layers(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Runs inside the vLLM worker: each named quantized layer applied to its input."""
    out = {}
    with torch.no_grad():
        for name, x in inputs.items():
            layer = model.get_submodule(name)
            out[name] = layer.quant_method.apply(layer, x, getattr(layer, "bias", None)).cpu()
    return out


def _layer_inputs(sim: torch.nn.Module) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    inputs = {}
    for name, parts in FUSED_LAYERS.items():
        hf = sim.get_submodule(name.rsplit(".", 1)[0] + "." + parts[0])
        x = torch.randn(5, hf.in_features, generator=gen)
        x[:, :3] *= 30  # outlier channels, as smoothing would otherwise have removed
        x[4] = 0  # a zero row: its scale must be replaced by 1, not divide by zero
        inputs[name] = x
    return inputs


def _reference_layers(sim: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    parent = {n: n.rsplit(".", 1)[0] for n in FUSED_LAYERS}
    with torch.no_grad():
        return {
            name: torch.cat([sim.get_submodule(f"{parent[name]}.{p}")(x) for p in FUSED_LAYERS[name]], dim=-1)
            for name, x in inputs.items()
        }


def _check_checkpoint(ckpt: Path, float_model: torch.nn.Module) -> None:
    from calibration.simulate import load_simulated_model

    sim = load_simulated_model(ckpt, dtype=torch.float32)
    with running_llm(ckpt) as llm:
        got = prompt_logprobs(llm, PROMPTS)
        inputs = _layer_inputs(sim)
        engine_layers = llm.apply_model(functools.partial(_run_layers, inputs=inputs))[0]
    for ids, lps in got:
        want = reference_logprobs(sim, ids)
        quant_effect = (reference_logprobs(float_model, ids) - want).abs().max().item()
        err = (lps - want).abs().max().item()
        assert err < LOGPROB_ATOL, f"prompt logprobs differ from the simulated reference by {err:.3g}"
        assert quant_effect > 10 * err, f"int8 effect {quant_effect:.3g} not visible above the error {err:.3g}"
    for name, want in _reference_layers(sim, inputs).items():
        rel = ((engine_layers[name] - want).norm() / want.norm()).item()
        assert rel < LAYER_RTOL, f"{name}: relative error {rel:.3g} against the simulated reference"


@pytest.fixture(autouse=True)
def _allow_apply_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # LLM.apply_model ships a Python function to the worker process.
    monkeypatch.setenv("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")


def test_llama_dynamic_per_token_matches_reference(ckpt_root: Path) -> None:
    """O1 (per-channel weights, dynamic per-token): fused qkv and gate_up layers and final logprobs."""
    ckpt, model = export_tiny(ckpt_root / "llama_o1", "llama")
    _check_checkpoint(ckpt, model)


def test_llama_static_per_tensor_matches_reference(ckpt_root: Path) -> None:
    """O3 (static per-tensor input scales, one per shard of each fused layer), per-tensor weights."""
    ckpt, model = export_tiny(
        ckpt_root / "llama_o3", "llama", weight_granularity="per_tensor",
        activation_granularity="per_tensor", activation_dynamic=False,
    )
    _check_checkpoint(ckpt, model)


def test_qwen2_asymmetric_with_bias_matches_reference(ckpt_root: Path) -> None:
    """Asymmetric per-token activations (zero point, weight column sums) on a model with qkv bias."""
    ckpt, model = export_tiny(ckpt_root / "qwen2_asym", "qwen2", activation_symmetric=False)
    _check_checkpoint(ckpt, model)


def test_int8_checkpoint_without_smoothquant_config_is_refused(
    ckpt_root: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without its quantization_config an int8 checkpoint fails at load, naming a scale tensor; never runs."""
    import json
    import shutil

    ckpt, _ = export_tiny(ckpt_root / "llama_plain", "llama")
    broken = tmp_path / "no_qcfg"
    shutil.copytree(ckpt, broken)
    cfg = json.loads((broken / "config.json").read_text())
    del cfg["quantization_config"]
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(Exception):
        with running_llm(broken):
            pass
    # The root cause is raised in the worker process; its log reaches our captured output.
    captured = capfd.readouterr()
    assert "weight_scale" in captured.out + captured.err
