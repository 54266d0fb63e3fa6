"""Shared tiny models and calibration data for the calibration tests (each built once per session)."""

from __future__ import annotations

import copy

import pytest

from calibration.act_scales import collect_act_scales
from calibration.data import token_blocks
from calibration.models.tiny import build_tiny_model, sample_texts

_CACHE: dict[tuple, tuple] = {}


def _tiny(arch: str, **kw):
    key = (arch, tuple(sorted(kw.items())))
    if key not in _CACHE:
        model, tok = build_tiny_model(arch, **kw)
        blocks = token_blocks(tok, sample_texts(32), num_samples=8, seq_len=32)
        _CACHE[key] = (model, tok, blocks, collect_act_scales(model, tok, blocks, progress=False))
    model, tok, blocks, scales = _CACHE[key]
    return copy.deepcopy(model), tok, blocks, dict(scales)


@pytest.fixture(scope="session")
def tiny():
    """tiny(arch, **build_kw) -> (fresh model copy, tokenizer, calibration blocks [8, 32], act scales)."""
    return _tiny
