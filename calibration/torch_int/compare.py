"""Measure what conversion keeps and what it changes, on a tiny outlier OPT (the numbers in docs/torch_int.md).

    python -m calibration.torch_int compare [--seq-len 32] [--hidden-size 64] [--layers 2] [--seed 0]

Builds a float OPT, smooths it (alpha 0.5, like the original export), writes it in the torch-int layout,
converts it, and compares logits on local text: the original layout's reference forward (`int8` attention
as torch-int computes it, and `float` attention as vLLM computes it), the converted checkpoint under the
project's simulated-quantization reader (float32, float16, bfloat16), and the float model.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

__all__ = ["compare_tiny"]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def _max_logprob_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (torch.log_softmax(a.float(), -1) - torch.log_softmax(b.float(), -1)).abs().max().item()


@torch.no_grad()
def compare_tiny(*, seq_len: int = 32, hidden_size: int = 64, num_layers: int = 2, seed: int = 0
                 ) -> list[tuple[str, str, float, float, float]]:
    """Rows (a, b, relative logits error |a-b|/|b|, max |logprob difference|, top-1 agreement)."""
    from calibration.act_scales import collect_act_scales
    from calibration.models.tiny import build_tiny_model, sample_texts
    from calibration.simulate import load_simulated_model
    from calibration.smooth import smooth_lm
    from calibration.torch_int import convert_torch_int, export_torch_int, torch_int_logits

    model, tok = build_tiny_model("opt", hidden_size=hidden_size, num_layers=num_layers, outliers=True, seed=seed)
    texts = sample_texts(16)
    smooth_lm(model, collect_act_scales(model, tok, texts, num_samples=16, seq_len=64, progress=False), 0.5)
    ids = tok(" ".join(sample_texts(40)[-3:]), return_tensors="pt").input_ids[:, :seq_len]
    with tempfile.TemporaryDirectory() as tmp:
        src = export_torch_int(model, tok, texts, Path(tmp) / "torch-int")
        dst = convert_torch_int(src, Path(tmp) / "converted")
        config = json.loads((src / "config.json").read_text())
        state = torch.load(src / "pytorch_model.bin", weights_only=True)
        logits = {
            "float model": model(ids).logits,
            "original (int8 attention)": torch_int_logits(config, state, ids),
            "original, float attention": torch_int_logits(config, state, ids, attention="float"),
            "converted, float32": load_simulated_model(dst)(input_ids=ids, use_cache=False).logits,
            "original, float16 residual": torch_int_logits(config, state, ids, dtype=torch.float16),
            "converted, float16": load_simulated_model(dst, torch.float16)(input_ids=ids, use_cache=False).logits,
            "converted, bfloat16": load_simulated_model(dst, torch.bfloat16)(input_ids=ids, use_cache=False).logits,
        }
    pairs = [
        ("converted, float32", "original, float attention"),
        ("converted, float16", "original, float attention"),
        ("converted, bfloat16", "original, float attention"),
        ("original, float16 residual", "original (int8 attention)"),
        ("converted, float32", "original (int8 attention)"),
        ("original (int8 attention)", "float model"),
        ("converted, float32", "float model"),
    ]
    return [(a, b, _rel(logits[a], logits[b]), _max_logprob_diff(logits[a], logits[b]),
             (logits[a].argmax(-1) == logits[b].argmax(-1)).float().mean().item()) for a, b in pairs]
