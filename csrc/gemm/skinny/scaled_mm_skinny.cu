// Configurations and launch of the skinny-M int8 GEMM (skinny_mma.cuh). Built for sm_90a only, with the CUTLASS
// kernels (its ring uses sm_90 mbarrier waits); the sm_90 dispatch table lists these next to them.
#include "gemm/skinny/skinny_mma.cuh"

#include <algorithm>

namespace vllm_sq {
namespace {

using namespace skinny;

// Named configurations, one per line of the table below. Tokens per CTA bound the M a CTA serves; M beyond it
// takes more CTAs along grid.x (correct for any M, efficient only for the few tokens it is meant for). 8 warps per
// CTA; N = 4096 gives 128 CTAs of 32 rows, one wave on an H100. The dispatch table (sm90/dispatch_sm90.cu) says
// which runs where; sweeps 17b-17g (benchmarks/results) measured them against the variants they replaced (a
// thread-private ring, register-only loads: removed) and the CUTLASS decode tiles.
// CTAs per SM matter behind a programmatic launch (run 17d: with the partial sums moved into the ring, more CTAs fit;
// alone nothing changed, behind the quantization 7B o_proj at M = 16 (8-token CTAs, three per SM instead of two)
// went 9.5 -> 10.1 us and at M = 32 (32-token CTAs, two instead of one) 10.4 -> 12.7). Our reading: a dependent's
// CTAs are placed on the SMs the kernel before frees first and stack up there.
using Skinny8c3 = SkinnyConfig<8, 2, 8, 3, 2>;    // 32 rows x 8 tokens, 69 KB of ring, two CTAs per SM
using Skinny8c3r = SkinnyConfig<8, 1, 8, 3, 3>;   // 16 rows x 8 tokens, 41 KB, three per SM
using Skinny16c3r = SkinnyConfig<16, 1, 8, 3, 3>; // 16 rows x 16 tokens, 55 KB, three per SM
using Skinny32c3 = SkinnyConfig<32, 2, 8, 3, 1>;  // 32 rows x 32 tokens, 111 KB, one per SM

// Dynamic shared memory of a launch: what the configuration needs, padded so that no more than Cfg::kCtasPerSm
// CTAs fit an SM ((c + 1) CTAs of S + reserved bytes exceed the SM's shared memory once S > smem / (c + 1) -
// reserved).
template <class Cfg>
size_t launch_smem(const ScaledMmParams& p) {
  if (p.smem_per_sm <= 0) return Cfg::kSmemBytes;
  const int cap = p.smem_per_sm / (Cfg::kCtasPerSm + 1) - p.smem_reserved_per_cta + 128;
  return static_cast<size_t>(std::max(Cfg::kSmemBytes, cap));
}

template <class Cfg>
const char* check(const ScaledMmParams& p) {
  const int64_t row_blocks = (int64_t(p.n) + Cfg::kRows - 1) / Cfg::kRows;
  if (row_blocks > 65535) return "skinny GEMM: N too large for this configuration (grid.y > 65535)";
  return "";
}

template <class Cfg>
const char* launch(const ScaledMmParams& p, cudaStream_t stream, bool programmatic) {
  if (const char* err = check<Cfg>(p); *err) return err;
  const dim3 grid((p.m + Cfg::kTokens - 1) / Cfg::kTokens, (p.n + Cfg::kRows - 1) / Cfg::kRows);
  const dim3 block(Cfg::kWarps * 32);
  const auto kernel = p.out_dtype == OutDtype::kBFloat16 ? skinny_scaled_mm<Cfg, __nv_bfloat16>
                                                          : skinny_scaled_mm<Cfg, __half>;
  const size_t smem = launch_smem<Cfg>(p);
  if (smem > 48 * 1024) {  // above the default limit of dynamic shared memory
    const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (err != cudaSuccess) return cudaGetErrorString(err);
  }
  // programmatic: may start before the preceding kernel completes (pdl.cuh; the kernel waits before it reads
  // the activation).
  const cudaError_t err = pdl::launch(kernel, grid, block, smem, stream, programmatic, p);
  return err == cudaSuccess ? "" : cudaGetErrorString(err);
}

struct Entry {
  const char* name;
  const char* (*check)(const ScaledMmParams&);
  const char* (*launch)(const ScaledMmParams&, cudaStream_t, bool);
};
constexpr Entry kEntries[] = {  // in SkinnyConfigId order (scaled_mm.h)
    {"Skinny8c3", check<Skinny8c3>, launch<Skinny8c3>},
    {"Skinny8c3r", check<Skinny8c3r>, launch<Skinny8c3r>},
    {"Skinny16c3r", check<Skinny16c3r>, launch<Skinny16c3r>},
    {"Skinny32c3", check<Skinny32c3>, launch<Skinny32c3>},
};
constexpr int kNumEntries = sizeof(kEntries) / sizeof(kEntries[0]);
static_assert(kNumEntries == kNumSkinnyConfigs, "one entry per SkinnyConfigId");

}  // namespace

int skinny_num_configs() { return kNumEntries; }

const char* skinny_config_name(int config) {
  return (config >= 0 && config < kNumEntries) ? kEntries[config].name : "";
}

const char* skinny_plan(const ScaledMmParams& p, int config, GemmPlan* plan) {
  if (config < 0 || config >= kNumEntries) return "skinny GEMM: no such configuration";
  plan->workspace_bytes = 0;
  return kEntries[config].check(p);
}

const char* skinny_run(const ScaledMmParams& p, int config, cudaStream_t stream, bool programmatic) {
  if (config < 0 || config >= kNumEntries) return "skinny GEMM: no such configuration";
  return kEntries[config].launch(p, stream, programmatic);
}

}  // namespace vllm_sq
