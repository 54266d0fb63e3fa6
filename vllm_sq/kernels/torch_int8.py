"""Portable int8 kernel: exact int32 GEMM (`torch._int_mm`) with activation quantization in torch ops.

It follows docs/checkpoint_format.md literally, so on CPU it is the correct path wherever vLLM's
oneDNN int8 GEMM cannot be trusted (see `onednn.py`). It is slow on CPUs without VNNI; it is the
plugin's reference numerics, not a speed path, and is never chosen on GPUs.
"""

from __future__ import annotations

import torch

from vllm_sq.kernels.base import Int8Kernel, Int8LinearSpec, dynamic_per_tensor_scale, replace_param


def quantize_activation(
    x: torch.Tensor, spec: Int8LinearSpec, input_scale: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Quantize a 2-D activation as the format prescribes: (x_q int8, scale f32 [M,1] or [1,1], zero point)."""
    xf = x.float()
    if not spec.activation_symmetric:
        hi = xf.amax(dim=1, keepdim=True)
        lo = xf.amin(dim=1, keepdim=True)
        scale = (hi - lo) / 255.0
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        zero = torch.round(-128.0 - lo / scale).clamp(-128, 127)
        q = (torch.round(xf / scale) + zero).clamp(-128, 127).to(torch.int8)
        return q, scale, zero.to(torch.int32)
    if not spec.activation_dynamic:
        assert input_scale is not None
        scale = input_scale.view(1, 1)
    elif spec.activation_per_token:
        scale = xf.abs().amax(dim=1, keepdim=True) / 127.0
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    else:
        scale = dynamic_per_tensor_scale(xf).view(1, 1)
    q = torch.round(xf / scale).clamp(-127, 127).to(torch.int8)
    return q, scale, None


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
        q, scale, zero = quantize_activation(x2, self.spec, layer.input_scale)
        acc = torch._int_mm(q, layer.weight.t())
        if zero is not None:
            acc = acc - zero * layer.azp_adj
        y = acc.float() * scale * layer.weight_scale
        if bias is not None:
            y = y + bias.float()
        return y.to(x.dtype).reshape(*shape[:-1], -1)
