// Instantiations of the sm_80/86/89 int8 GEMM (scaled_mm_sm80.cuh) with fp16 output.
#include "gemm/sm80/scaled_mm_sm80.cuh"

namespace vllm_sq::sm80 {

template const char* plan_config<Decode, cutlass::half_t, false>(const ScaledMmParams&, GemmPlan*);
template const char* run_config<Decode, cutlass::half_t, false>(const ScaledMmParams&, void*, cudaStream_t);
template const char* plan_config<Small, cutlass::half_t, false>(const ScaledMmParams&, GemmPlan*);
template const char* run_config<Small, cutlass::half_t, false>(const ScaledMmParams&, void*, cudaStream_t);
template const char* plan_config<Mid, cutlass::half_t, false>(const ScaledMmParams&, GemmPlan*);
template const char* run_config<Mid, cutlass::half_t, false>(const ScaledMmParams&, void*, cudaStream_t);
template const char* plan_config<Large, cutlass::half_t, false>(const ScaledMmParams&, GemmPlan*);
template const char* run_config<Large, cutlass::half_t, false>(const ScaledMmParams&, void*, cudaStream_t);
template const char* plan_config<Small, cutlass::half_t, true>(const ScaledMmParams&, GemmPlan*);
template const char* run_config<Small, cutlass::half_t, true>(const ScaledMmParams&, void*, cudaStream_t);
template const char* plan_config<Large, cutlass::half_t, true>(const ScaledMmParams&, GemmPlan*);
template const char* run_config<Large, cutlass::half_t, true>(const ScaledMmParams&, void*, cudaStream_t);

}  // namespace vllm_sq::sm80
