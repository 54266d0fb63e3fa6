"""Every engine's int8 weights filled alike after a dummy load, so that configs are compared at equal power.

vLLM's `load_format="dummy"` leaves int8 parameters uninitialized (mostly zeros on fresh GPU memory), while the
smoothquant plugin fills its own (vllm_sq.loading.dummy_int8_). The kernels do not branch on values, but the power
they draw does, and an H100 at its power cap lowers the clock for every kernel: in serve run 18 only the engine
with random weights hit the software power cap, and FlashAttention, the same kernel in both engines, ran 4-18%
slower there. The benchmarks therefore refill every int8 parameter of every engine with the same distribution.
"""

from __future__ import annotations

import os
from typing import Any


def _fill_module(model: Any) -> int:
    """Runs in the worker: refills the model's int8 parameters and buffers; returns how many."""
    import torch

    from vllm_sq.loading import dummy_int8_

    tensors = [t for _, t in list(model.named_parameters()) + list(model.named_buffers()) if t.dtype == torch.int8]
    with torch.no_grad():
        for i, t in enumerate(tensors):
            dummy_int8_(t.data, seed=i)
    if any(t.is_cuda for t in tensors):
        torch.cuda.synchronize()
    return len(tensors)


def allow_function_rpc() -> None:
    """vLLM pickles a function sent to its workers only with this set (the engine core may be another process);
    call before the engine starts."""
    os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")


def fill_int8_weights(llm: Any) -> int:
    """Refills the int8 weights of every worker of `llm` (a vllm.LLM); returns the count on the first worker."""
    counts = llm.apply_model(_fill_module)
    return int(counts[0]) if counts else 0
