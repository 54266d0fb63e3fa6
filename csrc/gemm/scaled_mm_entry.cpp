// Entry of the int8 GEMM ops: checks every layout assumption the kernels make, then dispatches by the device's
// architecture (sm_90 -> CUTLASS 3.x wgmma kernels, sm_80/86/89 -> CUTLASS 2.x kernels).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "device_info.h"
#include "gemm/scaled_mm.h"
#include "ops.h"
#include "pdl_registry.h"

namespace vllm_sq {
namespace {

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

void check_on(const at::Tensor& t, const char* name, const at::Tensor& a) {
  TORCH_CHECK(t.device() == a.device(), name, " must be on ", a.device().str(), " like a (got ", t.device().str(), ")");
}

// Checks a, b, scales and bias; fills the shape and pointer fields of `p`.
ScaledMmParams check_and_pack(const at::Tensor& a, const at::Tensor& b, const at::Tensor& a_scales,
                              const at::Tensor& b_scales, const std::optional<at::Tensor>& bias,
                              at::ScalarType out_dtype) {
  TORCH_CHECK(a.is_cuda(), "a must be a CUDA tensor (got ", a.device().str(), ")");
  TORCH_CHECK(a.scalar_type() == at::kChar, "a must be int8 (got ", a.scalar_type(), ")");
  TORCH_CHECK(b.scalar_type() == at::kChar, "b must be int8 (got ", b.scalar_type(), ")");
  check_on(b, "b", a);
  TORCH_CHECK(a.dim() == 2, "a must be 2-D [M, K] (got shape ", dims_str(a.sizes()), ")");
  TORCH_CHECK(b.dim() == 2, "b must be 2-D [K, N] (got shape ", dims_str(b.sizes()), ")");
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  TORCH_CHECK(b.size(0) == k, "b must be [K, N] with K = a.shape[1] = ", std::to_string(k), " (got shape ", dims_str(b.sizes()), ")");
  TORCH_CHECK(a.stride(1) == 1 && (a.stride(0) == k || m == 1), "a must be row-major contiguous [M, K] (strides ",
              dims_str(a.strides()), ")");
  TORCH_CHECK(b.stride(0) == 1 && (b.stride(1) == k || n == 1),
              "b must be column-major [K, N], i.e. b.t() contiguous [N, K] (strides ", dims_str(b.strides()), ")");
  TORCH_CHECK(k > 0, "K = a.shape[1] must be positive");
  TORCH_CHECK(k % 16 == 0, "K = a.shape[1] must be a multiple of 16 (got ", std::to_string(k), ")");
  TORCH_CHECK(n % 16 == 0, "N = b.shape[1] must be a multiple of 16 (got ", std::to_string(n), ")");
  TORCH_CHECK(aligned16(a.data_ptr()), "a's data must be 16-byte aligned");
  TORCH_CHECK(aligned16(b.data_ptr()), "b's data must be 16-byte aligned");
  TORCH_CHECK(m < (int64_t(1) << 31) && n < (int64_t(1) << 31) && k < (int64_t(1) << 31),
              "a and b dimensions must be below 2^31");
  TORCH_CHECK(out_dtype == at::kBFloat16 || out_dtype == at::kHalf, "out_dtype must be bfloat16 or float16 (got ",
              out_dtype, ")");

  check_on(a_scales, "a_scales", a);
  check_on(b_scales, "b_scales", a);
  TORCH_CHECK(a_scales.scalar_type() == at::kFloat, "a_scales must be float32 (got ", a_scales.scalar_type(), ")");
  TORCH_CHECK(b_scales.scalar_type() == at::kFloat, "b_scales must be float32 (got ", b_scales.scalar_type(), ")");
  TORCH_CHECK(a_scales.numel() == 1 || a_scales.numel() == m,
              "a_scales must hold 1 (per-tensor) or M = ", std::to_string(m), " (per-token) values (got shape ", dims_str(a_scales.sizes()),
              ")");
  TORCH_CHECK(b_scales.numel() == 1 || b_scales.numel() == n,
              "b_scales must hold 1 (per-tensor) or N = ", std::to_string(n), " (per-channel) values (got shape ", dims_str(b_scales.sizes()),
              ")");
  TORCH_CHECK(a_scales.is_contiguous(), "a_scales must be contiguous");
  TORCH_CHECK(b_scales.is_contiguous(), "b_scales must be contiguous");
  if (bias.has_value()) {
    check_on(*bias, "bias", a);
    TORCH_CHECK(bias->scalar_type() == out_dtype, "bias must have out_dtype ", out_dtype, " (got ",
                bias->scalar_type(), ")");
    TORCH_CHECK(bias->numel() == n && bias->is_contiguous(), "bias must be a contiguous [N] = [", std::to_string(n),
                "] vector (got shape ", dims_str(bias->sizes()), ")");
  }

  ScaledMmParams p;
  p.a = a.data_ptr<int8_t>();
  p.b = b.data_ptr<int8_t>();
  p.a_scales = a_scales.data_ptr<float>();
  p.b_scales = b_scales.data_ptr<float>();
  p.bias = bias.has_value() ? bias->data_ptr() : nullptr;
  p.m = static_cast<int>(m);
  p.n = static_cast<int>(n);
  p.k = static_cast<int>(k);
  p.a_per_token = a_scales.numel() == m && m > 1;
  p.b_per_channel = b_scales.numel() == n && n > 1;
  p.out_dtype = out_dtype == at::kBFloat16 ? OutDtype::kBFloat16 : OutDtype::kFloat16;
  return p;
}

// VLLM_SQ_GEMM_ARCH=80 runs the sm_80 kernels on a newer GPU (through their embedded PTX): tests only.
int kernel_arch(int device_arch) {
  static const int forced = [] {
    const char* env = std::getenv("VLLM_SQ_GEMM_ARCH");
    return env ? std::atoi(env) : 0;
  }();
  return forced ? forced : device_arch;
}

at::Tensor run_gemm(ScaledMmParams& p, bool azp, int64_t config, const at::Tensor& a, const at::Tensor& a_scales,
                    const at::Tensor& b_scales, at::ScalarType out_dtype) {
  const c10::cuda::CUDAGuard guard(a.device());
  auto out = at::empty({p.m, p.n}, a.options().dtype(out_dtype));
  if (p.m == 0 || p.n == 0) return out;
  p.out = out.data_ptr();
  const DeviceInfo& info = device_info(a.get_device());
  p.sm_count = info.sm_count;
  p.smem_per_sm = info.smem_per_sm;
  p.smem_reserved_per_cta = info.smem_reserved_per_cta;
  const int arch = kernel_arch(info.arch);
  auto stream = c10::cuda::getCurrentCUDAStream(a.get_device());
  // The skinny kernel reads the weight, its scales and the bias before it waits for the kernel before it.
  auto& registry = pdl::Registry::get();
  p.weight_read_early_ok =
      pdl::enabled() && registry.may_read_early(stream, p.b, static_cast<size_t>(p.n) * static_cast<size_t>(p.k)) &&
      registry.may_read_early(stream, p.b_scales, sizeof(float) * (p.b_per_channel ? p.n : 1)) &&
      (p.bias == nullptr || registry.may_read_early(stream, p.bias, 2 * static_cast<size_t>(p.n)));  // bf16/fp16
  GemmPlan plan;
  const char* err = nullptr;
  if (arch >= 90 && arch < 100) {
#ifdef VLLM_SQ_WITH_SM90
    err = sm90_plan(p, azp, static_cast<int>(config), &plan);
    TORCH_CHECK(*err == '\0', "int8_scaled_mm: ", err);
    auto ws = at::empty({static_cast<int64_t>(plan.workspace_bytes)}, a.options().dtype(at::kByte));
    err = sm90_run(p, azp, plan, plan.workspace_bytes ? ws.data_ptr() : nullptr, stream);
#else
    TORCH_CHECK(false, "int8_scaled_mm: vllm_sq._C was built without sm_90a (VLLM_SQ_CUDA_ARCHS)");
#endif
  } else if (arch >= 80 && arch < 90) {
#ifdef VLLM_SQ_WITH_SM80
    // The 2.x broadcast visitors read vectors: expand per-tensor scales (one small copy kernel each).
    at::Tensor sa_vec, sb_vec;
    if (!p.a_per_token && p.m > 1) {
      sa_vec = a_scales.reshape({1}).expand({p.m}).contiguous();
      p.a_scales = sa_vec.data_ptr<float>();
    }
    if (!p.b_per_channel) {
      sb_vec = b_scales.reshape({1}).expand({p.n}).contiguous();
      p.b_scales = sb_vec.data_ptr<float>();
    }
    err = sm80_plan(p, azp, static_cast<int>(config), &plan);
    TORCH_CHECK(*err == '\0', "int8_scaled_mm: ", err);
    auto ws = at::empty({static_cast<int64_t>(plan.workspace_bytes)}, a.options().dtype(at::kByte));
    err = sm80_run(p, azp, plan, plan.workspace_bytes ? ws.data_ptr() : nullptr, stream);
#else
    TORCH_CHECK(false, "int8_scaled_mm: vllm_sq._C was built without sm_80/sm_89 (VLLM_SQ_CUDA_ARCHS)");
#endif
  } else {
    TORCH_CHECK(false, "int8_scaled_mm: unsupported GPU architecture sm_", std::to_string(arch),
                " (kernels exist for sm_80, sm_86, sm_89 and sm_90)");
  }
  TORCH_CHECK(*err == '\0', "int8_scaled_mm: CUTLASS kernel failed: ", err);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace

at::Tensor int8_scaled_mm(const at::Tensor& a, const at::Tensor& b, const at::Tensor& a_scales,
                          const at::Tensor& b_scales, const std::optional<at::Tensor>& bias,
                          at::ScalarType out_dtype, int64_t config) {
  ScaledMmParams p = check_and_pack(a, b, a_scales, b_scales, bias, out_dtype);
  return run_gemm(p, /*azp=*/false, config, a, a_scales, b_scales, out_dtype);
}

at::Tensor int8_scaled_mm_azp(const at::Tensor& a, const at::Tensor& b, const at::Tensor& a_scales,
                              const at::Tensor& b_scales, const at::Tensor& azp_adj, const at::Tensor& azp,
                              const std::optional<at::Tensor>& bias, at::ScalarType out_dtype, int64_t config) {
  ScaledMmParams p = check_and_pack(a, b, a_scales, b_scales, bias, out_dtype);
  check_on(azp_adj, "azp_adj", a);
  check_on(azp, "azp", a);
  TORCH_CHECK(azp_adj.scalar_type() == at::kInt, "azp_adj must be int32 (got ", azp_adj.scalar_type(), ")");
  TORCH_CHECK(azp.scalar_type() == at::kInt, "azp must be int32 (got ", azp.scalar_type(), ")");
  TORCH_CHECK(azp_adj.numel() == p.n && azp_adj.is_contiguous(), "azp_adj must be a contiguous [N] = [", std::to_string(p.n),
              "] vector of column sums of b (got shape ", dims_str(azp_adj.sizes()), ")");
  TORCH_CHECK(azp.numel() == p.m && azp.is_contiguous(), "azp must be a contiguous [M] = [", std::to_string(p.m),
              "] vector of per-token zero points (got shape ", dims_str(azp.sizes()), ")");
  TORCH_CHECK(a_scales.numel() == p.m, "a_scales must be per-token ([M] = [", std::to_string(p.m),
              "]) with asymmetric activations (got shape ", dims_str(a_scales.sizes()), ")");
  p.azp = azp.data_ptr<int32_t>();
  p.azp_adj = azp_adj.data_ptr<int32_t>();
  p.a_per_token = true;
  return run_gemm(p, /*azp=*/true, config, a, a_scales, b_scales, out_dtype);
}

std::vector<std::string> gemm_configs(int64_t device) {
  const int arch = kernel_arch(device_info(static_cast<int>(device)).arch);
  std::vector<std::string> names;
#ifdef VLLM_SQ_WITH_SM90
  if (arch >= 90 && arch < 100) {
    for (int i = 0; i < sm90_num_configs(); ++i) names.emplace_back(sm90_config_name(i));
  }
#endif
#ifdef VLLM_SQ_WITH_SM80
  if (arch >= 80 && arch < 90) {
    for (int i = 0; i < sm80_num_configs(); ++i) names.emplace_back(sm80_config_name(i));
  }
#endif
  (void)arch;
  return names;
}

}  // namespace vllm_sq
