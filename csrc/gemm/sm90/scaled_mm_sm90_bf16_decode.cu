// Instantiations of the sm_90a int8 GEMM (scaled_mm_sm90.cuh): output cutlass::bfloat16_t, symmetric epilogue.
// Split by config group so the build compiles them in parallel.
#include "gemm/sm90/scaled_mm_sm90.cuh"

namespace vllm_sq::sm90 {

template const char* plan_config<DecodeSwap16, cutlass::bfloat16_t, false>(const ScaledMmParams&, GemmPlan*);
template const char* run_config<DecodeSwap16, cutlass::bfloat16_t, false>(const ScaledMmParams&, void*, cudaStream_t);
template const char* plan_config<DecodeSwap32, cutlass::bfloat16_t, false>(const ScaledMmParams&, GemmPlan*);
template const char* run_config<DecodeSwap32, cutlass::bfloat16_t, false>(const ScaledMmParams&, void*, cudaStream_t);
template const char* plan_config<DecodeSwap64, cutlass::bfloat16_t, false>(const ScaledMmParams&, GemmPlan*);
template const char* run_config<DecodeSwap64, cutlass::bfloat16_t, false>(const ScaledMmParams&, void*, cudaStream_t);
template const char* plan_config<Small, cutlass::bfloat16_t, false>(const ScaledMmParams&, GemmPlan*);
template const char* run_config<Small, cutlass::bfloat16_t, false>(const ScaledMmParams&, void*, cudaStream_t);

}  // namespace vllm_sq::sm90
