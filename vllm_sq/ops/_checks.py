"""Argument checks shared by the eager wrappers and the fake implementations.

The kernels assume these layouts; the C++ entry points repeat the checks for direct torch.ops calls. Each error
names the argument at fault. Pure shape/dtype logic: runs on CPU and meta tensors too.
"""

from __future__ import annotations

import torch

OUT_DTYPES = (torch.bfloat16, torch.float16)


def _fail(cls: type[Exception], msg: str) -> None:
    raise cls(msg)


def activation(x: torch.Tensor, name: str) -> None:
    """A [M, K] bf16/fp16 contiguous activation."""
    if x.dtype not in OUT_DTYPES:
        _fail(TypeError, f"{name} must be bfloat16 or float16 (got {x.dtype})")
    if x.dim() != 2:
        _fail(ValueError, f"{name} must be 2-D [M, K] (got shape {tuple(x.shape)})")
    if not x.is_contiguous():
        _fail(ValueError, f"{name} must be contiguous")


def static_scale(scale: torch.Tensor) -> None:
    """A static per-tensor scale: one float32 value."""
    if scale.dtype != torch.float32:
        _fail(TypeError, f"scale must be float32 (got {scale.dtype})")
    if scale.numel() != 1:
        _fail(ValueError, f"scale must hold one element (static per-tensor; got shape {tuple(scale.shape)})")


def scaled_mm_args(a: torch.Tensor, b: torch.Tensor, a_scales: torch.Tensor, b_scales: torch.Tensor,
                   bias: torch.Tensor | None, out_dtype: torch.dtype) -> None:
    """a int8 [M,K] row-major, b int8 [K,N] column-major, K and N multiples of 16, scales and bias shapes."""
    if a.dtype != torch.int8:
        _fail(TypeError, f"a must be int8 (got {a.dtype})")
    if b.dtype != torch.int8:
        _fail(TypeError, f"b must be int8 (got {b.dtype})")
    if a.dim() != 2:
        _fail(ValueError, f"a must be 2-D [M, K] (got shape {tuple(a.shape)})")
    if b.dim() != 2:
        _fail(ValueError, f"b must be 2-D [K, N] (got shape {tuple(b.shape)})")
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k:
        _fail(ValueError, f"b must be [K, N] with K = a.shape[1] = {k} (got shape {tuple(b.shape)})")
    if a.stride(1) != 1 or (a.stride(0) != k and m != 1):
        _fail(ValueError, f"a must be row-major contiguous [M, K] (strides {a.stride()})")
    if b.stride(0) != 1 or (b.stride(1) != k and n != 1):
        _fail(ValueError, f"b must be column-major [K, N], i.e. b.t() contiguous [N, K] (strides {b.stride()}); "
                          "pass weight.t() of a contiguous [N, K] weight")
    if k == 0 or k % 16 != 0:
        _fail(ValueError, f"K = a.shape[1] must be a positive multiple of 16 (got {k})")
    if n % 16 != 0:
        _fail(ValueError, f"N = b.shape[1] must be a multiple of 16 (got {n})")
    if out_dtype not in OUT_DTYPES:
        _fail(TypeError, f"out_dtype must be bfloat16 or float16 (got {out_dtype})")
    for name, s, full, what in (("a_scales", a_scales, m, "M (per-token)"), ("b_scales", b_scales, n,
                                                                              "N (per-channel)")):
        if s.dtype != torch.float32:
            _fail(TypeError, f"{name} must be float32 (got {s.dtype})")
        if s.numel() != 1 and s.numel() != full:
            _fail(ValueError, f"{name} must hold 1 (per-tensor) or {what} = {full} values "
                              f"(got shape {tuple(s.shape)})")
        if not s.is_contiguous():
            _fail(ValueError, f"{name} must be contiguous")
    if bias is not None:
        if bias.dtype != out_dtype:
            _fail(TypeError, f"bias must have out_dtype {out_dtype} (got {bias.dtype})")
        if bias.numel() != n or not bias.is_contiguous():
            _fail(ValueError, f"bias must be a contiguous [N] = [{n}] vector (got shape {tuple(bias.shape)})")
    for name, t in (("b", b), ("a_scales", a_scales), ("b_scales", b_scales), ("bias", bias)):
        if t is not None and t.device != a.device:
            _fail(ValueError, f"{name} must be on {a.device} like a (got {t.device})")


def azp_args(a: torch.Tensor, b: torch.Tensor, a_scales: torch.Tensor, azp_adj: torch.Tensor,
             azp: torch.Tensor) -> None:
    """Asymmetric activations: per-token scales, int32 zero points [M], int32 column sums of b [N]."""
    m, n = a.shape[0], b.shape[1]
    if azp_adj.dtype != torch.int32:
        _fail(TypeError, f"azp_adj must be int32 (got {azp_adj.dtype})")
    if azp.dtype != torch.int32:
        _fail(TypeError, f"azp must be int32 (got {azp.dtype})")
    if azp_adj.numel() != n or not azp_adj.is_contiguous():
        _fail(ValueError, f"azp_adj must be a contiguous [N] = [{n}] vector of column sums of b "
                          f"(got shape {tuple(azp_adj.shape)})")
    if azp.numel() != m or not azp.is_contiguous():
        _fail(ValueError, f"azp must be a contiguous [M] = [{m}] vector of per-token zero points "
                          f"(got shape {tuple(azp.shape)})")
    if a_scales.numel() != m:
        _fail(ValueError, f"a_scales must be per-token ([M] = [{m}]) with asymmetric activations "
                          f"(got shape {tuple(a_scales.shape)})")


def rms_norm_args(x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor,
                  scale: torch.Tensor | None) -> None:
    activation(x, "x")
    if residual is not None:
        activation(residual, "residual")
        if residual.shape != x.shape or residual.dtype != x.dtype:
            _fail(ValueError, f"residual must match x ({tuple(x.shape)}, {x.dtype}); got "
                              f"({tuple(residual.shape)}, {residual.dtype})")
    if weight.dtype != x.dtype:
        _fail(TypeError, f"weight must have the dtype of x ({x.dtype}; got {weight.dtype})")
    if weight.dim() != 1 or weight.shape[0] != x.shape[1] or not weight.is_contiguous():
        _fail(ValueError, f"weight must be a contiguous [K] = [{x.shape[1]}] vector (got shape "
                          f"{tuple(weight.shape)})")
    if scale is not None:
        static_scale(scale)


def layer_norm_args(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, scale: torch.Tensor | None) -> None:
    activation(x, "x")
    for name, t in (("weight", weight), ("bias", bias)):
        if t.dtype != x.dtype:
            _fail(TypeError, f"{name} must have the dtype of x ({x.dtype}; got {t.dtype})")
        if t.dim() != 1 or t.shape[0] != x.shape[1] or not t.is_contiguous():
            _fail(ValueError, f"{name} must be a contiguous [K] = [{x.shape[1]}] vector (got shape {tuple(t.shape)})")
    if scale is not None:
        static_scale(scale)


def silu_and_mul_args(x: torch.Tensor, scale: torch.Tensor | None) -> None:
    activation(x, "x")
    if x.shape[1] % 2 != 0:
        _fail(ValueError, f"x must be [M, 2*D] (gate then up); its last dim {x.shape[1]} is odd")
    if scale is not None:
        static_scale(scale)
