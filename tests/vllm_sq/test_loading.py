"""Dummy int8 weights for benchmarks (vllm_sq/loading.py): distributed like a quantized layer's, reproducible."""

from __future__ import annotations

import pytest
import torch

from vllm_sq.loading import DUMMY_INT8_STD, dummy_int8_, fill_dummy_int8


def test_dummy_int8_is_normal_like_and_clipped():
    w = dummy_int8_(torch.empty(512, 1024, dtype=torch.int8), seed=3)
    v = w.float()
    assert abs(v.mean().item()) < 0.5 and abs(v.std().item() - DUMMY_INT8_STD) < 0.5
    assert v.abs().max().item() <= 127 and (v == 0).float().mean().item() < 0.05  # not the zeros of a bare dummy load
    assert torch.equal(w, dummy_int8_(torch.empty(512, 1024, dtype=torch.int8), seed=3))
    assert not torch.equal(w, dummy_int8_(torch.empty(512, 1024, dtype=torch.int8), seed=4))


def test_dummy_int8_fills_in_chunks_and_views():
    big = torch.zeros(4096, 8192, dtype=torch.int8)  # 2 chunks of 16M elements
    dummy_int8_(big)
    assert (big[:2048] != 0).any() and (big[2048:] != 0).any()
    assert (big == 0).float().mean().item() < 0.05
    base = torch.zeros(64, 128, dtype=torch.int8)
    dummy_int8_(base[:, 32:96])  # a strided view: only it changes
    assert (base[:, :32] == 0).all() and (base[:, 96:] == 0).all() and (base[:, 32:96] != 0).any()


def test_dummy_int8_refuses_other_dtypes():
    with pytest.raises(TypeError, match="int8 tensors.*float32"):
        dummy_int8_(torch.empty(4, 4))


def test_fill_dummy_int8_scales_keep_outputs_order_one():
    w, scale, in_scale = torch.empty(256, 4096, dtype=torch.int8), torch.empty(256, 1), torch.empty(1)
    fill_dummy_int8(w, scale, in_scale)
    x = torch.randn(8, 4096)
    y = (x @ w.float().t()) * scale.t()
    assert 0.3 < y.std().item() < 3.0 and in_scale.item() == pytest.approx(0.05)
