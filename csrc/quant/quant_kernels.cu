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
// The divisions round as IEEE division does (no fast-math), so results match a float32 torch reference bit for
// bit; v / s takes a reciprocal computed once per row and two exact corrections (Divisor, below), SiLU's division
// the fast path of '/' without its range check (silu_fast), and the codes are rounded by an FADD (Int8Rounder).
// Every kernel lets the GEMM launched after it start streaming its weight at once (pdl.cuh).
//
// One CTA per row. Rows of up to 8 * 1024 VEC-wide vectors are read from global memory once: each thread keeps
// NV (1, 2, 4 or 8; the host picks the smallest that fits in 1024 threads, or in 256 when there are many rows:
// max_threads below) vectors of the row, or of v already rounded to T, in registers through the reductions and
// the quantization. Longer rows take the older multi-pass path, which re-reads (and re-derives) the row in each
// pass. One launch, one write of the int8 row.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <type_traits>

#include "device_info.h"
#include "ops.h"
#include "pdl.cuh"
#include "pdl_registry.h"

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

// round_t of every element, two per conversion instruction where VEC is even (the same rounding: cvt.rn).
template <class T, int VEC>
__device__ __forceinline__ void round_t_all(float (&v)[VEC]) {
  if constexpr (VEC % 2 == 0) {
#pragma unroll
    for (int j = 0; j < VEC; j += 2) {
      if constexpr (std::is_same_v<T, __nv_bfloat16>) {
        const __nv_bfloat162 p = __floats2bfloat162_rn(v[j], v[j + 1]);
        v[j] = __low2float(p), v[j + 1] = __high2float(p);
      } else {
        const __half2 p = __floats2half2_rn(v[j], v[j + 1]);
        v[j] = __low2float(p), v[j + 1] = __high2float(p);
      }
    }
  } else {
#pragma unroll
    for (int j = 0; j < VEC; ++j) v[j] = round_t<T>(v[j]);
  }
}

// VEC consecutive elements of T: 16 bytes when VEC == 8.
template <class T, int VEC>
struct alignas(sizeof(T) * VEC) Vec {
  T v[VEC];
};

template <int VEC>
struct alignas(VEC) QVec {
  int8_t v[VEC];
};

// x / s exactly as IEEE division rounds it, for many x and one s, from the reciprocal taken once: q0 = x * (1/s)
// is within two ulps; one Newton step (remainder by fma) brings it within one ulp, where the remainder
// x - q1 * s is exact and a second step rounds correctly (Markstein's theorem: 1/s correctly rounded, q1 within
// one ulp). A multiply and four fma per element instead of a full division (reciprocal, refinement and the
// slow-path check). Valid while s, 1/s and the remainders are normal numbers: s in [2^-90, 2^90]; any other s
// (never a dynamic scale of bf16/fp16 data above 1e-25) takes the division. Checked bit for bit against the
// division: tests/kernels/test_quant_division.py (exact rationals) and the GPU tests (fused vs unfused ops).
// An infinite x also needs the division (the corrections would make inf - inf = NaN of it): callers check.
struct Divisor {
  float s, inv;
  bool fast;
  __device__ explicit Divisor(float scale) : s(scale), inv(1.f / scale), fast(scale >= 0x1p-90f && scale <= 0x1p90f) {}
  __device__ __forceinline__ float divide(float x) const { return fast && fabsf(x) <= FLT_MAX ? quotient(x) : x / s; }
  // the reciprocal path alone (fast must hold, x finite or NaN)
  __device__ __forceinline__ float quotient(float x) const {
    const float q0 = __fmul_rn(x, inv);
    const float q1 = __fmaf_rn(__fmaf_rn(-q0, s, x), inv, q0);
    return __fmaf_rn(__fmaf_rn(-q1, s, x), inv, q1);
  }
};

// clamp(round(x) + z, lo, 127) as int8, for an integer-valued z and lo (round half to even). x is clamped to
// [lo - z, 127 - z] first, which gives the same code (rounding is monotone and the bounds are integers; a NaN x
// becomes lo - z, as fmaxf drops it, and lo as before), and then rounded by adding 1.5 * 2^23, which leaves
// round(x) in the low mantissa bits (exact for |x| < 2^22): one FADD instead of FRND and F2I, which run on the
// conversion pipe at an eighth of the FADD rate.
struct Int8Rounder {
  float lo, hi;
  int z;
  __device__ Int8Rounder(float zero_point, float lowest)
      : lo(lowest - zero_point), hi(127.f - zero_point), z(static_cast<int>(zero_point)) {}
  __device__ __forceinline__ int8_t operator()(float x) const {
    const float t = __fadd_rn(fminf(fmaxf(x, lo), hi), 0x1.8p23f);  // bits 0x4B400000 + round(x)
    return static_cast<int8_t>(__float_as_int(t) + z);                // 0x4B400000 is 0 mod 256
  }
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
  const Int8Rounder to_int8(z, ASYM ? -128.f : -127.f);
  const Divisor div(s);
  for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
    float v[VEC];
    value(i, v);
    QVec<VEC> out;
#pragma unroll
    for (int j = 0; j < VEC; ++j) out.v[j] = to_int8(div.divide(v[j]));
    reinterpret_cast<QVec<VEC>*>(q_row)[i] = out;
  }
}

template <class T, int VEC>
__device__ __forceinline__ void load_vec(const T* row, int i, float (&v)[VEC]) {
  const Vec<T, VEC> x = reinterpret_cast<const Vec<T, VEC>*>(row)[i];
#pragma unroll
  for (int j = 0; j < VEC; ++j) v[j] = to_f<T>(x.v[j]);
}

// ------------------------------------------------------------------------------------- register-resident rows
// A row of nvec vectors held by the CTA: this thread's vector n is vector index threadIdx.x + n * blockDim.x,
// present while that index is < nvec (the host makes nvec <= NV * blockDim). Values are stored in T: the loaded
// input, or v after its final rounding to T, so the register copy is exact.

template <class T>
__device__ __forceinline__ uint32_t to_bits(T v);
template <>
__device__ __forceinline__ uint32_t to_bits<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }
template <>
__device__ __forceinline__ uint32_t to_bits<__half>(__half v) { return __half_as_ushort(v); }

template <class T>
__device__ __forceinline__ float bits_to_f(uint32_t b);  // b < 2^16
template <>
__device__ __forceinline__ float bits_to_f<__nv_bfloat16>(uint32_t b) { return __uint_as_float(b << 16); }
template <>
__device__ __forceinline__ float bits_to_f<__half>(uint32_t b) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(b)));
}

// VEC values of T packed two per 32-bit word: held as 16-bit scalars, each value would take a register of its own
// (64 registers for NV = 8, VEC = 8, and spills under the 64-register cap of 1024-thread blocks).
template <class T, int VEC>
struct RegVec {
  static_assert(VEC == 1 || VEC == 8, "VEC is 8 (16-byte accesses) or 1");
  static constexpr int kWords = (VEC + 1) / 2;
  uint32_t w[kWords];

  __device__ __forceinline__ float get(int j) const {
    const uint32_t word = w[j >> 1];
    return bits_to_f<T>((j & 1) ? (word >> 16) : (word & 0xffffu));
  }
  // this = T(f[j]) for every j.
  __device__ __forceinline__ void set(const float (&f)[VEC]) {
#pragma unroll
    for (int k = 0; k < kWords; ++k) {
      const uint32_t lo = to_bits<T>(from_f<T>(f[2 * k]));
      const uint32_t hi = 2 * k + 1 < VEC ? to_bits<T>(from_f<T>(f[2 * k + 1])) : 0u;
      w[k] = lo | (hi << 16);
    }
  }
  __device__ __forceinline__ void load(const T* __restrict__ row, int i) {
    if constexpr (VEC == 8) {
      const uint4 u = reinterpret_cast<const uint4*>(row)[i];
      w[0] = u.x, w[1] = u.y, w[2] = u.z, w[3] = u.w;
    } else {
      w[0] = to_bits<T>(row[i]);
    }
  }
  __device__ __forceinline__ void store(T* row, int i) const {
    if constexpr (VEC == 8) {
      reinterpret_cast<uint4*>(row)[i] = make_uint4(w[0], w[1], w[2], w[3]);
    } else {
      reinterpret_cast<uint16_t*>(row)[i] = static_cast<uint16_t>(w[0]);
    }
  }
};

__device__ __forceinline__ int reg_index(int n) { return threadIdx.x + n * blockDim.x; }

template <class T, int VEC, int NV>
__device__ __forceinline__ void load_row(const T* __restrict__ row, int nvec, RegVec<T, VEC> (&v)[NV]) {
#pragma unroll
  for (int n = 0; n < NV; ++n) {
    if (reg_index(n) < nvec) v[n].load(row, reg_index(n));
  }
}

// quantize_row for a row held in registers: the same math, no re-read.
template <class T, int VEC, int NV, bool ASYM>
__device__ __forceinline__ void quantize_regs(const RegVec<T, VEC> (&v)[NV], int nvec, int8_t* __restrict__ q_row,
                                              const float* static_scale, float* scale_out, int32_t* azp_out,
                                              float* smem) {
  float s;
  float z = 0.f;
  bool finite = true;  // a dynamic scale is infinite, and takes the division, when any |v| is
  if (static_scale != nullptr) {
    s = *static_scale;
    float hi = 0.f;
#pragma unroll
    for (int n = 0; n < NV; ++n) {
      if (reg_index(n) < nvec) {
#pragma unroll
        for (int j = 0; j < VEC; ++j) hi = fmaxf(hi, fabsf(v[n].get(j)));
      }
    }
    finite = hi <= FLT_MAX;
  } else {
    float hi = 0.f;
    float lo = 0.f;
#pragma unroll
    for (int n = 0; n < NV; ++n) {
      if (reg_index(n) < nvec) {
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          const float x = v[n].get(j);
          if constexpr (ASYM) {
            hi = fmaxf(hi, x);
            lo = fminf(lo, x);
          } else {
            hi = fmaxf(hi, fabsf(x));
          }
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
  const Int8Rounder to_int8(z, ASYM ? -128.f : -127.f);
  const Divisor div(s);
  auto store = [&](auto divide) {
#pragma unroll
    for (int n = 0; n < NV; ++n) {
      if (reg_index(n) < nvec) {
        QVec<VEC> out;
#pragma unroll
        for (int j = 0; j < VEC; ++j) out.v[j] = to_int8(divide(v[n].get(j)));
        reinterpret_cast<QVec<VEC>*>(q_row)[reg_index(n)] = out;
      }
    }
  };
  // one loop per path, so the common one carries no per-element branch
  if (div.fast && finite) {
    store([&](float x) { return div.quotient(x); });
  } else {
    store([&](float x) { return x / s; });
  }
}

// ------------------------------------------------------------------------------------------------ kernels
// NV > 0: the row is read once into registers (nvec <= NV * blockDim). NV == 0: the multi-pass path, any length.

template <class T, int VEC, int NV, bool ASYM>
__global__ void __launch_bounds__(1024, 1) quant_kernel(const T* __restrict__ x, int8_t* __restrict__ q, int k,
                                                     const float* static_scale, float* scales, int32_t* azp) {
  __shared__ float smem[32];
  pdl::wait_for_producer();  // the kernel before may still be finishing (launch_quant); nothing was read yet
  pdl::launch_dependents();  // only now: a dependent may read its weight early once all before us is done
  const int64_t row = blockIdx.x;
  const T* x_row = x + row * k;
  float* scale_out = scales ? scales + row : nullptr;
  int32_t* azp_out = azp ? azp + row : nullptr;
  if constexpr (NV > 0) {
    RegVec<T, VEC> v[NV];
    load_row<T, VEC, NV>(x_row, k / VEC, v);
    quantize_regs<T, VEC, NV, ASYM>(v, k / VEC, q + row * k, static_scale, scale_out, azp_out, smem);
  } else {
    auto value = [&](int i, float(&v)[VEC]) { load_vec<T, VEC>(x_row, i, v); };
    quantize_row<VEC, ASYM>(value, k / VEC, q + row * k, static_scale, scale_out, azp_out, smem);
  }
}

// ADD: residual += x first (h = T(x + residual) written back), then normalize h.
template <class T, int VEC, int NV, bool ADD>
__global__ void __launch_bounds__(1024, 1)
    rms_norm_quant_kernel(const T* __restrict__ x, T* __restrict__ residual, const T* __restrict__ w, float eps,
                          int8_t* __restrict__ q, int k, const float* static_scale, float* scales) {
  __shared__ float smem[32];
  pdl::wait_for_producer();  // the kernel before may still be finishing (launch_quant); nothing was read yet
  pdl::launch_dependents();  // only now: a dependent may read its weight early once all before us is done
  const int64_t row = blockIdx.x;
  const int nvec = k / VEC;
  const T* x_row = x + row * k;
  T* res_row = ADD ? residual + row * k : nullptr;

  if constexpr (NV > 0) {
    RegVec<T, VEC> h[NV];  // h, then v
#pragma unroll
    for (int n = 0; n < NV; ++n) {
      const int i = reg_index(n);
      if (i < nvec) {
        h[n].load(x_row, i);
        if constexpr (ADD) {
          RegVec<T, VEC> r;
          r.load(res_row, i);
          float sum[VEC];
#pragma unroll
          for (int j = 0; j < VEC; ++j) sum[j] = h[n].get(j) + r.get(j);
          h[n].set(sum);
        }
      }
    }
    float sumsq = 0.f;
#pragma unroll
    for (int n = 0; n < NV; ++n) {
      const int i = reg_index(n);
      if (i < nvec) {
        if constexpr (ADD) h[n].store(res_row, i);
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          const float hj = h[n].get(j);
          sumsq += hj * hj;
        }
      }
    }
    sumsq = block_reduce<Reduce::kSum>(sumsq, smem);
    const float r = rsqrtf(sumsq / static_cast<float>(k) + eps);
#pragma unroll
    for (int n = 0; n < NV; ++n) {
      const int i = reg_index(n);
      if (i < nvec) {
        RegVec<T, VEC> wv;
        wv.load(w, i);
        float out[VEC];
#pragma unroll
        for (int j = 0; j < VEC; ++j) out[j] = h[n].get(j) * r;
        round_t_all<T>(out);
#pragma unroll
        for (int j = 0; j < VEC; ++j) out[j] *= wv.get(j);
        h[n].set(out);
      }
    }
    quantize_regs<T, VEC, NV, false>(h, nvec, q + row * k, static_scale, scales + row, nullptr, smem);
  } else {
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
      for (int j = 0; j < VEC; ++j) v[j] *= r;
      round_t_all<T>(v);
#pragma unroll
      for (int j = 0; j < VEC; ++j) v[j] *= wv[j];
      round_t_all<T>(v);
    };
    quantize_row<VEC, false>(value, nvec, q + row * k, static_scale, scales + row, nullptr, smem);
  }
  if (static_scale != nullptr && row == 0 && threadIdx.x == 0) *scales = *static_scale;
}

// LayerNorm (OPT-style, with bias): v = T((x - mean) * rstd * w + b), mean and variance in fp32 (two passes, over
// the registers when NV > 0).
template <class T, int VEC, int NV>
__global__ void __launch_bounds__(1024, 1)
    layer_norm_quant_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, float eps,
                            int8_t* __restrict__ q, int k, const float* static_scale, float* scales) {
  __shared__ float smem[32];
  pdl::wait_for_producer();  // the kernel before may still be finishing (launch_quant); nothing was read yet
  pdl::launch_dependents();  // only now: a dependent may read its weight early once all before us is done
  const int64_t row = blockIdx.x;
  const int nvec = k / VEC;
  const T* x_row = x + row * k;
  if constexpr (NV > 0) {
    RegVec<T, VEC> v[NV];  // x, then v
    load_row<T, VEC, NV>(x_row, nvec, v);
    float sum = 0.f;
#pragma unroll
    for (int n = 0; n < NV; ++n) {
      if (reg_index(n) < nvec) {
#pragma unroll
        for (int j = 0; j < VEC; ++j) sum += v[n].get(j);
      }
    }
    const float mean = block_reduce<Reduce::kSum>(sum, smem) / static_cast<float>(k);
    float sq = 0.f;
#pragma unroll
    for (int n = 0; n < NV; ++n) {
      if (reg_index(n) < nvec) {
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          const float xj = v[n].get(j);
          sq += (xj - mean) * (xj - mean);
        }
      }
    }
    const float rstd = rsqrtf(block_reduce<Reduce::kSum>(sq, smem) / static_cast<float>(k) + eps);
#pragma unroll
    for (int n = 0; n < NV; ++n) {
      const int i = reg_index(n);
      if (i < nvec) {
        RegVec<T, VEC> wv, bv;
        wv.load(w, i);
        bv.load(b, i);
        float out[VEC];
#pragma unroll
        for (int j = 0; j < VEC; ++j) out[j] = (v[n].get(j) - mean) * rstd * wv.get(j) + bv.get(j);
        v[n].set(out);
      }
    }
    quantize_regs<T, VEC, NV, false>(v, nvec, q + row * k, static_scale, scales + row, nullptr, smem);
  } else {
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
  }
  if (static_scale != nullptr && row == 0 && threadIdx.x == 0) *scales = *static_scale;
}

// SiLU as the unfused op computes it, g / (1 + expf(-g)) with an IEEE division, for |g| <= kSiluFastMax: the
// division's own fast path (reciprocal, one Newton step, a remainder correction: the sequence nvcc emits for '/'),
// without its range check (FCHK) and the branch to its slow path, which are needed only where the reciprocal or the
// remainder leave the normal range. Here d = 1 + expf(-g) lies in [1, 1 + e^87] (below 2^126). Every bf16 and fp16
// value of g is checked against the accurate expression: tests/kernels/test_quant.py.
constexpr float kSiluFastMax = 87.f;
constexpr int kManyRowsRegs = 80;  // register cap of silu_and_mul_quant_kernel's 256-thread instances (below)
constexpr int kTwoPerSmRegs = 40;  // its cap when two CTAs of up to 819 threads share an SM (silu_and_mul_quant)

// __maxnreg__ needs nvcc 12.4; older compilers (the build accepts 12.0) leave the cap to ptxas: correct, and as
// fast as before run 13b (three CTAs per SM instead of four on 7B down_proj).
#if defined(__CUDACC_VER_MAJOR__) && (__CUDACC_VER_MAJOR__ > 12 || (__CUDACC_VER_MAJOR__ == 12 && __CUDACC_VER_MINOR__ >= 4))
#define VLLM_SQ_MAXNREG(n) __maxnreg__(n)
#else
#define VLLM_SQ_MAXNREG(n)
#endif

__device__ __forceinline__ float silu_fast(float g) {
  const float d = 1.f + expf(-g);
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(d));
  r = __fmaf_rn(r, __fmaf_rn(-d, r, 1.f), r);
  const float q = __fmul_rn(g, r);
  return __fmaf_rn(__fmaf_rn(-d, q, g), r, q);
}

// v[j] = T(silu(v[j])) * u[j] (the product not yet rounded). A vector with any |g| above kSiluFastMax (an infinity
// included) takes the accurate expression, a branch that activations hardly ever take; a NaN gives NaN either way.
template <class T, int VEC>
__device__ __forceinline__ void silu_mul(float (&v)[VEC], const float (&u)[VEC]) {
  float gmax = 0.f;
#pragma unroll
  for (int j = 0; j < VEC; ++j) gmax = fmaxf(gmax, fabsf(v[j]));
  if (gmax <= kSiluFastMax) {
#pragma unroll
    for (int j = 0; j < VEC; ++j) v[j] = silu_fast(v[j]);
  } else {
#pragma unroll
    for (int j = 0; j < VEC; ++j) v[j] = v[j] / (1.f + expf(-v[j]));
  }
  round_t_all<T>(v);
#pragma unroll
  for (int j = 0; j < VEC; ++j) v[j] *= u[j];
}

// NV > 0: gate and up are loaded whole before any arithmetic (2 * NV loads in flight per thread), so the CTA waits
// for memory once. MAX_THREADS bounds the block: 1024 for few rows (64 registers), 256 for many, with room for both
// halves of the row in registers. There the cap sets how many CTAs an SM holds: uncapped, NV = 8 took 96 registers
// and an SM held three 192-thread CTAs (7B down_proj, M = 16384: DRAM 67% busy, issue slots 65%; ncu, run 13).
// Capped at 80 (four CTAs; 24 bytes of spill) it took 362 us there instead of 395, and 459 instead of 564 on 13B;
// at 72 (spilling 72 bytes) 384 and 502 (gemm.py, runs 13a-13c).
template <class T, int VEC, int NV, int MAX_THREADS, int REGS = (MAX_THREADS == 256 ? kManyRowsRegs : 64)>
__global__ void __launch_bounds__(MAX_THREADS) VLLM_SQ_MAXNREG(REGS)
    silu_and_mul_quant_kernel(const T* __restrict__ x, int8_t* __restrict__ q, int d, const float* static_scale,
                              float* scales) {
  __shared__ float smem[32];
  pdl::wait_for_producer();  // the kernel before may still be finishing (launch_quant); nothing was read yet
  pdl::launch_dependents();  // only now: a dependent may read its weight early once all before us is done
  const int64_t row = blockIdx.x;
  const T* gate = x + row * 2 * d;
  const T* up = gate + d;
  if constexpr (NV > 0) {
    const int nvec = d / VEC;
    RegVec<T, VEC> g[NV], u[NV];  // g then holds v
    load_row<T, VEC, NV>(gate, nvec, g);
    load_row<T, VEC, NV>(up, nvec, u);
#pragma unroll
    for (int n = 0; n < NV; ++n) {
      if (reg_index(n) < nvec) {
        float v[VEC], uf[VEC];
#pragma unroll
        for (int j = 0; j < VEC; ++j) v[j] = g[n].get(j), uf[j] = u[n].get(j);
        silu_mul<T, VEC>(v, uf);
        g[n].set(v);
      }
    }
    quantize_regs<T, VEC, NV, false>(g, nvec, q + row * d, static_scale, scales + row, nullptr, smem);
  } else {
    auto value = [&](int i, float(&v)[VEC]) {
      float u[VEC];
      load_vec<T, VEC>(gate, i, v);
      load_vec<T, VEC>(up, i, u);
      silu_mul<T, VEC>(v, u);
      round_t_all<T>(v);
    };
    quantize_row<VEC, false>(value, d / VEC, q + row * d, static_scale, scales + row, nullptr, smem);
  }
  if (static_scale != nullptr && row == 0 && threadIdx.x == 0) *scales = *static_scale;
}

// ------------------------------------------------------------------------------------------------ host side

// One CTA per row either way; how wide it is depends on how many rows there are. Few rows (decode): up to 1024
// threads, so each row (the latency the GEMM waits for) finishes soonest. Many rows (prefill): at most 256
// threads, so that more rows are resident per SM and more of the activation is in flight; with 512-thread CTAs
// (K = 4096) an SM held four rows and per_token_quant moved 2.1 TB/s at M = 16384 (run 8: 94 us where vLLM's
// kernel took 66).
constexpr int64_t kManyRows = 1024;
constexpr int kMaxThreads = 1024;
constexpr int kManyRowsThreads = 256;
constexpr int kMaxNV = 8;
constexpr int64_t kSiluManyRows = 4096;  // silu_and_mul_quant's many-rows threshold (see there)

int max_threads(int64_t rows) { return rows >= kManyRows ? kManyRowsThreads : kMaxThreads; }

// Multi-pass path (NV == 0): enough threads for one VEC-wide vector each, up to `cap`.
int threads_for(int cap, int nvec) {
  int t = ((nvec + 31) / 32) * 32;
  return t < 32 ? 32 : (t > cap ? cap : t);
}

// Smallest NV in {1, 2, 4, 8} with nvec <= NV * cap; failing that (long rows), with 1024 threads; else 0
// (multi-pass).
int pick_nv(int cap, int64_t nvec) {
  for (const int c : {cap, kMaxThreads}) {
    for (int nv = 1; nv <= kMaxNV; nv *= 2)
      if (nvec <= static_cast<int64_t>(nv) * c) return nv;
  }
  return 0;
}

// Calls launch(std::integral_constant<int, NV>{}, threads) with the NV for this row length and its block size:
// for NV > 0 the fewest threads (a multiple of 32) with nvec <= NV * threads. `cap` bounds the threads per CTA
// (default max_threads(rows)).
template <class Launch>
void dispatch_nv(int64_t rows, int64_t nvec, Launch&& launch, int cap = 0) {
  if (cap <= 0) cap = max_threads(rows);
  const int nv = pick_nv(cap, nvec);
  const int threads = nv > 0 ? static_cast<int>(((nvec + nv - 1) / nv + 31) / 32 * 32) : threads_for(cap, nvec);
  switch (nv) {
    case 1: launch(std::integral_constant<int, 1>{}, threads); break;
    case 2: launch(std::integral_constant<int, 2>{}, threads); break;
    case 4: launch(std::integral_constant<int, 4>{}, threads); break;
    case 8: launch(std::integral_constant<int, 8>{}, threads); break;
    default: launch(std::integral_constant<int, 0>{}, threads); break;
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// One CTA per row. On sm_90+ as a programmatic dependent of the kernel before it (pdl.cuh; unless VLLM_SQ_PDL=0):
// its CTAs are placed while that kernel drains and start with pdl::wait_for_producer, instead of being launched
// after it completes.
template <class... Params, class... Args>
void launch_quant(void (*kernel)(Params...), int64_t rows, int threads, cudaStream_t stream, Args... args) {
  TORCH_CHECK(rows <= INT32_MAX, "quantization: too many rows (", std::to_string(rows), ")");
  int device = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));  // the caller's CUDAGuard selected the tensors' device
  const bool programmatic = device_info(device).arch >= 90 && pdl::enabled();
  C10_CUDA_CHECK(pdl::launch(kernel, dim3(static_cast<unsigned>(rows)), dim3(threads), 0, stream, programmatic,
                             args...));
}

// Records what the kernel just launched on `stream` writes: a programmatic dependent must not read it early
// (pdl_registry.h).
void note_writes(cudaStream_t stream, std::initializer_list<std::pair<const void*, size_t>> ranges) {
  pdl::Registry::get().note_writes(stream, ranges);
}

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
    dispatch_nv(m, k / VEC, [&](auto nv, int threads) {
      launch_quant(quant_kernel<T, VEC, decltype(nv)::value, false>, m, threads, stream,
          static_cast<const T*>(x.data_ptr()), q.data_ptr<int8_t>(), k, nullptr, scales.data_ptr<float>(), nullptr);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  note_writes(stream, {{q.data_ptr(), q.nbytes()}, {scales.data_ptr(), scales.nbytes()}});
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
    dispatch_nv(m, k / VEC, [&](auto nv, int threads) {
      launch_quant(quant_kernel<T, VEC, decltype(nv)::value, true>, m, threads, stream,
          static_cast<const T*>(x.data_ptr()), q.data_ptr<int8_t>(), k, nullptr, scales.data_ptr<float>(),
          azp.data_ptr<int32_t>());
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  note_writes(stream,
              {{q.data_ptr(), q.nbytes()}, {scales.data_ptr(), scales.nbytes()}, {azp.data_ptr(), azp.nbytes()}});
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
    dispatch_nv(m, k / VEC, [&](auto nv, int threads) {
      launch_quant(quant_kernel<T, VEC, decltype(nv)::value, false>, m, threads, stream,
          static_cast<const T*>(x.data_ptr()), q.data_ptr<int8_t>(), k, s, nullptr, nullptr);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  note_writes(stream, {{q.data_ptr(), q.nbytes()}});
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
    dispatch_nv(m, k / VEC, [&](auto nv, int threads) {
      constexpr int NV = decltype(nv)::value;
      if (residual != nullptr) {
        launch_quant(rms_norm_quant_kernel<T, VEC, NV, true>, m, threads, stream,
            xp, static_cast<T*>(residual->data_ptr()), wp, static_cast<float>(eps), q.data_ptr<int8_t>(), k, s,
            scales.data_ptr<float>());
      } else {
        launch_quant(rms_norm_quant_kernel<T, VEC, NV, false>, m, threads, stream,
            xp, nullptr, wp, static_cast<float>(eps), q.data_ptr<int8_t>(), k, s, scales.data_ptr<float>());
      }
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  note_writes(stream, {{q.data_ptr(), q.nbytes()},
                       {scales.data_ptr(), scales.nbytes()},
                       {residual ? residual->data_ptr() : nullptr, residual ? residual->nbytes() : size_t{0}}});
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
    dispatch_nv(m, k / VEC, [&](auto nv, int threads) {
      launch_quant(layer_norm_quant_kernel<T, VEC, decltype(nv)::value>, m, threads, stream,
          static_cast<const T*>(x.data_ptr()), static_cast<const T*>(weight.data_ptr()),
          static_cast<const T*>(bias.data_ptr()), static_cast<float>(eps), q.data_ptr<int8_t>(), k, s,
          scales.data_ptr<float>());
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  note_writes(stream, {{q.data_ptr(), q.nbytes()}, {scales.data_ptr(), scales.nbytes()}});
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
  // From more rows than SMs up to kSiluManyRows, two CTAs per SM: 1,024-thread ones (NV = 2) capped at 40 registers
  // where the row takes 544-800 threads that way (d = 8,200-12,800 with VEC 8: 7B down_proj) and two of them fit an
  // SM (2,048 threads and 64 K registers on sm_80/90; sm_86/89 hold 1,536 threads: up to 768), else CTAs of at most
  // 512 threads (the 1,024-thread instances take up to 64 registers: 7B down_proj's 688-thread CTAs ran one per SM);
  // the 256-thread many-rows CTAs (NV = 8, 80 registers with spills) stay the choice from kSiluManyRows on.
  // benchmarks/producer_quant.py, 7B / 13B, 512-thread cap against many-rows CTAs (runs 16c, 16d against 14j):
  // M = 1,024 26.6 / 30.6 against 30.4 / 36.3 us; M = 4,096 88.1 / 103.1 against 86.6 / 106.1; M = 16,384
  // 331.6 / 392.4 against 305.6 / 381.6. Two 40-register 704-thread CTAs against the 512 cap, SiLU + quant and
  // down_proj's GEMM (benchmarks/silu_quant_variants.py at 210a521, run 19g): 7B M = 256 35.0 against 35.9 us,
  // M = 1,024 83.6 against 85.0; 13B's 864-thread rows at 40 registers fit one CTA per SM (54.6 against 54.0).
  int device = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  const DeviceInfo& dev = device_info(device);
  const bool mid_rows = m > dev.sm_count && m < kSiluManyRows;
  VLLM_SQ_DISPATCH_VEC(x.scalar_type(), vec_ok, {
    const int64_t nvec = d / VEC;
    const int64_t pair_threads = ((nvec + 1) / 2 + 31) / 32 * 32;  // NV = 2 under the 1,024 cap
    // two such CTAs must fit an SM's threads (1,536 on sm_86/89) and registers
    const bool two_wide = VEC == 8 && mid_rows && nvec > kMaxThreads && 2 * pair_threads <= dev.threads_per_sm &&
                          2 * pair_threads * kTwoPerSmRegs <= dev.regs_per_sm;
    const int cap = two_wide ? kMaxThreads : (mid_rows ? kMaxThreads / 2 : 0);
    dispatch_nv(m, nvec, [&](auto nv, int threads) {
      constexpr int NV = decltype(nv)::value;
      auto kernel = threads <= kManyRowsThreads ? silu_and_mul_quant_kernel<T, VEC, NV, kManyRowsThreads>
                                                : silu_and_mul_quant_kernel<T, VEC, NV, kMaxThreads>;
      if constexpr (NV == 2) {
        if (two_wide) kernel = silu_and_mul_quant_kernel<T, VEC, NV, kMaxThreads, kTwoPerSmRegs>;
      }
      launch_quant(kernel, m, threads, stream, static_cast<const T*>(x.data_ptr()), q.data_ptr<int8_t>(), d, s,
                   scales.data_ptr<float>());
    }, cap);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  note_writes(stream, {{q.data_ptr(), q.nbytes()}, {scales.data_ptr(), scales.nbytes()}});
  return {q, scales};
}

}  // namespace vllm_sq
