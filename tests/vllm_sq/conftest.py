"""Fixtures for the vllm_sq tests: tiny calibrated checkpoints (from `calibration`) and engine helpers.

Engine starts cost ~20-30 s each on CPU, so every engine is module-scoped and the suite keeps them few.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPTS = [
    "the quick brown fox jumps over the lazy dog and",
    "a model that is quantized to eight bits should still",
]


def export_tiny(out: Path, arch: str = "llama", *, hidden_size: int = 64, **export_kw: Any) -> tuple[Path, torch.nn.Module]:
    """Calibrate a tiny outlier-injected model and export it; returns (checkpoint, smoothed float model)."""
    from calibration.act_scales import collect_act_scales
    from calibration.export import export_checkpoint
    from calibration.models.tiny import build_tiny_model, sample_texts

    model, tok = build_tiny_model(arch, hidden_size=hidden_size, num_layers=2, outliers=True)
    scales = collect_act_scales(model, tok, sample_texts(16), num_samples=16, seq_len=32, batch_size=4, progress=False)
    path = export_checkpoint(model, tok, scales, out, overwrite=True, **export_kw)
    return path, model


@contextmanager
def running_llm(path: Path, **kw: Any) -> Iterator[Any]:
    """An `LLM` for a checkpoint (eager, float32 unless told, small KV cache); shut down on exit."""
    from vllm import LLM

    args = dict(dtype="float32", enforce_eager=True, max_model_len=128, max_num_seqs=4, seed=0)
    args.update(kw)
    llm = LLM(str(path), **args)
    try:
        yield llm
    finally:
        del llm
        gc.collect()


def prompt_logprobs(llm: Any, prompts: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(token ids, logprob of each prompt token after the first)] as vLLM computes them."""
    from vllm import SamplingParams

    outs = llm.generate(prompts, SamplingParams(max_tokens=4, prompt_logprobs=0, temperature=0), use_tqdm=False)
    result = []
    for out in outs:
        ids = torch.tensor(out.prompt_token_ids)
        lps = torch.tensor([entry[int(tok)].logprob for entry, tok in zip(out.prompt_logprobs[1:], ids[1:])])
        assert len(out.outputs[0].token_ids) == 4
        result.append((ids, lps))
    return result


def reference_logprobs(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Logprob of each prompt token after the first, from a transformers model (float32)."""
    with torch.no_grad():
        logits = model(input_ids=ids.unsqueeze(0), use_cache=False).logits[0].float()
    return torch.log_softmax(logits, dim=-1)[:-1].gather(1, ids[1:, None]).squeeze(1)


@pytest.fixture(scope="session")
def ckpt_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sq_ckpts")
