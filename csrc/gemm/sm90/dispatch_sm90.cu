// Dispatch table of the sm_90a int8 GEMM: which tile configuration (configs_sm90.cuh) runs a given M, N, K.
// The boundaries come from benchmarks/gemm.py --sweep, which times every configuration on Llama-2 7B/13B shapes.
#include "gemm/scaled_mm.h"
#include "gemm/sm90/configs_sm90.cuh"

#include "cutlass/numeric_types.h"

namespace vllm_sq {
namespace {

using namespace sm90;

using PlanFn = const char* (*)(const ScaledMmParams&, GemmPlan*);
using RunFn = const char* (*)(const ScaledMmParams&, void*, cudaStream_t);

// One configuration's entry points per (output dtype, epilogue); nullptr where it is not instantiated.
struct ConfigEntry {
  const char* name;
  PlanFn plan[2][2];  // [bf16 ? 0 : 1][azp]
  RunFn run[2][2];
};

template <class Cfg, bool WithAzp>
constexpr ConfigEntry entry(const char* name) {
  using BF = cutlass::bfloat16_t;
  using FP = cutlass::half_t;
  if constexpr (WithAzp) {
    return {name,
            {{plan_config<Cfg, BF, false>, plan_config<Cfg, BF, true>},
             {plan_config<Cfg, FP, false>, plan_config<Cfg, FP, true>}},
            {{run_config<Cfg, BF, false>, run_config<Cfg, BF, true>},
             {run_config<Cfg, FP, false>, run_config<Cfg, FP, true>}}};
  } else {
    return {name,
            {{plan_config<Cfg, BF, false>, nullptr}, {plan_config<Cfg, FP, false>, nullptr}},
            {{run_config<Cfg, BF, false>, nullptr}, {run_config<Cfg, FP, false>, nullptr}}};
  }
}

// Index = the `config` number accepted by int8_scaled_mm's forcing hook (benchmarks/gemm.py, tests). The
// asymmetric epilogue is instantiated only for the configurations pick_config chooses for it.
enum Config : int {
  kDecodeSwap16, kDecodeSwap32, kDecodeSwap64, kSmall, kMid, kLarge, kLargeTall,
  kDecodeN32, kDecodeN32x2, kDecodeN64x2, kDecodeN128x2, kMidPingpong,
};
const ConfigEntry kConfigs[] = {
    entry<DecodeSwap16, false>("DecodeSwap16"), entry<DecodeSwap32, false>("DecodeSwap32"),
    entry<DecodeSwap64, true>("DecodeSwap64"),  entry<Small, false>("Small"),
    entry<Mid, true>("Mid"),                    entry<Large, true>("Large"),
    entry<LargeTall, false>("LargeTall"),       entry<DecodeN32, false>("DecodeN32"),
    entry<DecodeN32x2, false>("DecodeN32x2"),   entry<DecodeN64x2, false>("DecodeN64x2"),
    entry<DecodeN128x2, false>("DecodeN128x2"), entry<MidPingpong, false>("MidPingpong"),
};
constexpr int kNumConfigs = sizeof(kConfigs) / sizeof(kConfigs[0]);

// From the tile sweeps of benchmarks/gemm.py --sweep on the H100 (benchmarks/results/gemm_NVIDIA_H100_80GB_HBM3_
// 2026-11-23.md, Llama-2-7B shapes): at M <= 64 the 64x128 ping-pong kernel beat the swap-AB stream-K ones on
// 6 of 8 shapes; at M = 256 swap-AB 128x64 won for N <= 12288 and the 128x128 stream-K kernel for gate_up
// (N = 22016); from M = 1024 on, 128x256 (Large) was best or within 2%.
int pick_config(const ScaledMmParams& p, bool azp) {
  if (azp) {  // asymmetric activations: rare, three configurations cover the regimes
    return p.m <= 64 ? kDecodeSwap64 : (p.m <= 1024 ? kMid : kLarge);
  }
  if (p.m <= 64) return kSmall;
  if (p.m <= 256) return p.n <= 12288 ? kDecodeSwap64 : kMid;
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
  const RunFn fn = kConfigs[plan.config].run[p.out_dtype == OutDtype::kBFloat16 ? 0 : 1][azp];
  if (fn == nullptr) return "sm90: configuration not instantiated for the asymmetric epilogue";
  return fn(p, workspace, stream);
}

}  // namespace vllm_sq
