"""Portable int8 kernel: exact int32 GEMM (`torch._int_mm`) with activation quantization in torch ops.

It follows docs/checkpoint_format.md literally, so on CPU it is the correct path wherever vLLM's
oneDNN int8 GEMM cannot be trusted (see `onednn.py`). It is slow on CPUs without VNNI; it is the
plugin's reference numerics, not a speed path, and is never chosen on GPUs.
"""

from __future__ import annotations

import torch

from vllm_sq.kernels.base import Int8Kernel, Int8LinearSpec, replace_param
from vllm_sq.kernels.quant_torch import quantize_activation


class TorchInt8Kernel(Int8Kernel):
    """CPU: exact int32 accumulation via torch._int_mm; numerics exactly as the format document."""

    name = "torch-int8 (torch._int_mm, CPU reference path)"

    @classmethod
    def can_implement(cls, spec: Int8LinearSpec) -> tuple[bool, str]:
        from vllm.platforms import current_platform

        if not current_platform.is_cpu():
            return False, "only used on CPU (GPUs have real int8 kernels)"
        if spec.out_dtype not in (torch.bfloat16, torch.float16, torch.float32):
            return False, f"unsupported output dtype {spec.out_dtype}"
        return True, ""

    def process_weights(self, layer: torch.nn.Module) -> None:
        weight = layer.weight.data
        # Column sums of W_q, for the zero-point correction of asymmetric activations (int32 [1, N]).
        if not self.spec.activation_symmetric:
            layer.register_buffer("azp_adj", weight.sum(dim=1, dtype=torch.int32).view(1, -1), persistent=False)
        replace_param(layer, "weight_scale", layer.weight_scale.data.float().view(1, -1))

    def apply(self, layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        spec = self.spec
        q, scale, zero = quantize_activation(
            x2, dynamic=spec.activation_dynamic, per_token=spec.activation_per_token,
            symmetric=spec.activation_symmetric, input_scale=layer.input_scale,
        )
        acc = torch._int_mm(q, layer.weight.t())
        if zero is not None:
            acc = acc - zero * layer.azp_adj
        y = acc.float() * scale * layer.weight_scale
        if bias is not None:
            y = y + bias.float()
        return y.to(x.dtype).reshape(*shape[:-1], -1)
