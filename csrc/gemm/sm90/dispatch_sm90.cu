// Dispatch table of the sm_90a int8 GEMM: which tile configuration (configs_sm90.cuh) runs a given M, N, K.
// The boundaries come from benchmarks/gemm.py --sweep, which times every configuration on Llama-2 7B/13B shapes.
#include "gemm/scaled_mm.h"
#include "gemm/sm90/configs_sm90.cuh"
#include "pdl_registry.h"

#include "cutlass/numeric_types.h"

namespace vllm_sq {
namespace {

using namespace sm90;

using PlanFn = const char* (*)(const ScaledMmParams&, GemmPlan*);
using RunFn = const char* (*)(const ScaledMmParams&, void*, cudaStream_t);

// One configuration's entry points per (output dtype, epilogue); nullptr where it is not instantiated.
// `pdl`: the symmetric tile is launched as a programmatic dependent of the kernel before it (the quantization
// kernel) at M <= kPdlMaxM: its launch and prologue overlap that kernel. Only tiles built with
// CUTLASS_ENABLE_GDC_FOR_SM90 (csrc/CMakeLists.txt, _sm90_gdc_srcs; the run refuses any other); the skinny kernel
// decides for itself. Measured as quantization + GEMM pairs, every tile a dependent against DecodeN64c1 alone (run
// 20f, three models, M = 32-1,024): 0.3-1.9 us less per pair on every shape of DecodeN64c8, Small, SmallM2 and
// MidPingpong up to M = 256 (7B qkv M = 256 33.5 -> 31.6 us, 13B o_proj M = 128 17.0 -> 16.0); DecodeN64x2 lost
// on 13B qkv (M = 32 33.6 -> 39.1, as in run 9: 1x4 clusters, two CTAs per SM), and at M = 1,024 the tiles lost up
// to 7.7 us on gate_up (13B 229.7 -> 237.3): there the quantization runs several waves of CTAs. DecodeN64c1 itself
// (run 20e, VLLM_SQ_PDL=0 against 1, M = 64): 1.3-1.7 us less per pair (7B o_proj 12.1 -> 10.5).
constexpr int kPdlMaxM = 256;
struct ConfigEntry {
  const char* name;
  PlanFn plan[2][2];  // [bf16 ? 0 : 1][azp]
  RunFn run[2][2];
  bool pdl = false;
};

template <class Cfg, bool WithAzp>
constexpr ConfigEntry entry(const char* name, bool pdl) {
  using BF = cutlass::bfloat16_t;
  using FP = cutlass::half_t;
  if constexpr (WithAzp) {
    return {name,
            {{plan_config<Cfg, BF, false>, plan_config<Cfg, BF, true>},
             {plan_config<Cfg, FP, false>, plan_config<Cfg, FP, true>}},
            {{run_config<Cfg, BF, false>, run_config<Cfg, BF, true>},
             {run_config<Cfg, FP, false>, run_config<Cfg, FP, true>}},
            pdl};
  } else {
    return {name,
            {{plan_config<Cfg, BF, false>, nullptr}, {plan_config<Cfg, FP, false>, nullptr}},
            {{run_config<Cfg, BF, false>, nullptr}, {run_config<Cfg, FP, false>, nullptr}},
            pdl};
  }
}

// The skinny-M kernel's configurations (gemm/skinny/: no CUTLASS, no workspace, symmetric epilogue only).
template <int V>
const char* skinny_plan_fn(const ScaledMmParams& p, GemmPlan* plan) { return skinny_plan(p, V, plan); }
template <int V>
const char* skinny_run_fn(const ScaledMmParams& p, void*, cudaStream_t stream) {
  return skinny_run(p, V, stream, /*programmatic=*/p.weight_read_early_ok);
}
template <int V>
ConfigEntry skinny_entry() {
  return {skinny_config_name(V), {{skinny_plan_fn<V>, nullptr}, {skinny_plan_fn<V>, nullptr}},
          {{skinny_run_fn<V>, nullptr}, {skinny_run_fn<V>, nullptr}}};
}

// Index = the `config` number accepted by int8_scaled_mm's forcing hook (benchmarks/gemm.py, tests). The
// asymmetric epilogue is instantiated only for the configurations pick_config chooses for it.
enum Config : int {  // the skinny configurations first, under their SkinnyConfigId (scaled_mm.h)
  kDecodeN64c8 = kNumSkinnyConfigs, kDecodeN64c1, kDecodeN64x2, kSmall, kSmallM2, kDecodeSwap64, kDecodeSwap64p,
  kMidPingpong, kMid, kLarge,
};
const ConfigEntry kConfigs[] = {
    skinny_entry<kSkinny8c3>(), skinny_entry<kSkinny8c3r>(), skinny_entry<kSkinny16c3r>(),
    skinny_entry<kSkinny32c3>(),
    //                           name             pdl
    entry<DecodeN64c8, false>("DecodeN64c8", true),
    entry<DecodeN64c1, false>("DecodeN64c1", true),
    entry<DecodeN64x2, false>("DecodeN64x2", false),
    entry<Small, false>("Small", true),
    entry<SmallM2, false>("SmallM2", true),
    entry<DecodeSwap64, true>("DecodeSwap64", false),  // stream-K: not built with GDC
    entry<DecodeSwap64p, false>("DecodeSwap64p", false),
    entry<MidPingpong, false>("MidPingpong", true),
    entry<Mid, true>("Mid", false),  // stream-K
    entry<Large, true>("Large", false),
};
constexpr int kNumConfigs = sizeof(kConfigs) / sizeof(kConfigs[0]);

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Fraction of the SM slots of the last wave that hold a tile: 1 when `tiles` is a multiple of the SM count.
double wave_fill(int64_t tiles, int sms) {
  const int64_t slots = ceil_div(tiles, sms) * sms;
  return slots > 0 ? static_cast<double>(tiles) / static_cast<double>(slots) : 1.0;
}

// From the tile sweeps of run 4 (benchmarks/results/gemm_NVIDIA_H100_80GB_HBM3_2026-11-23_sweep4.md: every
// configuration on the Llama-2 7B and 13B shapes, M = 1..1024) and run 5 (..._sweep5.md and ..._sweep5b.md: also
// Llama-3-8B, and M = 48/128), run 6 (..._sweep6.md, ..._sweep6b.md: the skinny kernel at M = 1..32, the
// M = 1024/16384 choices) and run 14 (..._2026-11-24_sweep14.md: M = 8-16, timed with the L2 scrub). Three
// weight widths behave differently at decode sizes: small N (o_proj, down_proj, Llama-3 qkv: N <= 8192), mid N
// (qkv) and large N (gate_up: N > 16384). Where the best choice depended on whether the CTAs fill one wave of
// SMs, the rule says so.
int pick_config(const ScaledMmParams& p, bool azp) {
  if (azp) {  // asymmetric activations: rare, three configurations cover the regimes
    return p.m <= 64 ? kDecodeSwap64 : (p.m <= 1024 ? kMid : kLarge);
  }
  const bool small_n = p.n <= 8192;
  const bool large_n = p.n > 16384;
  const int sms = p.sm_count > 0 ? p.sm_count : 132;
  // A few tokens: stream the weight through every SM (skinny_mma.cuh), no per-tile pipeline. Sweeps 17c and 17g
  // (each configuration's GEMM alone and behind our quantization, three models, M = 1-64): the three-stage shared
  // rings lead everywhere at M <= 16. 16-row CTAs (three per SM) on small N at M <= 8 and everywhere at 9-16
  // tokens: past one wave of 32-row CTAs they spread the rows evenly (13B o_proj M = 16 12.8 -> 12.1 us, Llama-3
  // qkv 12.0 -> 11.1, 13B gate_up 53.8 -> 52.3), and on small N at M <= 8 they beat the 32-row ones by 0.2-0.5 us
  // (7B o_proj 8.3 -> 8.1, 7B down 18.3 -> 17.8); on larger N at M <= 8 the 32-row CTAs (7B qkv 19.4 against
  // 19.6). On short one-wave rows (o_proj) at 9-16 tokens, two 8-token CTAs per row block (behind the
  // quantization 9.4 against 9.7); 32-token CTAs up to 32 tokens where they fit one wave (7B o_proj M = 32 behind
  // the quantization 10.4 against 12.2 for the cluster tile).
  const int64_t skinny_ctas = ceil_div(p.n, 32);
  const bool one_wave = skinny_ctas <= sms;
  if (p.m <= 8) return small_n ? kSkinny8c3r : kSkinny8c3;
  if (p.m <= 16) return one_wave && p.k <= 4096 ? kSkinny8c3 : kSkinny16c3r;
  if (p.m <= 32) {
    if (one_wave) return kSkinny32c3;
    return small_n ? kDecodeN64c8 : kDecodeN64x2;
  }
  if (p.m <= 64) {
    // clusters of 8 pay off once there are more than ~80 weight tiles (Llama-3 qkv, N = 6144), not below
    if (small_n) return p.n <= 5120 ? kDecodeN64c1 : kDecodeN64c8;
    return large_n ? kSmall : kDecodeN64x2;
  }
  if (p.m <= 128) {
    // one wave of 64x64 tiles (N = 4096: 128 CTAs) beats everything; past one wave, the 2x1-cluster ping-pong
    return ceil_div(p.m, 64) * ceil_div(p.n, 64) <= sms ? kDecodeN64c1 : kSmallM2;
  }
  if (p.m <= 256) {
    if (small_n && ceil_div(p.m, 64) * ceil_div(p.n, 128) <= sms) return kDecodeSwap64p;  // one wave
    // Past N = 8192 at 129-192 tokens, 128-row tiles are 25-50% padding and 64-token swap tiles are not. Sweep 20l
    // (quantization + GEMM, M = 160): 7B qkv 33.2 against 37.8 us, gate_up 46.0 against 59.8, 13B gate_up 66.2
    // against 96.2; at 224-256 tokens MidPingpong leads (7B gate_up M = 224 46.3 against 56.0). Before, vLLM's GEMM
    // was ahead on gate_up at M = 160 (run 20k: Llama-3 66.4 against 72.2 us).
    if (!small_n && ceil_div(p.m, 128) * 128 > ceil_div(p.m, 64) * 64) return kDecodeSwap64p;
    return kMidPingpong;
  }
  // Large N at M <= 1024 (gate_up), and everything but gate_up and down at large M: the ping-pong tile overlaps
  // each tile's epilogue with the next tile's MMAs, which matters when K is short. Run 6b: 7B gate_up M = 1024
  // 136 vs 156 us (13B/Llama-3 within 1%); M = 16384: o_proj 369 vs 412 us, qkv 1-9% ahead.
  if (p.m <= 1024 && large_n) return kMidPingpong;
  if (p.m > 4096 && !large_n && p.k <= 8192) return kMidPingpong;
  // 128x256 tiles unless they leave most of a last wave idle (13B o/down at M = 1024: 160 tiles on 132 SMs).
  if (p.m <= 1024 && wave_fill(ceil_div(p.m, 128) * ceil_div(p.n, 256), sms) < 0.75) return kMidPingpong;
  return kLarge;
}

}  // namespace

int sm90_num_configs() { return kNumConfigs; }

const char* sm90_config_name(int config) {
  return (config >= 0 && config < kNumConfigs) ? kConfigs[config].name : "";
}

const char* sm90_plan(const ScaledMmParams& p, bool azp, int config, GemmPlan* plan) {
  if (config < 0) config = pick_config(p, azp);
  if (config >= kNumConfigs) return "sm90: no such configuration";
  const PlanFn fn = kConfigs[config].plan[p.out_dtype == OutDtype::kBFloat16 ? 0 : 1][azp];
  if (fn == nullptr) return "sm90: configuration not instantiated for the asymmetric epilogue";
  plan->config = config;
  return fn(p, plan);
}

const char* sm90_run(const ScaledMmParams& p, bool azp, const GemmPlan& plan, void* workspace,
                     cudaStream_t stream) {
  if (plan.config < 0 || plan.config >= kNumConfigs) return "sm90: plan holds no configuration";
  const ConfigEntry& cfg = kConfigs[plan.config];
  const RunFn fn = cfg.run[p.out_dtype == OutDtype::kBFloat16 ? 0 : 1][azp];
  if (fn == nullptr) return "sm90: configuration not instantiated for the asymmetric epilogue";
  ScaledMmParams q = p;
  q.programmatic = cfg.pdl && !azp && p.m <= kPdlMaxM && pdl::enabled();
  return fn(q, workspace, stream);
}

}  // namespace vllm_sq
