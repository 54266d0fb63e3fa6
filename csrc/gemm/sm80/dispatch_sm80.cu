// Dispatch table of the sm_80/86/89 int8 GEMM: which tile configuration (configs_sm80.cuh) runs a given M.
#include "gemm/scaled_mm.h"
#include "gemm/sm80/configs_sm80.cuh"

#include "cutlass/numeric_types.h"

namespace vllm_sq {
namespace {

using namespace sm80;

struct ConfigEntry {
  const char* name;
  bool azp;  // asymmetric epilogue instantiated too
};
constexpr ConfigEntry kConfigs[] = {{"Decode", false}, {"Small", true}, {"Mid", false}, {"Large", true}};
constexpr int kNumConfigs = sizeof(kConfigs) / sizeof(kConfigs[0]);

int pick_config(const ScaledMmParams& p, bool azp) {
  if (azp) return p.m <= 128 ? 1 : 3;
  if (p.m <= 32) return 0;   // Decode
  if (p.m <= 128) return 1;  // Small
  if (p.m <= 512) return 2;  // Mid
  return 3;                  // Large
}

template <class Out, bool Azp>
const char* plan_typed(int config, const ScaledMmParams& p, GemmPlan* plan) {
  switch (config) {
    case 1: return plan_config<Small, Out, Azp>(p, plan);
    case 3: return plan_config<Large, Out, Azp>(p, plan);
    default: break;
  }
  if constexpr (!Azp) {
    switch (config) {
      case 0: return plan_config<Decode, Out, false>(p, plan);
      case 2: return plan_config<Mid, Out, false>(p, plan);
      default: break;
    }
  }
  return "sm80: configuration not available for this epilogue";
}

template <class Out, bool Azp>
const char* run_typed(int config, const ScaledMmParams& p, void* ws, cudaStream_t s) {
  switch (config) {
    case 1: return run_config<Small, Out, Azp>(p, ws, s);
    case 3: return run_config<Large, Out, Azp>(p, ws, s);
    default: break;
  }
  if constexpr (!Azp) {
    switch (config) {
      case 0: return run_config<Decode, Out, false>(p, ws, s);
      case 2: return run_config<Mid, Out, false>(p, ws, s);
      default: break;
    }
  }
  return "sm80: configuration not available for this epilogue";
}

}  // namespace

int sm80_num_configs() { return kNumConfigs; }

const char* sm80_config_name(int config) {
  return (config >= 0 && config < kNumConfigs) ? kConfigs[config].name : "";
}

const char* sm80_plan(const ScaledMmParams& p, bool azp, int config, GemmPlan* plan) {
  if (config < 0) {
    config = pick_config(p, azp);
  } else if (config >= kNumConfigs || (azp && !kConfigs[config].azp)) {
    return "sm80: no such configuration for this epilogue";
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

const char* sm80_run(const ScaledMmParams& p, bool azp, const GemmPlan& plan, void* workspace,
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
