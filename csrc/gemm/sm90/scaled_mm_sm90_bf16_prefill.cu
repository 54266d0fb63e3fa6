// Instantiations of the sm_90a int8 GEMM (scaled_mm_sm90.cuh): output cutlass::bfloat16_t, symmetric epilogue.
// Split by config group so the build compiles them in parallel.
#include "gemm/sm90/scaled_mm_sm90.cuh"

namespace vllm_sq::sm90 {

template const char* plan_config<Mid, cutlass::bfloat16_t, false>(const ScaledMmParams&, GemmPlan*);
template const char* run_config<Mid, cutlass::bfloat16_t, false>(const ScaledMmParams&, void*, cudaStream_t);
template const char* plan_config<Large, cutlass::bfloat16_t, false>(const ScaledMmParams&, GemmPlan*);
template const char* run_config<Large, cutlass::bfloat16_t, false>(const ScaledMmParams&, void*, cudaStream_t);
template const char* plan_config<LargeTall, cutlass::bfloat16_t, false>(const ScaledMmParams&, GemmPlan*);
template const char* run_config<LargeTall, cutlass::bfloat16_t, false>(const ScaledMmParams&, void*, cudaStream_t);

}  // namespace vllm_sq::sm90
