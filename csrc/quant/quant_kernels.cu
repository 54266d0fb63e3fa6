// Activation quantization, alone and fused into the op that produces the activation, so that the activation
// reaches memory once, as int8 (docs/checkpoint_format.md, "Numerics a reader must reproduce").
//
// Math (per row of length K, fp32 throughout, round = __float2int_rn = round half to even):
//   symmetric dynamic:  s = max|v| / 127 (s = 1 for an all-zero row),  q = clamp(round(v / s), -127, 127)
//   symmetric static:   s = given,                                    q = clamp(round(v / s), -127, 127)
//   asymmetric dynamic: lo = min(min v, 0), hi = max(max v, 0), s = (hi - lo) / 255 (1 if 0),
//                       z = round(-128 - lo / s) (in [-128, 127] by construction; clamped anyway),
//                       q = clamp(round(v / s) + z, -128, 127)
// where v is the activation in the model dtype, as the unfused ops would have stored it:
//   plain:            v = x
//   rms_norm:         v = T(T(x * r) * w),          r = rsqrt(mean(x^2) + eps)        (T = round to bf16/fp16)
//   fused_add:        h = T(x + residual) (written back to residual), then rms_norm of h
//   layer_norm:       v = T((x - mean) * rstd * w + b),  rstd = rsqrt(var + eps)  (biased variance, as torch)
//   silu_and_mul:     v = T(T(silu(g)) * u),        x = [g | u] along the last dim
// The divisions are IEEE (no fast-math) so results match a float32 torch reference bit for bit.
//
// One CTA per row. Each pass re-derives v from the row, which stays in L1/L2 (a 4096-wide bf16 row is 8 KB):
// one launch, one write of the int8 row, no intermediate in device memory.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>
#include <cstdint>

#include "ops.h"

namespace vllm_sq {
namespace {

template <class T>
__device__ __forceinline__ float to_f(T v);
template <>
__device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float to_f<__half>(__half v) { return __half2float(v); }

template <class T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }

// Rounds through the model dtype, as storing an intermediate in T would.
template <class T>
__device__ __forceinline__ float round_t(float v) { return to_f<T>(from_f<T>(v)); }

// VEC consecutive elements of T: 16 bytes when VEC == 8.
template <class T, int VEC>
struct alignas(sizeof(T) * VEC) Vec {
  T v[VEC];
};

template <int VEC>
struct alignas(VEC) QVec {
  int8_t v[VEC];
};

enum class Reduce { kMax, kMin, kSum };

template <Reduce R>
__device__ __forceinline__ float combine(float a, float b) {
  if constexpr (R == Reduce::kMax) return fmaxf(a, b);
  if constexpr (R == Reduce::kMin) return fminf(a, b);
  return a + b;
}

template <Reduce R>
__device__ __forceinline__ float identity() {
  if constexpr (R == Reduce::kMax) return -FLT_MAX;
  if constexpr (R == Reduce::kMin) return FLT_MAX;
  return 0.f;
}

// Block-wide reduction (blockDim.x a multiple of 32); every thread gets the result. `smem` holds 32 floats.
template <Reduce R>
__device__ float block_reduce(float v, float* smem) {
  for (int o = 16; o > 0; o >>= 1) v = combine<R>(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
  __syncthreads();  // smem may still be read by a previous reduction
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  v = lane < nwarps ? smem[lane] : identity<R>();
  for (int o = 16; o > 0; o >>= 1) v = combine<R>(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Quantizes one row whose values `value(i, v)` yields VEC at a time (vector index i < nvec).
// static_scale != nullptr: static per-tensor; else dynamic per-token, writing scale_out (and azp_out if ASYM).
template <int VEC, bool ASYM, class ValueFn>
__device__ void quantize_row(ValueFn value, int nvec, int8_t* __restrict__ q_row, const float* static_scale,
                             float* scale_out, int32_t* azp_out, float* smem) {
  float s;
  float z = 0.f;
  if (static_scale != nullptr) {
    s = *static_scale;
  } else {
    float hi = 0.f;  // asymmetric: the range always includes 0, so zero is exact and z lies in [-128, 127]
    float lo = 0.f;
    for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
      float v[VEC];
      value(i, v);
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        if constexpr (ASYM) {
          hi = fmaxf(hi, v[j]);
          lo = fminf(lo, v[j]);
        } else {
          hi = fmaxf(hi, fabsf(v[j]));
        }
      }
    }
    hi = block_reduce<Reduce::kMax>(hi, smem);
    if constexpr (ASYM) {
      lo = block_reduce<Reduce::kMin>(lo, smem);
      s = (hi - lo) / 255.f;
      if (s == 0.f) s = 1.f;
      z = fminf(fmaxf(rintf(-128.f - lo / s), -128.f), 127.f);
    } else {
      s = hi / 127.f;
      if (s == 0.f) s = 1.f;
    }
    if (threadIdx.x == 0) {
      *scale_out = s;
      if constexpr (ASYM) *azp_out = static_cast<int32_t>(z);
    }
  }
  constexpr float kLo = ASYM ? -128.f : -127.f;
  for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
    float v[VEC];
    value(i, v);
    QVec<VEC> out;
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      const float q = rintf(v[j] / s) + z;
      out.v[j] = static_cast<int8_t>(fminf(fmaxf(q, kLo), 127.f));
    }
    reinterpret_cast<QVec<VEC>*>(q_row)[i] = out;
  }
}

template <class T, int VEC>
__device__ __forceinline__ void load_vec(const T* row, int i, float (&v)[VEC]) {
  const Vec<T, VEC> x = reinterpret_cast<const Vec<T, VEC>*>(row)[i];
#pragma unroll
  for (int j = 0; j < VEC; ++j) v[j] = to_f<T>(x.v[j]);
}

// ------------------------------------------------------------------------------------------------ kernels

template <class T, int VEC, bool ASYM>
__global__ void quant_kernel(const T* __restrict__ x, int8_t* __restrict__ q, int k, const float* static_scale,
                             float* scales, int32_t* azp) {
  __shared__ float smem[32];
  const int64_t row = blockIdx.x;
  const T* x_row = x + row * k;
  auto value = [&](int i, float(&v)[VEC]) { load_vec<T, VEC>(x_row, i, v); };
  quantize_row<VEC, ASYM>(value, k / VEC, q + row * k, static_scale, scales ? scales + row : nullptr,
                          azp ? azp + row : nullptr, smem);
}

// ADD: residual += x first (h = T(x + residual) written back), then normalize h.
template <class T, int VEC, bool ADD>
__global__ void rms_norm_quant_kernel(const T* __restrict__ x, T* __restrict__ residual, const T* __restrict__ w,
                                      float eps, int8_t* __restrict__ q, int k, const float* static_scale,
                                      float* scales) {
  __shared__ float smem[32];
  const int64_t row = blockIdx.x;
  const int nvec = k / VEC;
  const T* x_row = x + row * k;
  T* res_row = ADD ? residual + row * k : nullptr;
  const T* h_row = ADD ? res_row : x_row;

  float sumsq = 0.f;
  for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
    float h[VEC];
    load_vec<T, VEC>(x_row, i, h);
    if constexpr (ADD) {
      float r[VEC];
      load_vec<T, VEC>(res_row, i, r);
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        out.v[j] = from_f<T>(h[j] + r[j]);
        h[j] = to_f<T>(out.v[j]);
      }
      reinterpret_cast<Vec<T, VEC>*>(res_row)[i] = out;  // re-read below by this same thread
    }
#pragma unroll
    for (int j = 0; j < VEC; ++j) sumsq += h[j] * h[j];
  }
  sumsq = block_reduce<Reduce::kSum>(sumsq, smem);
  const float r = rsqrtf(sumsq / static_cast<float>(k) + eps);

  auto value = [&](int i, float(&v)[VEC]) {
    float wv[VEC];
    load_vec<T, VEC>(h_row, i, v);
    load_vec<T, VEC>(w, i, wv);
#pragma unroll
    for (int j = 0; j < VEC; ++j) v[j] = round_t<T>(round_t<T>(v[j] * r) * wv[j]);
  };
  quantize_row<VEC, false>(value, nvec, q + row * k, static_scale, scales + row, nullptr, smem);
  if (static_scale != nullptr && row == 0 && threadIdx.x == 0) *scales = *static_scale;
}

// LayerNorm (OPT-style, with bias): v = T((x - mean) * rstd * w + b), mean and variance in fp32 (two passes).
template <class T, int VEC>
__global__ void layer_norm_quant_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                        float eps, int8_t* __restrict__ q, int k, const float* static_scale,
                                        float* scales) {
  __shared__ float smem[32];
  const int64_t row = blockIdx.x;
  const int nvec = k / VEC;
  const T* x_row = x + row * k;
  float sum = 0.f;
  for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
    float v[VEC];
    load_vec<T, VEC>(x_row, i, v);
#pragma unroll
    for (int j = 0; j < VEC; ++j) sum += v[j];
  }
  const float mean = block_reduce<Reduce::kSum>(sum, smem) / static_cast<float>(k);
  float sq = 0.f;
  for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
    float v[VEC];
    load_vec<T, VEC>(x_row, i, v);
#pragma unroll
    for (int j = 0; j < VEC; ++j) sq += (v[j] - mean) * (v[j] - mean);
  }
  const float rstd = rsqrtf(block_reduce<Reduce::kSum>(sq, smem) / static_cast<float>(k) + eps);

  auto value = [&](int i, float(&v)[VEC]) {
    float wv[VEC], bv[VEC];
    load_vec<T, VEC>(x_row, i, v);
    load_vec<T, VEC>(w, i, wv);
    load_vec<T, VEC>(b, i, bv);
#pragma unroll
    for (int j = 0; j < VEC; ++j) v[j] = round_t<T>((v[j] - mean) * rstd * wv[j] + bv[j]);
  };
  quantize_row<VEC, false>(value, nvec, q + row * k, static_scale, scales + row, nullptr, smem);
  if (static_scale != nullptr && row == 0 && threadIdx.x == 0) *scales = *static_scale;
}

template <class T, int VEC>
__global__ void silu_and_mul_quant_kernel(const T* __restrict__ x, int8_t* __restrict__ q, int d,
                                          const float* static_scale, float* scales) {
  __shared__ float smem[32];
  const int64_t row = blockIdx.x;
  const T* gate = x + row * 2 * d;
  const T* up = gate + d;
  auto value = [&](int i, float(&v)[VEC]) {
    float u[VEC];
    load_vec<T, VEC>(gate, i, v);
    load_vec<T, VEC>(up, i, u);
#pragma unroll
    for (int j = 0; j < VEC; ++j) v[j] = round_t<T>(round_t<T>(v[j] / (1.f + expf(-v[j]))) * u[j]);
  };
  quantize_row<VEC, false>(value, d / VEC, q + row * d, static_scale, scales + row, nullptr, smem);
  if (static_scale != nullptr && row == 0 && threadIdx.x == 0) *scales = *static_scale;
}

// ------------------------------------------------------------------------------------------------ host side

// Enough threads for one VEC-wide vector each up to 1024; fewer rows get wider CTAs (decode: M is small).
int threads_for(int64_t rows, int nvec) {
  const int cap = rows >= 1024 ? 256 : 1024;
  int t = ((nvec + 31) / 32) * 32;
  return t < 32 ? 32 : (t > cap ? cap : t);
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

void check_activation(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.is_cuda(), name, " must be a CUDA tensor (got ", x.device().str(), ")");
  TORCH_CHECK(x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf, name,
              " must be bfloat16 or float16 (got ", x.scalar_type(), ")");
  TORCH_CHECK(x.dim() == 2, name, " must be 2-D [M, K] (got shape ", dims_str(x.sizes()), ")");
  TORCH_CHECK(x.is_contiguous(), name, " must be contiguous");
}

const float* check_static_scale(const std::optional<at::Tensor>& scale, const at::Tensor& x) {
  if (!scale.has_value()) return nullptr;
  const at::Tensor& s = *scale;
  TORCH_CHECK(s.device() == x.device(), "scale must be on ", x.device().str(), " (got ", s.device().str(), ")");
  TORCH_CHECK(s.scalar_type() == at::kFloat, "scale must be float32 (got ", s.scalar_type(), ")");
  TORCH_CHECK(s.numel() == 1, "scale must hold one element (static per-tensor; got shape ", dims_str(s.sizes()), ")");
  return s.data_ptr<float>();
}

// Runs the statement list with `T` the CUDA type of `dtype` and `VEC` 8 when every pointer and row length allows
// 16-byte accesses, else 1.
#define VLLM_SQ_DISPATCH_VEC(dtype, vec_ok, ...)                  \
  do {                                                             \
    if ((dtype) == at::kBFloat16) {                                \
      using T = __nv_bfloat16;                                     \
      if (vec_ok) {                                                \
        constexpr int VEC = 8;                                     \
        __VA_ARGS__                                                \
      } else {                                                     \
        constexpr int VEC = 1;                                     \
        __VA_ARGS__                                                \
      }                                                            \
    } else {                                                       \
      using T = __half;                                            \
      if (vec_ok) {                                                \
        constexpr int VEC = 8;                                     \
        __VA_ARGS__                                                \
      } else {                                                     \
        constexpr int VEC = 1;                                     \
        __VA_ARGS__                                                \
      }                                                            \
    }                                                              \
  } while (0)

}  // namespace

std::tuple<at::Tensor, at::Tensor> per_token_quant(const at::Tensor& x) {
  check_activation(x, "x");
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t m = x.size(0), k = x.size(1);
  auto q = at::empty({m, k}, x.options().dtype(at::kChar));
  auto scales = at::empty({m, 1}, x.options().dtype(at::kFloat));
  if (m == 0 || k == 0) return {q, scales.fill_(1.f)};
  const bool vec_ok = k % 8 == 0 && aligned16(x.data_ptr());
  auto stream = c10::cuda::getCurrentCUDAStream();
  VLLM_SQ_DISPATCH_VEC(x.scalar_type(), vec_ok, {
    quant_kernel<T, VEC, false><<<m, threads_for(m, k / VEC), 0, stream>>>(
        static_cast<const T*>(x.data_ptr()), q.data_ptr<int8_t>(), k, nullptr, scales.data_ptr<float>(), nullptr);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {q, scales};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> per_token_quant_azp(const at::Tensor& x) {
  check_activation(x, "x");
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t m = x.size(0), k = x.size(1);
  auto q = at::empty({m, k}, x.options().dtype(at::kChar));
  auto scales = at::empty({m, 1}, x.options().dtype(at::kFloat));
  auto azp = at::empty({m}, x.options().dtype(at::kInt));
  if (m == 0 || k == 0) return {q, scales.fill_(1.f), azp.fill_(0)};
  const bool vec_ok = k % 8 == 0 && aligned16(x.data_ptr());
  auto stream = c10::cuda::getCurrentCUDAStream();
  VLLM_SQ_DISPATCH_VEC(x.scalar_type(), vec_ok, {
    quant_kernel<T, VEC, true><<<m, threads_for(m, k / VEC), 0, stream>>>(
        static_cast<const T*>(x.data_ptr()), q.data_ptr<int8_t>(), k, nullptr, scales.data_ptr<float>(),
        azp.data_ptr<int32_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {q, scales, azp};
}

at::Tensor static_quant(const at::Tensor& x, const at::Tensor& scale) {
  check_activation(x, "x");
  const float* s = check_static_scale(scale, x);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t m = x.size(0), k = x.size(1);
  auto q = at::empty({m, k}, x.options().dtype(at::kChar));
  if (m == 0 || k == 0) return q;
  const bool vec_ok = k % 8 == 0 && aligned16(x.data_ptr());
  auto stream = c10::cuda::getCurrentCUDAStream();
  VLLM_SQ_DISPATCH_VEC(x.scalar_type(), vec_ok, {
    quant_kernel<T, VEC, false><<<m, threads_for(m, k / VEC), 0, stream>>>(
        static_cast<const T*>(x.data_ptr()), q.data_ptr<int8_t>(), k, s, nullptr, nullptr);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return q;
}

namespace {

std::tuple<at::Tensor, at::Tensor> rms_norm_quant_impl(const at::Tensor& x, at::Tensor* residual,
                                                       const at::Tensor& weight, double eps,
                                                       const std::optional<at::Tensor>& scale) {
  check_activation(x, "x");
  const int64_t m = x.size(0), k = x.size(1);
  if (residual != nullptr) {
    check_activation(*residual, "residual");
    TORCH_CHECK(residual->sizes() == x.sizes(), "residual must have the shape of x ", dims_str(x.sizes()), " (got ",
                dims_str(residual->sizes()), ")");
    TORCH_CHECK(residual->scalar_type() == x.scalar_type(), "residual must have the dtype of x (",
                x.scalar_type(), "; got ", residual->scalar_type(), ")");
  }
  TORCH_CHECK(weight.device() == x.device(), "weight must be on ", x.device().str());
  TORCH_CHECK(weight.scalar_type() == x.scalar_type(), "weight must have the dtype of x (", x.scalar_type(),
              "; got ", weight.scalar_type(), ")");
  TORCH_CHECK(weight.dim() == 1 && weight.size(0) == k && weight.is_contiguous(),
              "weight must be a contiguous [K] = [", std::to_string(k), "] vector (got shape ", dims_str(weight.sizes()), ")");
  TORCH_CHECK(eps >= 0, "eps must be >= 0 (got ", std::to_string(eps), ")");
  const float* s = check_static_scale(scale, x);
  const c10::cuda::CUDAGuard guard(x.device());
  auto q = at::empty({m, k}, x.options().dtype(at::kChar));
  auto scales = at::empty({s ? 1 : m, 1}, x.options().dtype(at::kFloat));
  if (m == 0 || k == 0) return {q, scales.fill_(1.f)};
  const bool vec_ok = k % 8 == 0 && aligned16(x.data_ptr()) && aligned16(weight.data_ptr()) &&
                      (residual == nullptr || aligned16(residual->data_ptr()));
  auto stream = c10::cuda::getCurrentCUDAStream();
  VLLM_SQ_DISPATCH_VEC(x.scalar_type(), vec_ok, {
    const T* xp = static_cast<const T*>(x.data_ptr());
    const T* wp = static_cast<const T*>(weight.data_ptr());
    const int threads = threads_for(m, k / VEC);
    if (residual != nullptr) {
      rms_norm_quant_kernel<T, VEC, true><<<m, threads, 0, stream>>>(
          xp, static_cast<T*>(residual->data_ptr()), wp, static_cast<float>(eps), q.data_ptr<int8_t>(), k, s,
          scales.data_ptr<float>());
    } else {
      rms_norm_quant_kernel<T, VEC, false><<<m, threads, 0, stream>>>(
          xp, nullptr, wp, static_cast<float>(eps), q.data_ptr<int8_t>(), k, s, scales.data_ptr<float>());
    }
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {q, scales};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> rms_norm_quant(const at::Tensor& x, const at::Tensor& weight, double eps,
                                                  const std::optional<at::Tensor>& scale) {
  return rms_norm_quant_impl(x, nullptr, weight, eps, scale);
}

std::tuple<at::Tensor, at::Tensor> fused_add_rms_norm_quant(const at::Tensor& x, at::Tensor& residual,
                                                            const at::Tensor& weight, double eps,
                                                            const std::optional<at::Tensor>& scale) {
  return rms_norm_quant_impl(x, &residual, weight, eps, scale);
}

std::tuple<at::Tensor, at::Tensor> layer_norm_quant(const at::Tensor& x, const at::Tensor& weight,
                                                    const at::Tensor& bias, double eps,
                                                    const std::optional<at::Tensor>& scale) {
  check_activation(x, "x");
  const int64_t m = x.size(0), k = x.size(1);
  for (const auto& [t, name] : {std::pair<const at::Tensor&, const char*>{weight, "weight"}, {bias, "bias"}}) {
    TORCH_CHECK(t.device() == x.device(), name, " must be on ", x.device().str());
    TORCH_CHECK(t.scalar_type() == x.scalar_type(), name, " must have the dtype of x (", x.scalar_type(), "; got ",
                t.scalar_type(), ")");
    TORCH_CHECK(t.dim() == 1 && t.size(0) == k && t.is_contiguous(), name, " must be a contiguous [K] = [", std::to_string(k),
                "] vector (got shape ", dims_str(t.sizes()), ")");
  }
  TORCH_CHECK(eps >= 0, "eps must be >= 0 (got ", std::to_string(eps), ")");
  const float* s = check_static_scale(scale, x);
  const c10::cuda::CUDAGuard guard(x.device());
  auto q = at::empty({m, k}, x.options().dtype(at::kChar));
  auto scales = at::empty({s ? 1 : m, 1}, x.options().dtype(at::kFloat));
  if (m == 0 || k == 0) return {q, scales.fill_(1.f)};
  const bool vec_ok = k % 8 == 0 && aligned16(x.data_ptr()) && aligned16(weight.data_ptr()) &&
                      aligned16(bias.data_ptr());
  auto stream = c10::cuda::getCurrentCUDAStream();
  VLLM_SQ_DISPATCH_VEC(x.scalar_type(), vec_ok, {
    layer_norm_quant_kernel<T, VEC><<<m, threads_for(m, k / VEC), 0, stream>>>(
        static_cast<const T*>(x.data_ptr()), static_cast<const T*>(weight.data_ptr()),
        static_cast<const T*>(bias.data_ptr()), static_cast<float>(eps), q.data_ptr<int8_t>(), k, s,
        scales.data_ptr<float>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {q, scales};
}

std::tuple<at::Tensor, at::Tensor> silu_and_mul_quant(const at::Tensor& x, const std::optional<at::Tensor>& scale) {
  check_activation(x, "x");
  const int64_t m = x.size(0);
  TORCH_CHECK(x.size(1) % 2 == 0, "x must be [M, 2*D] (gate then up); its last dim ", std::to_string(x.size(1)), " is odd");
  const int64_t d = x.size(1) / 2;
  const float* s = check_static_scale(scale, x);
  const c10::cuda::CUDAGuard guard(x.device());
  auto q = at::empty({m, d}, x.options().dtype(at::kChar));
  auto scales = at::empty({s ? 1 : m, 1}, x.options().dtype(at::kFloat));
  if (m == 0 || d == 0) return {q, scales.fill_(1.f)};
  const bool vec_ok = d % 8 == 0 && aligned16(x.data_ptr());
  auto stream = c10::cuda::getCurrentCUDAStream();
  VLLM_SQ_DISPATCH_VEC(x.scalar_type(), vec_ok, {
    silu_and_mul_quant_kernel<T, VEC><<<m, threads_for(m, d / VEC), 0, stream>>>(
        static_cast<const T*>(x.data_ptr()), q.data_ptr<int8_t>(), d, s, scales.data_ptr<float>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {q, scales};
}

}  // namespace vllm_sq
