// Host entry points of the torch ops in namespace `vllm_sq` (schemas in torch_bindings.cpp).
#pragma once

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>

namespace vllm_sq {

// "[d0, d1, ...]": tensor sizes/strides for error messages. Numbers in TORCH_CHECK messages go through
// std::to_string (devices through Device::str()): on the GPU machine (torch 2.11, gcc 13) streaming an integer
// into the message through std::ostream crashed the process, while string pieces were fine.
inline std::string dims_str(c10::IntArrayRef dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

at::Tensor int8_scaled_mm(const at::Tensor& a, const at::Tensor& b, const at::Tensor& a_scales,
                          const at::Tensor& b_scales, const std::optional<at::Tensor>& bias,
                          at::ScalarType out_dtype, int64_t config);

at::Tensor int8_scaled_mm_azp(const at::Tensor& a, const at::Tensor& b, const at::Tensor& a_scales,
                              const at::Tensor& b_scales, const at::Tensor& azp_adj, const at::Tensor& azp,
                              const std::optional<at::Tensor>& bias, at::ScalarType out_dtype, int64_t config);

// Names of the GEMM tile configurations on `device` (index = the `config` argument above).
std::vector<std::string> gemm_configs(int64_t device);

std::tuple<at::Tensor, at::Tensor> per_token_quant(const at::Tensor& x);
std::tuple<at::Tensor, at::Tensor, at::Tensor> per_token_quant_azp(const at::Tensor& x);
at::Tensor static_quant(const at::Tensor& x, const at::Tensor& scale);
std::tuple<at::Tensor, at::Tensor> rms_norm_quant(const at::Tensor& x, const at::Tensor& weight, double eps,
                                                  const std::optional<at::Tensor>& scale);
std::tuple<at::Tensor, at::Tensor> fused_add_rms_norm_quant(const at::Tensor& x, at::Tensor& residual,
                                                            const at::Tensor& weight, double eps,
                                                            const std::optional<at::Tensor>& scale);
std::tuple<at::Tensor, at::Tensor> layer_norm_quant(const at::Tensor& x, const at::Tensor& weight,
                                                    const at::Tensor& bias, double eps,
                                                    const std::optional<at::Tensor>& scale);
std::tuple<at::Tensor, at::Tensor> silu_and_mul_quant(const at::Tensor& x, const std::optional<at::Tensor>& scale);

}  // namespace vllm_sq
