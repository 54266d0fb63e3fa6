// Configurations and launch of the skinny-M int8 GEMM (skinny_mma.cuh). Built for every arch (mma.sync is sm_80+);
// the sm_90 dispatch table lists these next to the CUTLASS configurations.
#include "gemm/skinny/skinny_mma.cuh"

#include <algorithm>

namespace vllm_sq {
namespace {

using namespace skinny;

// Named configurations, one per line of the table below. Tokens per CTA bound the M a CTA serves; M beyond it
// takes more CTAs along grid.x (correct for any M, efficient only for the few tokens it is meant for). All have
// 32-row CTAs of 8 warps: N = 4096 gives 128 CTAs, one wave on an H100.
// Private ring, 6 stages (120 KB, one CTA per SM): all of a warp's K steps in flight on o_proj-sized weights; the
// table's choice at M <= 8 where the CTAs fit one wave and K <= 4096 (sweep 17c: 7B/8B o_proj 8.3 us against 8.6 for
// the shared ring).
using Skinny8s = SkinnyConfig<8, 2, 8, 6, false, 1>;
// Shared rings (skinny_mma.cuh). Three stages, two CTAs per SM, everywhere else at M <= 16; five stages (138 KB) for
// 9-16 tokens on long rows in one wave, and 32 tokens, both one CTA per SM. Sweep 17c against the private rings and
// their register-only predecessors (removed; their numbers are in sweep 17b) and the CUTLASS decode tiles: 7B qkv
// M = 1 19.5 us (private 21.0, registers 21.1, cluster tile 23.1), 13B down 26.7 (cluster tile 28.6).
// CTAs per SM matter behind a programmatic launch (run 17d, the same kernels with the partial sums moved into the
// ring, which let more CTAs fit): 7B o_proj behind the quantization at M = 16 (8-token CTAs, three per SM instead
// of two) 9.5 -> 10.1 us, at M = 32 (32-token CTAs, two instead of one) 10.4 -> 12.7, unchanged alone. Our reading:
// the CTAs are placed on the SMs the kernel before frees first, and stack up there.
using Skinny8c3 = SkinnyConfig<8, 2, 8, 3, true, 2>;
using Skinny16c = SkinnyConfig<16, 2, 8, 5, true, 1>;
using Skinny16c3 = SkinnyConfig<16, 2, 8, 3, true, 2>;
using Skinny32c3 = SkinnyConfig<32, 2, 8, 3, true, 1>;
// 16-row CTAs, three per SM (A/B, run 17g): past one wave of 32-row CTAs (13B o_proj: 160 of them on 132 SMs,
// Llama-3 qkv: 192) the SMs that get two finish last; twice as many smaller CTAs spread the rows more evenly.
using Skinny8c3r = SkinnyConfig<8, 1, 8, 3, true, 3>;
using Skinny16c3r = SkinnyConfig<16, 1, 8, 3, true, 3>;

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
  const auto kernel = [&] {
    if constexpr (Cfg::kSharedRing) {
      return p.out_dtype == OutDtype::kBFloat16 ? skinny_scaled_mm_shared<Cfg, __nv_bfloat16>
                                                : skinny_scaled_mm_shared<Cfg, __half>;
    } else {
      return p.out_dtype == OutDtype::kBFloat16 ? skinny_scaled_mm<Cfg, __nv_bfloat16>
                                                : skinny_scaled_mm<Cfg, __half>;
    }
  }();
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
    {"Skinny8s", check<Skinny8s>, launch<Skinny8s>},
    {"Skinny8c3", check<Skinny8c3>, launch<Skinny8c3>},
    {"Skinny16c", check<Skinny16c>, launch<Skinny16c>},
    {"Skinny16c3", check<Skinny16c3>, launch<Skinny16c3>},
    {"Skinny32c3", check<Skinny32c3>, launch<Skinny32c3>},
    {"Skinny8c3r", check<Skinny8c3r>, launch<Skinny8c3r>},
    {"Skinny16c3r", check<Skinny16c3r>, launch<Skinny16c3r>},
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
