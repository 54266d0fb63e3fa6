"""Choose the int8 kernel for a layer: a priority list per platform, the first that fits wins.

No silent fallback: the choice (and why better-ranked kernels were passed over) is logged, and when
no kernel fits, one error lists every kernel's reason.
"""

from __future__ import annotations

from vllm.logger import init_logger

from vllm_sq.kernels.base import Int8Kernel, Int8LinearSpec
from vllm_sq.kernels.cuda import VllmCutlassInt8Kernel, VllmSqCutlassKernel
from vllm_sq.kernels.onednn import OneDNNInt8Kernel
from vllm_sq.kernels.torch_int8 import TorchInt8Kernel

logger = init_logger("vllm.smoothquant.kernels")

# In priority order. A kernel's can_implement() also checks the platform, so a list per platform
# only keeps the order readable.
KERNELS_BY_PLATFORM: dict[str, list[type[Int8Kernel]]] = {
    "cuda": [VllmSqCutlassKernel, VllmCutlassInt8Kernel],
    "cpu": [OneDNNInt8Kernel, TorchInt8Kernel],
}

_logged: set[tuple[str, Int8LinearSpec]] = set()


class NoKernelError(RuntimeError):
    """No int8 kernel can run a layer on this machine."""


def _platform_name() -> str:
    from vllm.platforms import current_platform

    if current_platform.is_cuda():
        return "cuda"
    if current_platform.is_cpu():
        return "cpu"
    return str(current_platform.device_type)


def select_kernel(spec: Int8LinearSpec, layer_name: str) -> Int8Kernel:
    """Return an instance of the first kernel (in platform priority order) that can run `spec`."""
    platform = _platform_name()
    candidates = KERNELS_BY_PLATFORM.get(platform, [])
    rejected: list[str] = []
    for kernel_cls in candidates:
        ok, reason = kernel_cls.can_implement(spec)
        if ok:
            key = (kernel_cls.name, spec)
            if key not in _logged:
                _logged.add(key)
                passed_over = f" (passed over: {'; '.join(rejected)})" if rejected else ""
                logger.info(
                    "smoothquant: %s uses kernel %s for %s%s",
                    layer_name, kernel_cls.name, spec.describe(), passed_over,
                )
            return kernel_cls(spec)
        rejected.append(f"{kernel_cls.name}: {reason}")
    listing = "\n".join(f"  - {r}" for r in rejected) or f"  (no smoothquant kernels exist for platform {platform!r})"
    raise NoKernelError(
        f"smoothquant: no int8 kernel can run layer {layer_name!r} ({spec.describe()}, "
        f"N={spec.out_features}, K={spec.in_features}) on platform {platform!r}:\n{listing}"
    )


__all__ = ["Int8Kernel", "Int8LinearSpec", "KERNELS_BY_PLATFORM", "NoKernelError", "select_kernel"]
