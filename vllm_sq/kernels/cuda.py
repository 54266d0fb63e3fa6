"""CUDA kernels: this project's CUTLASS ops (`vllm_sq.ops`) first, vLLM's own CUTLASS int8 path second.

Both keep W_q as [N, K] row-major, which is exactly the column-major [K, N] operand (`weight.t()`)
the CUTLASS GEMMs read, so no copy is made at load time. Activations are quantized differently under
torch.compile: this project's kernel always calls its opaque quantization op, and the post-grad pass of
vllm_sq/producer_fusion.py (installed at model build) merges it with the RMSNorm / SiLU-and-mul that produces
the activation into one fused CUDA op; with vLLM's kernels, activations are quantized with plain torch ops while
tracing (`quant_torch`), so that Inductor fuses the quantization into the producer's generated kernel.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch

from vllm_sq.kernels.base import Int8Kernel, Int8LinearSpec, replace_param
from vllm_sq.kernels.quant_torch import dynamic_per_tensor_scale, quantize_activation

MIN_CAPABILITY = 75
QuantizedActivation = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"]  # (x_q, scales, zero points)


def _cuda_check(spec: Int8LinearSpec) -> tuple[bool, str]:
    from vllm.platforms import current_platform

    if not current_platform.is_cuda():
        return False, "requires CUDA"
    cap = current_platform.get_device_capability()
    if cap is None or cap.to_int() < MIN_CAPABILITY:
        return False, f"requires compute capability >= {MIN_CAPABILITY / 10:.1f}, found {cap}"
    if spec.out_dtype not in (torch.bfloat16, torch.float16):
        return False, f"output dtype must be bfloat16 or float16, got {spec.out_dtype}"
    if spec.in_features % 16 or spec.out_features % 16:
        return False, f"K={spec.in_features} and N={spec.out_features} must be multiples of 16"
    return True, ""


class _CutlassInt8Kernel(Int8Kernel):
    """Shared apply(): quantize the activation, then the backend's GEMM with the dequantization fused.
    Subclasses supply `quantize` and `matmul`."""

    def apply(self, layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        shape = x.shape
        x_q, x_s, azp = self.quantize(layer, x.reshape(-1, shape[-1]).contiguous())
        return self.matmul(layer, x_q, x_s, azp, bias, x.dtype).reshape(*shape[:-1], -1)

    @abstractmethod
    def quantize(self, layer: torch.nn.Module, x: torch.Tensor) -> QuantizedActivation:
        """(x_q int8 [M, K], scales, zero points or None)."""

    @abstractmethod
    def matmul(self, layer: torch.nn.Module, x_q: torch.Tensor, x_s: torch.Tensor, azp: torch.Tensor | None,
               bias: torch.Tensor | None, out_dtype: torch.dtype) -> torch.Tensor:
        """The int8 GEMM with per-token x per-channel dequantization (and zero-point correction) and bias."""


class VllmSqCutlassKernel(_CutlassInt8Kernel):
    """This project's CUTLASS kernels (csrc/, torch ops `vllm_sq::*`)."""

    name = "vllm_sq-cutlass (this project's CUTLASS ops)"

    @classmethod
    def can_implement(cls, spec: Int8LinearSpec) -> tuple[bool, str]:
        ok, reason = _cuda_check(spec)
        if not ok:
            return ok, reason
        try:
            from vllm_sq import ops
        except ImportError as exc:
            return False, f"vllm_sq.ops cannot be imported ({exc})"
        ok, reason = ops.available()
        return (True, "") if ok else (False, f"vllm_sq._C not usable: {reason}")

    def configure_compilation(self, vllm_config: Any) -> None:
        from vllm_sq import producer_fusion

        producer_fusion.install(vllm_config)

    def process_weights(self, layer: torch.nn.Module) -> None:
        weight = layer.weight.data
        replace_param(layer, "weight_scale", layer.weight_scale.data.float().view(1, -1).contiguous())
        if not self.spec.activation_symmetric:
            layer.register_buffer("azp_adj", weight.sum(dim=1, dtype=torch.int32).contiguous(), persistent=False)
        if layer.input_scale is not None:
            replace_param(layer, "input_scale", layer.input_scale.data.float().reshape(1).contiguous())

    def quantize(self, layer: torch.nn.Module, x: torch.Tensor) -> QuantizedActivation:
        from vllm_sq import ops

        spec = self.spec
        if not spec.activation_symmetric:
            return ops.per_token_quant(x, symmetric=False)
        if not spec.activation_dynamic:
            return ops.static_quant(x, layer.input_scale), layer.input_scale, None
        if spec.activation_per_token:
            return ops.per_token_quant(x, symmetric=True)
        scale = dynamic_per_tensor_scale(x)
        return ops.static_quant(x, scale), scale, None

    def matmul(self, layer: torch.nn.Module, x_q: torch.Tensor, x_s: torch.Tensor, azp: torch.Tensor | None,
               bias: torch.Tensor | None, out_dtype: torch.dtype) -> torch.Tensor:
        from vllm_sq import ops

        w_t = layer.weight.t()
        if azp is not None:
            return ops.int8_scaled_mm_azp(x_q, w_t, x_s, layer.weight_scale, layer.azp_adj, azp.reshape(-1), bias,
                                          out_dtype)
        return ops.int8_scaled_mm(x_q, w_t, x_s, layer.weight_scale, bias, out_dtype)


class VllmCutlassInt8Kernel(_CutlassInt8Kernel):
    """vLLM's `scaled_int8_quant` + `cutlass_scaled_mm` / `cutlass_scaled_mm_azp`."""

    name = "vllm-cutlass (vLLM's cutlass_scaled_mm int8)"

    @classmethod
    def can_implement(cls, spec: Int8LinearSpec) -> tuple[bool, str]:
        ok, reason = _cuda_check(spec)
        if not ok:
            return ok, reason
        import vllm._custom_ops  # noqa: F401  (loads vLLM's torch.ops._C)

        if not hasattr(torch.ops._C, "cutlass_scaled_mm"):
            return False, "this vLLM build has no cutlass_scaled_mm"
        return True, ""

    def process_weights(self, layer: torch.nn.Module) -> None:
        weight = layer.weight.data
        replace_param(layer, "weight_scale", layer.weight_scale.data.float().view(-1, 1).contiguous())
        if not self.spec.activation_symmetric:
            # vLLM's azp epilogue takes the int32 column sums of W_q, [1, N].
            layer.register_buffer(
                "azp_adj", weight.sum(dim=1, dtype=torch.int32).view(1, -1).contiguous(), persistent=False
            )
        if layer.input_scale is not None:
            replace_param(layer, "input_scale", layer.input_scale.data.float().reshape(()).contiguous())

    def quantize(self, layer: torch.nn.Module, x: torch.Tensor) -> QuantizedActivation:
        from vllm import _custom_ops as ops

        spec = self.spec
        if torch.compiler.is_compiling():  # torch ops, which Inductor fuses into the producer's kernel
            return quantize_activation(x, dynamic=spec.activation_dynamic, per_token=spec.activation_per_token,
                                       symmetric=spec.activation_symmetric, input_scale=layer.input_scale)
        if not spec.activation_symmetric:
            # vLLM's azp quant uses the bare row min/max; the format's range includes 0 (quant_torch).
            return quantize_activation(x, dynamic=True, per_token=True, symmetric=False)
        if not spec.activation_dynamic:
            scale = layer.input_scale
        elif spec.activation_per_token:
            scale = None
        else:
            scale = dynamic_per_tensor_scale(x).reshape(())
        x_q, x_s, _ = ops.scaled_int8_quant(x, scale, None, symmetric=True)
        return x_q, x_s, None

    def matmul(self, layer: torch.nn.Module, x_q: torch.Tensor, x_s: torch.Tensor, azp: torch.Tensor | None,
               bias: torch.Tensor | None, out_dtype: torch.dtype) -> torch.Tensor:
        from vllm import _custom_ops as ops

        w_t = layer.weight.t()
        if azp is not None:
            return ops.cutlass_scaled_mm_azp(x_q, w_t, scale_a=x_s, scale_b=layer.weight_scale, out_dtype=out_dtype,
                                             azp_adj=layer.azp_adj, azp=azp, bias=bias)
        return ops.cutlass_scaled_mm(x_q, w_t, scale_a=x_s, scale_b=layer.weight_scale, out_dtype=out_dtype,
                                     bias=bias)
