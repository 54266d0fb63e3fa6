"""CPU: vLLM's oneDNN int8 GEMM (`create_onednn_scaled_mm` / `onednn_scaled_mm`) and its quant op.

oneDNN's s8 x s8 GEMM needs VNNI/AMX on x86: on an AVX2-only CPU (measured here) its u8*s8 pair sums
saturate int16, so dynamic and float32 configurations give wrong results, and the one that is right
(bf16, static) runs a reference kernel ~40x slower than torch._int_mm. So on x86 `can_implement` requires
VNNI or AMX, and everywhere it runs a small self-test against an exact integer GEMM for the exact
configuration the layer will use, refusing (with the measured error) where the result is wrong.
"""

from __future__ import annotations

import functools

import torch

from vllm_sq.kernels.base import Int8Kernel, Int8LinearSpec, replace_param
from vllm_sq.kernels.quant_torch import dynamic_per_tensor_scale, quantize_activation

_SELF_TEST_TOLERANCE = 2e-2  # relative to max |y|; bf16 output rounding alone is ~4e-3
_X86_INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@functools.cache
def _x86_int8_isa() -> tuple[bool, str]:
    """(True, "") unless this is an x86 CPU without VNNI/AMX (from /proc/cpuinfo; other OSes are not judged)."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return True, ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return True, ""
    if any(flag in flags for flag in _X86_INT8_FLAGS):
        return True, ""
    return False, (
        f"this x86 CPU has none of {list(_X86_INT8_FLAGS)}: oneDNN's int8 GEMM is then wrong or a slow "
        "reference kernel"
    )


@functools.cache
def _self_test(out_dtype: torch.dtype, dynamic_per_token: bool, use_azp: bool) -> tuple[bool, str]:
    from vllm import _custom_ops as ops

    gen = torch.Generator().manual_seed(0)
    m, k, n = 8, 256, 64
    f32 = torch.float32  # explicit: vLLM sets the model dtype as default while layers are built
    x = torch.randn(m, k, generator=gen, dtype=f32) * (1 + 20 * (torch.rand(k, generator=gen, dtype=f32) > 0.97))
    x = x.to(out_dtype)
    w = torch.randint(-127, 128, (n, k), dtype=torch.int8, generator=gen)
    w_scale = torch.rand(n, 1, generator=gen, dtype=f32) * 1e-2 + 1e-3
    w_t = w.t()
    handler = ops.create_onednn_scaled_mm(w_t, w_scale, out_dtype, dynamic_per_token, use_azp, 32)
    if use_azp:
        x_q, x_s, x_zp = quantize_activation(x, dynamic=True, per_token=True, symmetric=False)
    elif dynamic_per_token:
        x_q, x_s, x_zp = ops.onednn_scaled_int8_quant(x, None, None, True)
    else:
        x_s = dynamic_per_tensor_scale(x)
        x_q, _, x_zp = ops.onednn_scaled_int8_quant(x, x_s, None, True)
    adj = (w.sum(dim=1, dtype=torch.float32) * w_scale.view(-1)).view(1, -1) if use_azp else None
    out = torch.empty(m, n, dtype=out_dtype)
    ops.onednn_scaled_mm(handler, x_q, out, x_s, x_zp, adj, None)
    acc = x_q.double() @ w.double().t()
    if x_zp is not None:
        acc = acc - x_zp.double().view(-1, 1) * w.double().sum(dim=1).view(1, -1)
    ref = acc * x_s.double().view(-1, 1) * w_scale.double().view(1, -1)
    err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
    if err > _SELF_TEST_TOLERANCE:
        return False, (
            f"oneDNN int8 GEMM self-test failed on this CPU (relative error {err:.3g} > "
            f"{_SELF_TEST_TOLERANCE}; CPU capability {torch.backends.cpu.get_cpu_capability()}, "
            "likely no VNNI/AMX)"
        )
    return True, ""


class OneDNNInt8Kernel(Int8Kernel):
    """CPU: vLLM's oneDNN int8 ops, weights prepacked once by the oneDNN handler."""

    name = "vllm-onednn (vLLM CPU oneDNN int8)"

    @classmethod
    def can_implement(cls, spec: Int8LinearSpec) -> tuple[bool, str]:
        from vllm.platforms import current_platform

        if not current_platform.is_cpu():
            return False, "requires the CPU platform"
        import vllm._custom_ops  # noqa: F401  (loads vLLM's torch.ops._C)

        if not hasattr(torch.ops._C, "onednn_scaled_mm"):
            return False, "this vLLM build has no oneDNN int8 ops"
        if spec.out_dtype not in (torch.bfloat16, torch.float16, torch.float32):
            return False, f"unsupported output dtype {spec.out_dtype}"
        ok, reason = _x86_int8_isa()
        if not ok:
            return ok, reason
        per_token = spec.activation_dynamic and spec.activation_per_token
        return _self_test(spec.out_dtype, per_token, not spec.activation_symmetric)

    def process_weights(self, layer: torch.nn.Module) -> None:
        from vllm import _custom_ops as ops

        weight = layer.weight.data
        # The handler keeps pointers to the scale tensors: they must stay alive as layer parameters.
        w_scale = layer.weight_scale.data.float().reshape(-1, 1).contiguous()
        replace_param(layer, "weight_scale", w_scale)
        if not self.spec.activation_symmetric:
            # oneDNN subtracts s_x * z * adj, with adj = s_w * column sums of W_q folded in.
            adj = (weight.sum(dim=1, dtype=torch.float32) * w_scale.view(-1)).view(1, -1)
            layer.register_buffer("azp_adj", adj.contiguous(), persistent=False)
        per_token = self.spec.activation_dynamic and self.spec.activation_per_token
        self.handler = ops.create_onednn_scaled_mm(
            weight.t(), layer.weight_scale, self.spec.out_dtype, per_token, not self.spec.activation_symmetric, 32
        )
        # The handler holds the prepacked weight; the int8 [N, K] copy is no longer needed.
        replace_param(layer, "weight", None)

    def apply(self, layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        from vllm import _custom_ops as ops

        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        spec = self.spec
        if not spec.activation_symmetric:
            # vLLM's azp quant uses the bare row min/max; the format's range includes 0 (quant_torch).
            x_q, x_s, x_zp = quantize_activation(x2, dynamic=True, per_token=True, symmetric=False)
        elif not spec.activation_dynamic:
            x_q, x_s, x_zp = ops.onednn_scaled_int8_quant(x2, layer.input_scale, None, True)
        elif spec.activation_per_token:
            x_q, x_s, x_zp = ops.onednn_scaled_int8_quant(x2, None, None, True)
        else:
            x_q, x_s, x_zp = ops.onednn_scaled_int8_quant(x2, dynamic_per_tensor_scale(x2), None, True)
        out = torch.empty((x2.shape[0], self.handler.n), dtype=x.dtype, device=x.device)
        ops.onednn_scaled_mm(self.handler, x_q, out, x_s, x_zp, getattr(layer, "azp_adj", None), bias)
        return out.reshape(*shape[:-1], -1)
