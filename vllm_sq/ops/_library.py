"""The schemas of torch.ops.vllm_sq, defined in Python so every machine has the ops' contract.

With the schemas and the fake (meta) implementations defined here, graphs that call the ops can be traced,
compiled and rewritten (vllm_sq/producer_fusion.py) without the compiled extension; `vllm_sq._C` only adds the
CUDA kernels (and `gemm_configs`, which describes them). Importing this module defines the ops once per process.
"""

from __future__ import annotations

import torch

NAMESPACE = "vllm_sq"

SCHEMAS: dict[str, str] = {
    "int8_scaled_mm": "(Tensor a, Tensor b, Tensor a_scales, Tensor b_scales, Tensor? bias, ScalarType out_dtype, "
                      "int config=-1) -> Tensor",
    "int8_scaled_mm_azp": "(Tensor a, Tensor b, Tensor a_scales, Tensor b_scales, Tensor azp_adj, Tensor azp, "
                          "Tensor? bias, ScalarType out_dtype, int config=-1) -> Tensor",
    "per_token_quant": "(Tensor x) -> (Tensor, Tensor)",
    "per_token_quant_azp": "(Tensor x) -> (Tensor, Tensor, Tensor)",
    "static_quant": "(Tensor x, Tensor scale) -> Tensor",
    "rms_norm_quant": "(Tensor x, Tensor weight, float eps, Tensor? scale) -> (Tensor, Tensor)",
    # residual <- x + residual, in place (the annotation tells torch.compile which argument is written).
    "fused_add_rms_norm_quant": "(Tensor x, Tensor(a!) residual, Tensor weight, float eps, Tensor? scale) "
                                "-> (Tensor, Tensor)",
    "layer_norm_quant": "(Tensor x, Tensor weight, Tensor bias, float eps, Tensor? scale) -> (Tensor, Tensor)",
    "silu_and_mul_quant": "(Tensor x, Tensor? scale) -> (Tensor, Tensor)",
}

_LIB = torch.library.Library(NAMESPACE, "FRAGMENT")  # noqa: TOR901 (module-lifetime registration)
for _name, _schema in SCHEMAS.items():
    _LIB.define(_name + _schema)

from vllm_sq.ops import _fake  # noqa: E402  (the fakes need the schemas above)

_fake.register()
