"""benchmarks/dummy_int8.py: every int8 parameter and buffer of an engine's model refilled alike (CPU)."""

from __future__ import annotations

import torch

from benchmarks import dummy_int8


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(64, 32, dtype=torch.int8), requires_grad=False)
        self.scale = torch.nn.Parameter(torch.ones(64, 1))
        self.register_buffer("packed", torch.zeros(16, 16, dtype=torch.int8))


class _FakeLLM:  # vllm.LLM.apply_model: the function on each worker's model, the results as a list
    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def apply_model(self, func):
        return [func(self.model)]


def test_fills_every_int8_tensor_and_nothing_else():
    model = _Model()
    assert dummy_int8.fill_int8_weights(_FakeLLM(model)) == 2
    assert (model.w != 0).float().mean() > 0.9 and (model.packed != 0).float().mean() > 0.9
    assert torch.equal(model.scale, torch.ones(64, 1))


def test_allow_function_rpc_keeps_an_explicit_setting(monkeypatch):
    monkeypatch.setenv("VLLM_ALLOW_INSECURE_SERIALIZATION", "0")
    dummy_int8.allow_function_rpc()
    import os
    assert os.environ["VLLM_ALLOW_INSECURE_SERIALIZATION"] == "0"
    monkeypatch.delenv("VLLM_ALLOW_INSECURE_SERIALIZATION")
    dummy_int8.allow_function_rpc()
    assert os.environ["VLLM_ALLOW_INSECURE_SERIALIZATION"] == "1"
