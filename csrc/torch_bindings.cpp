// Registers the ops in the torch library `vllm_sq` (schemas here, CUDA kernels below; fake/meta
// implementations for torch.compile live in vllm_sq/ops/_fake.py) and makes this file an importable
// Python module `vllm_sq._C` whose import performs the registration.
#include <Python.h>
#include <torch/library.h>

#include "ops.h"

TORCH_LIBRARY(vllm_sq, m) {
  m.def("int8_scaled_mm(Tensor a, Tensor b, Tensor a_scales, Tensor b_scales, Tensor? bias, "
        "ScalarType out_dtype, int config=-1) -> Tensor");
  m.def("int8_scaled_mm_azp(Tensor a, Tensor b, Tensor a_scales, Tensor b_scales, Tensor azp_adj, Tensor azp, "
        "Tensor? bias, ScalarType out_dtype, int config=-1) -> Tensor");
  m.def("gemm_configs(int device) -> str[]", &vllm_sq::gemm_configs);
  m.def("per_token_quant(Tensor x) -> (Tensor, Tensor)");
  m.def("per_token_quant_azp(Tensor x) -> (Tensor, Tensor, Tensor)");
  m.def("static_quant(Tensor x, Tensor scale) -> Tensor");
  m.def("rms_norm_quant(Tensor x, Tensor weight, float eps, Tensor? scale) -> (Tensor, Tensor)");
  m.def("fused_add_rms_norm_quant(Tensor x, Tensor(a!) residual, Tensor weight, float eps, Tensor? scale) "
        "-> (Tensor, Tensor)");
  m.def("layer_norm_quant(Tensor x, Tensor weight, Tensor bias, float eps, Tensor? scale) -> (Tensor, Tensor)");
  m.def("silu_and_mul_quant(Tensor x, Tensor? scale) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(vllm_sq, CUDA, m) {
  m.impl("int8_scaled_mm", &vllm_sq::int8_scaled_mm);
  m.impl("int8_scaled_mm_azp", &vllm_sq::int8_scaled_mm_azp);
  m.impl("per_token_quant", &vllm_sq::per_token_quant);
  m.impl("per_token_quant_azp", &vllm_sq::per_token_quant_azp);
  m.impl("static_quant", &vllm_sq::static_quant);
  m.impl("rms_norm_quant", &vllm_sq::rms_norm_quant);
  m.impl("fused_add_rms_norm_quant", &vllm_sq::fused_add_rms_norm_quant);
  m.impl("layer_norm_quant", &vllm_sq::layer_norm_quant);
  m.impl("silu_and_mul_quant", &vllm_sq::silu_and_mul_quant);
}

extern "C" PyObject* PyInit__C(void) {
  static PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", "vllm_sq CUDA kernels (torch.ops.vllm_sq)", -1,
                               nullptr};
  return PyModule_Create(&module);
}
