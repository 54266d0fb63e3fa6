// Torch-free interface between the op entry (scaled_mm_entry.cu) and the per-arch CUTLASS kernels.
//
// Every kernel computes, for a [M,K] int8 row-major, b [K,N] int8 column-major (b^T is [N,K] contiguous):
//   out[m,n] = sa[m] * sb[n] * (sum_k a[m,k] * b[k,n] - azp[m] * azp_adj[n]) + bias[n]
// with the azp term only in the asymmetric variant; sa/sb are per-row/per-column or broadcast scalars.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace vllm_sq {

enum class OutDtype { kBFloat16, kFloat16 };

struct ScaledMmParams {
  const int8_t* a = nullptr;        // [M,K], row stride K
  const int8_t* b = nullptr;        // [N,K] (the column-major [K,N] weight), row stride K
  void* out = nullptr;              // [M,N], row stride N
  const float* a_scales = nullptr;  // [M] when a_per_token, else [1]
  const float* b_scales = nullptr;  // [N] when b_per_channel, else [1]
  const void* bias = nullptr;       // [N] in the output dtype, or nullptr
  const int32_t* azp = nullptr;     // [M] zero points (asymmetric variant only)
  const int32_t* azp_adj = nullptr; // [N] column sums of b (asymmetric variant only)
  int m = 0, n = 0, k = 0;
  bool a_per_token = false;
  bool b_per_channel = false;
  OutDtype out_dtype = OutDtype::kBFloat16;
  int sm_count = 0;                 // multiprocessors of the device (persistent / stream-K schedulers)
  int smem_per_sm = 0;              // shared memory per multiprocessor and the part reserved per CTA (the skinny
  int smem_reserved_per_cta = 0;    // kernel caps its CTAs per SM with them)
  bool weight_read_early_ok = false; // b is not written by the kernel before (pdl_registry.h): a kernel may be
                                     // launched as its programmatic dependent and read b before the wait
  bool programmatic = false;         // launch a CUTLASS tile as a programmatic dependent (set by the sm90
                                     // dispatcher; the tile must be built with CUTLASS_ENABLE_GDC_FOR_SM90)
};

// A kernel launch split in two so the caller allocates the (stream-K) workspace with its own allocator.
// `config` < 0 picks the configuration from the dispatch table; >= 0 forces one (benchmarks, tests).
// Both return an empty string on success, else an error message.
struct GemmPlan {
  size_t workspace_bytes = 0;
  int config = -1;
};

#ifdef VLLM_SQ_WITH_SM90
// The skinny-M kernel (gemm/skinny/, mma.sync with sm_90 mbarrier waits): a few tokens against a large
// weight. Its configurations are listed by the sm_90 table; `config` here indexes its own list, in this order.
enum SkinnyConfigId : int { kSkinny8c3, kSkinny8c3r, kSkinny16c3r, kSkinny32c3, kNumSkinnyConfigs };
int skinny_num_configs();
const char* skinny_config_name(int config);
const char* skinny_plan(const ScaledMmParams& p, int config, GemmPlan* plan);
// programmatic: launch with programmatic stream serialization (pdl.cuh), so the weight stream starts
// while the kernel before it (the activation's quantization) is still running.
const char* skinny_run(const ScaledMmParams& p, int config, cudaStream_t stream, bool programmatic);

int sm90_num_configs();
const char* sm90_config_name(int config);
const char* sm90_plan(const ScaledMmParams& p, bool azp, int config, GemmPlan* plan);
const char* sm90_run(const ScaledMmParams& p, bool azp, const GemmPlan& plan, void* workspace, cudaStream_t stream);
#endif

#ifdef VLLM_SQ_WITH_SM80
int sm80_num_configs();
const char* sm80_config_name(int config);
const char* sm80_plan(const ScaledMmParams& p, bool azp, int config, GemmPlan* plan);
const char* sm80_run(const ScaledMmParams& p, bool azp, const GemmPlan& plan, void* workspace, cudaStream_t stream);
#endif

}  // namespace vllm_sq
