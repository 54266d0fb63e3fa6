"""benchmarks/producer_quant.py without a GPU: the torch-op producers and the report."""

import pytest
import torch

pytest.importorskip("vllm", reason="imports vLLM at module level; the GPU machine may run the kernel tests without it")

from benchmarks import producer_quant as pq


def test_torch_producers_match_their_definition():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 64, generator=gen).bfloat16()
    w = (torch.rand(64, generator=gen) + 0.5).bfloat16()
    q, s = pq.rms_quant_torch(x, w)
    xf = x.float()
    h = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + pq.EPS)).bfloat16() * w
    scale = h.float().abs().amax(dim=1, keepdim=True) / 127
    assert q.dtype == torch.int8 and q.shape == (5, 64) and s.shape == (5, 1)
    assert torch.equal(s, scale)
    assert torch.equal(q, torch.round(h.float() / scale).clamp(-127, 127).to(torch.int8))

    g = torch.randn(3, 2 * 32, generator=gen).bfloat16()
    q, s = pq.silu_quant_torch(g)
    a = torch.nn.functional.silu(g[:, :32]) * g[:, 32:]
    assert q.shape == (3, 32) and torch.equal(s, a.float().abs().amax(dim=1, keepdim=True) / 127)


def test_markdown_row_has_ratio_and_bandwidth():
    row = {"model": "7b", "producer": "silu", "m": 64, "width": 11008, "bytes": 64 * 22016 * 2 + 64 * 11008 + 256,
           "us": {"ours_cuda": 2.0, "inductor": 5.0, "vllm": 4.0}}
    md = pq.markdown({"gpu": "H100", "date": "d", "commit": "c"}, [row])
    assert "| 7b | silu | 64 | 2.0 | 5.0 | 4.0 | 2.50 | 1761 |" in md
    no_vllm = dict(row, us={"ours_cuda": 2.0, "inductor": 3.0})
    assert "| 7b | silu | 64 | 2.0 | 3.0 | - | 1.50 |" in pq.markdown({"gpu": "H100", "date": "d", "commit": "c"},
                                                                       [no_vllm])
