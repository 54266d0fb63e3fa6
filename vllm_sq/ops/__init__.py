"""Python API over the CUDA ops of `vllm_sq._C` (namespace `torch.ops.vllm_sq`).

int8 GEMMs with the dequantization fused into the CUTLASS epilogue, and activation quantization fused into the
op that produces the activation. `available()` says whether they can run here; on a CPU-only install every
function below raises RuntimeError with that reason.
"""

from vllm_sq.ops._loader import available
from vllm_sq.ops.gemm import gemm_configs, int8_scaled_mm, int8_scaled_mm_azp
from vllm_sq.ops.quant import (
    fused_add_rms_norm_quant,
    layer_norm_quant,
    per_token_quant,
    rms_norm_quant,
    silu_and_mul_quant,
    static_quant,
)

__all__ = [
    "available",
    "fused_add_rms_norm_quant",
    "gemm_configs",
    "int8_scaled_mm",
    "int8_scaled_mm_azp",
    "layer_norm_quant",
    "per_token_quant",
    "rms_norm_quant",
    "silu_and_mul_quant",
    "static_quant",
]
