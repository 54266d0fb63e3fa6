"""Loads the compiled extension (the CUDA kernels of torch.ops.vllm_sq) once; the ops themselves are defined by
`_library` on import, on every machine."""

from __future__ import annotations

import functools

import torch

from vllm_sq.ops import _library  # noqa: F401  (defines the ops before the extension registers their kernels)

# Compute capabilities with kernels in vllm_sq._C (sm_90 CUTLASS 3.x; sm_80/86/89 CUTLASS 2.x).
SUPPORTED_CAPABILITIES = ((8, 0), (8, 6), (8, 9), (9, 0))

# Set once available() succeeded. The wrappers test this plain global, which torch.compile (dynamo) reads as a
# guarded constant: no call into the checks below (CUDA queries, a cached function) is traced into a graph.
_READY = False


@functools.lru_cache(maxsize=1)
def _load_error() -> str | None:
    """Imports vllm_sq._C (which registers the CUDA kernels of torch.ops.vllm_sq.*); returns why it failed, or None."""
    try:
        import vllm_sq._C  # noqa: F401  (import registers the kernels)
    except ImportError as exc:
        return f"vllm_sq._C is not built or not loadable ({exc}); build with a CUDA torch: " \
               "pip install --no-build-isolation ."
    return None


def available() -> tuple[bool, str]:
    """(True, description) if the CUDA ops can run on the current device, else (False, the reason)."""
    global _READY
    if not torch.cuda.is_available():
        return False, "no CUDA device (torch.cuda.is_available() is False)"
    err = _load_error()
    if err is not None:
        return False, err
    cap = torch.cuda.get_device_capability()
    if cap not in SUPPORTED_CAPABILITIES:
        return False, f"unsupported GPU architecture sm_{cap[0]}{cap[1]} (kernels exist for " + ", ".join(
            f"sm_{a}{b}" for a, b in SUPPORTED_CAPABILITIES) + ")"
    _READY = True
    return True, f"vllm_sq._C loaded; {torch.cuda.get_device_name()} (sm_{cap[0]}{cap[1]})"


def require() -> None:
    """Raises RuntimeError naming the reason when the ops cannot run (free once they could)."""
    if _READY:
        return
    ok, reason = available()
    if not ok:
        raise RuntimeError(f"vllm_sq CUDA ops unavailable: {reason}")
