"""Fake (meta) implementations: output shapes and dtypes for torch.compile / CUDA-graph tracing.

They run the same argument checks as the eager wrappers, so a misshaped call fails at trace time with the
argument named.
"""

from __future__ import annotations

import torch

from vllm_sq.ops import _checks


def register() -> None:
    """Registers one fake per tensor op of torch.ops.vllm_sq (called once, by `_library` after defining them)."""
    lib = "vllm_sq::"

    @torch.library.register_fake(lib + "int8_scaled_mm")
    def _int8_scaled_mm(a, b, a_scales, b_scales, bias, out_dtype, config=-1):
        _checks.scaled_mm_args(a, b, a_scales, b_scales, bias, out_dtype)
        return a.new_empty((a.shape[0], b.shape[1]), dtype=out_dtype)

    @torch.library.register_fake(lib + "int8_scaled_mm_azp")
    def _int8_scaled_mm_azp(a, b, a_scales, b_scales, azp_adj, azp, bias, out_dtype, config=-1):
        _checks.scaled_mm_args(a, b, a_scales, b_scales, bias, out_dtype)
        _checks.azp_args(a, b, a_scales, azp_adj, azp)
        return a.new_empty((a.shape[0], b.shape[1]), dtype=out_dtype)

    @torch.library.register_fake(lib + "per_token_quant")
    def _per_token_quant(x):
        _checks.activation(x, "x")
        return x.new_empty(x.shape, dtype=torch.int8), x.new_empty((x.shape[0], 1), dtype=torch.float32)

    @torch.library.register_fake(lib + "per_token_quant_azp")
    def _per_token_quant_azp(x):
        _checks.activation(x, "x")
        return (x.new_empty(x.shape, dtype=torch.int8), x.new_empty((x.shape[0], 1), dtype=torch.float32),
                x.new_empty((x.shape[0],), dtype=torch.int32))

    @torch.library.register_fake(lib + "static_quant")
    def _static_quant(x, scale):
        _checks.activation(x, "x")
        _checks.static_scale(scale)
        return x.new_empty(x.shape, dtype=torch.int8)

    def _quant_out(x, rows_cols, scale):
        scales_rows = 1 if scale is not None else x.shape[0]
        return (x.new_empty(rows_cols, dtype=torch.int8), x.new_empty((scales_rows, 1), dtype=torch.float32))

    @torch.library.register_fake(lib + "rms_norm_quant")
    def _rms_norm_quant(x, weight, eps, scale):
        _checks.rms_norm_args(x, None, weight, scale)
        return _quant_out(x, x.shape, scale)

    @torch.library.register_fake(lib + "fused_add_rms_norm_quant")
    def _fused_add_rms_norm_quant(x, residual, weight, eps, scale):
        _checks.rms_norm_args(x, residual, weight, scale)
        return _quant_out(x, x.shape, scale)

    @torch.library.register_fake(lib + "layer_norm_quant")
    def _layer_norm_quant(x, weight, bias, eps, scale):
        _checks.layer_norm_args(x, weight, bias, scale)
        return _quant_out(x, x.shape, scale)

    @torch.library.register_fake(lib + "silu_and_mul_quant")
    def _silu_and_mul_quant(x, scale):
        _checks.silu_and_mul_args(x, scale)
        return _quant_out(x, (x.shape[0], x.shape[1] // 2), scale)
