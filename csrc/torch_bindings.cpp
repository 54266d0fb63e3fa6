// Registers the CUDA kernels of the torch library `vllm_sq` and makes this file an importable Python module
// `vllm_sq._C` whose import performs the registration. The tensor ops' schemas and fake (meta) implementations are
// defined in Python (vllm_sq/ops/_library.py, imported before this module), so graphs that use the ops can be
// traced on machines without this extension; only `gemm_configs`, which describes the kernels compiled here, is
// defined here.
#include <Python.h>
#include <torch/library.h>

#include "ops.h"

TORCH_LIBRARY_FRAGMENT(vllm_sq, m) { m.def("gemm_configs(int device) -> str[]", &vllm_sq::gemm_configs); }

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
