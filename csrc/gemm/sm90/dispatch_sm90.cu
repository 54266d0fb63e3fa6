// Dispatch table of the sm_90a int8 GEMM: which tile configuration (configs_sm90.cuh) runs a given M, N, K.
// The boundaries come from benchmarks/gemm.py, which times every configuration on Llama-2 7B/13B shapes.
#include "gemm/scaled_mm.h"
#include "gemm/sm90/configs_sm90.cuh"

#include "cutlass/numeric_types.h"

namespace vllm_sq {
namespace {

using namespace sm90;

// Index = the `config` number accepted by int8_scaled_mm's forcing hook; `azp` says whether the asymmetric
// epilogue was instantiated for it too (only the configurations the table below picks for it).
struct ConfigEntry {
  const char* name;
  bool azp;
};
constexpr ConfigEntry kConfigs[] = {
    {"DecodeSwap16", false}, {"DecodeSwap32", false}, {"DecodeSwap64", true}, {"Small", false},
    {"Mid", true},           {"Large", true},         {"LargeTall", false},
};
constexpr int kNumConfigs = sizeof(kConfigs) / sizeof(kConfigs[0]);

// From the tile sweep of benchmarks/gemm.py --sweep on the H100 (benchmarks/results/gemm_NVIDIA_H100_80GB_HBM3_
// 2026-11-23.md, Llama-2-7B shapes): at M <= 64 the 64x128 ping-pong kernel beat the swap-AB stream-K ones on
// 6 of 8 shapes; at M = 256 swap-AB 128x64 won for N <= 12288 and the 128x128 stream-K kernel for gate_up
// (N = 22016); from M = 1024 on, 128x256 (Large) was best or within 2%.
int pick_config(const ScaledMmParams& p, bool azp) {
  if (azp) {  // asymmetric activations: rare, three configurations cover the regimes
    return p.m <= 64 ? 2 : (p.m <= 1024 ? 4 : 5);
  }
  if (p.m <= 64) return 3;                     // Small
  if (p.m <= 256) return p.n <= 12288 ? 2 : 4;  // DecodeSwap64 : Mid
  return 5;                                    // Large
}

template <class Out, bool Azp>
const char* plan_typed(int config, const ScaledMmParams& p, GemmPlan* plan) {
  switch (config) {
    case 2: return plan_config<DecodeSwap64, Out, Azp>(p, plan);
    case 4: return plan_config<Mid, Out, Azp>(p, plan);
    case 5: return plan_config<Large, Out, Azp>(p, plan);
    default: break;
  }
  if constexpr (!Azp) {
    switch (config) {
      case 0: return plan_config<DecodeSwap16, Out, false>(p, plan);
      case 1: return plan_config<DecodeSwap32, Out, false>(p, plan);
      case 3: return plan_config<Small, Out, false>(p, plan);
      case 6: return plan_config<LargeTall, Out, false>(p, plan);
      default: break;
    }
  }
  return "sm90: configuration not available for this epilogue";
}

template <class Out, bool Azp>
const char* run_typed(int config, const ScaledMmParams& p, void* ws, cudaStream_t s) {
  switch (config) {
    case 2: return run_config<DecodeSwap64, Out, Azp>(p, ws, s);
    case 4: return run_config<Mid, Out, Azp>(p, ws, s);
    case 5: return run_config<Large, Out, Azp>(p, ws, s);
    default: break;
  }
  if constexpr (!Azp) {
    switch (config) {
      case 0: return run_config<DecodeSwap16, Out, false>(p, ws, s);
      case 1: return run_config<DecodeSwap32, Out, false>(p, ws, s);
      case 3: return run_config<Small, Out, false>(p, ws, s);
      case 6: return run_config<LargeTall, Out, false>(p, ws, s);
      default: break;
    }
  }
  return "sm90: configuration not available for this epilogue";
}

}  // namespace

int sm90_num_configs() { return kNumConfigs; }

const char* sm90_config_name(int config) {
  return (config >= 0 && config < kNumConfigs) ? kConfigs[config].name : "";
}

const char* sm90_plan(const ScaledMmParams& p, bool azp, int config, GemmPlan* plan) {
  if (config < 0) {
    config = pick_config(p, azp);
  } else if (config >= kNumConfigs || (azp && !kConfigs[config].azp)) {
    return "sm90: no such configuration for this epilogue";
  }
  plan->config = config;
  const bool bf16 = p.out_dtype == OutDtype::kBFloat16;
  if (azp) {
    return bf16 ? plan_typed<cutlass::bfloat16_t, true>(config, p, plan)
                : plan_typed<cutlass::half_t, true>(config, p, plan);
  }
  return bf16 ? plan_typed<cutlass::bfloat16_t, false>(config, p, plan)
              : plan_typed<cutlass::half_t, false>(config, p, plan);
}

const char* sm90_run(const ScaledMmParams& p, bool azp, const GemmPlan& plan, void* workspace,
                     cudaStream_t stream) {
  const bool bf16 = p.out_dtype == OutDtype::kBFloat16;
  if (azp) {
    return bf16 ? run_typed<cutlass::bfloat16_t, true>(plan.config, p, workspace, stream)
                : run_typed<cutlass::half_t, true>(plan.config, p, workspace, stream);
  }
  return bf16 ? run_typed<cutlass::bfloat16_t, false>(plan.config, p, workspace, stream)
              : run_typed<cutlass::half_t, false>(plan.config, p, workspace, stream);
}

}  // namespace vllm_sq
