// Configurations and launch of the skinny-M int8 GEMM (skinny_mma.cuh). Built for every arch (mma.sync is sm_80+);
// the sm_90 dispatch table lists these next to the CUTLASS configurations.
#include "gemm/skinny/skinny_mma.cuh"

namespace vllm_sq {
namespace {

using namespace skinny;

// Named configurations, one per line of the table below. Tokens per CTA bound the M a CTA serves; M beyond it
// takes more CTAs along grid.x (correct for any M, efficient only for the few tokens it is meant for).
// Bytes in flight per thread: Unroll x (2 x RowBlocks weight + Tokens/8 token) 16-byte loads.
// Run 6 (benchmarks/results/..._sweep6.md, M = 1..32): a 16-token configuration was 10-25% behind the CUTLASS
// decode tiles at M = 16 (registers only, no programmatic launch then); at M <= 8 these are 0-8% ahead of them
// except on K > 8192. The 16-token configurations below are back with cp.async staging and the programmatic launch.
// Two 16-row blocks per CTA: N = 4096 gives 128 CTAs of 8 warps (about one per SM on an H100). Sweep 14 (scrubbed
// timing, M = 8): the table's choice past one wave of CTAs with K <= 8192, 0-6% ahead of the one-row-block,
// twice-unrolled variant it replaced there (Skinny8r1, removed).
using Skinny8 = SkinnyConfig<8, 2, 8, 4>;
// Skinny8 with cp.async staging (6 stages, 120 KB of ring per CTA, one CTA per SM): all of a warp's K steps in
// flight on o_proj-sized weights. Sweep 7: 4-10% ahead of everything on N = 4096 (7B/8B o_proj 9.4-9.7 us,
// down_proj 20.3-20.9), where its 128 CTAs fit one wave, and behind past one wave (13B o_proj 14.6 vs 13.6).
using Skinny8s = SkinnyConfig<8, 2, 8, 1, 6>;
// Sixteen tokens (two 8-token MMA column blocks), for 8 < M <= 16, where they let the GEMM start as a
// programmatic dependent of the quantization like the 8-token ones (the CUTLASS decode tiles cannot: run 9).
// Each CTA also reads its 16 x K activation bytes from L2, half as many bytes as its 32 weight rows.
// Register: 6 pieces x Unroll 4 = 24 loads per thread, 128 registers: two CTAs per SM. Staged: 6 stages of (4
// weight + 2 token) pieces = 144 KB of ring, one CTA per SM. Sweep 10 (M = 12/16, quantize + GEMM): Skinny16s 5-9%
// ahead of the cluster tile where its CTAs fit one wave, Skinny16 up to 5% ahead on large N; one-row-block
// variants of both (two CTAs per SM) were behind these everywhere and were removed. Sweep 14: persistent staged
// variants (one CTA per SM looping over row blocks with one ring) beat Skinny16s past one wave (7B qkv 23.5 vs
// 25.8 us) but not the cluster tile (22.4) or Skinny16 there; not kept.
using Skinny16 = SkinnyConfig<16, 2, 8, 4>;
using Skinny16s = SkinnyConfig<16, 2, 8, 1, 6>;
// The shared-ring variants (one ring per CTA, 512-byte row runs per copy: skinny_mma.cuh). 5 stages: 115 KB (8
// tokens) or 138 KB (16) of ring, one CTA per SM, for one wave of CTAs; 3 stages: 69 KB, two CTAs per SM.
using Skinny8c = SkinnyConfig<8, 2, 8, 1, 5, true>;
using Skinny8c3 = SkinnyConfig<8, 2, 8, 1, 3, true>;
using Skinny16c = SkinnyConfig<16, 2, 8, 1, 5, true>;
using Skinny16c3 = SkinnyConfig<16, 2, 8, 1, 3, true>;
// 32 tokens (four MMA column blocks; 110 KB of ring, one CTA per SM) for 16 < M <= 64 (A/B against the CUTLASS
// decode tiles).
using Skinny32c3 = SkinnyConfig<32, 2, 8, 1, 3, true>;

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
  if constexpr (Cfg::kRingBytes > 48 * 1024) {  // above the default limit of dynamic shared memory
    const cudaError_t err =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::kRingBytes);
    if (err != cudaSuccess) return cudaGetErrorString(err);
  }
  // programmatic: may start before the preceding kernel completes (pdl.cuh; the kernel waits before it reads
  // the activation).
  const cudaError_t err = pdl::launch(kernel, grid, block, Cfg::kRingBytes, stream, programmatic, p);
  return err == cudaSuccess ? "" : cudaGetErrorString(err);
}

struct Entry {
  const char* name;
  const char* (*check)(const ScaledMmParams&);
  const char* (*launch)(const ScaledMmParams&, cudaStream_t, bool);
};
constexpr Entry kEntries[] = {  // in SkinnyConfigId order (scaled_mm.h)
    {"Skinny8", check<Skinny8>, launch<Skinny8>},
    {"Skinny8s", check<Skinny8s>, launch<Skinny8s>},
    {"Skinny16", check<Skinny16>, launch<Skinny16>},
    {"Skinny16s", check<Skinny16s>, launch<Skinny16s>},
    {"Skinny8c", check<Skinny8c>, launch<Skinny8c>},
    {"Skinny8c3", check<Skinny8c3>, launch<Skinny8c3>},
    {"Skinny16c", check<Skinny16c>, launch<Skinny16c>},
    {"Skinny16c3", check<Skinny16c3>, launch<Skinny16c3>},
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
