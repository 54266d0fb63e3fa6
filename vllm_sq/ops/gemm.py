"""int8 x int8 GEMMs with per-token/per-channel dequantization and bias fused into the epilogue."""

from __future__ import annotations

import torch

from vllm_sq.ops import _checks
from vllm_sq.ops._loader import require


def _flat(scales: torch.Tensor) -> torch.Tensor:
    # [M,1], [1,N], [M], [1,1], [1]: the kernels take the values in order, so a view suffices.
    return scales.reshape(-1)


def int8_scaled_mm(a: torch.Tensor, b: torch.Tensor, a_scales: torch.Tensor, b_scales: torch.Tensor,
                   bias: torch.Tensor | None = None, out_dtype: torch.dtype = torch.bfloat16, *,
                   config: int = -1) -> torch.Tensor:
    """out[m, n] = a_scales[m] * b_scales[n] * (a @ b)[m, n] + bias[n], in out_dtype.

    a: int8 [M, K] row-major; b: int8 [K, N] column-major (b.t() contiguous, i.e. the [N, K] weight transposed);
    a_scales: float32 [M, 1] or [1, 1] (also [M]/[1]); b_scales: float32 [1, N] or [1, 1] (also [N]/[1]);
    bias: [N] in out_dtype or None. K and N must be multiples of 16. `config` >= 0 forces a tile configuration
    (index into gemm_configs(); for benchmarks and tests).
    """
    _checks.scaled_mm_args(a, b, a_scales, b_scales, bias, out_dtype)
    require()
    return torch.ops.vllm_sq.int8_scaled_mm(a, b, _flat(a_scales), _flat(b_scales), bias, out_dtype, config)


def int8_scaled_mm_azp(a: torch.Tensor, b: torch.Tensor, a_scales: torch.Tensor, b_scales: torch.Tensor,
                       azp_adj: torch.Tensor, azp: torch.Tensor, bias: torch.Tensor | None = None,
                       out_dtype: torch.dtype = torch.bfloat16, *, config: int = -1) -> torch.Tensor:
    """Asymmetric activations: out = a_scales[m] * b_scales[n] * (acc - azp[m] * azp_adj[n]) + bias[n].

    azp: int32 [M] per-token zero points (from per_token_quant(x, symmetric=False));
    azp_adj: int32 [N] column sums of b (sum over K of the int8 weight row n).
    """
    _checks.scaled_mm_args(a, b, a_scales, b_scales, bias, out_dtype)
    _checks.azp_args(a, b, a_scales, azp_adj, azp)
    require()
    return torch.ops.vllm_sq.int8_scaled_mm_azp(a, b, _flat(a_scales), _flat(b_scales), azp_adj.reshape(-1),
                                                azp.reshape(-1), bias, out_dtype, config)


def gemm_configs(device: int | None = None) -> list[str]:
    """Names of the GEMM tile configurations for the device's architecture (index = `config`)."""
    require()
    return list(torch.ops.vllm_sq.gemm_configs(torch.cuda.current_device() if device is None else device))
