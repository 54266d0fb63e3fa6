// Instantiations of the sm_90a int8 GEMM (scaled_mm_sm90.cuh): output cutlass::bfloat16_t, symmetric, the 128 x 256 cooperative tile (M > 256).
// One file per (output dtype, config group) so the build compiles them in parallel.
#include "gemm/sm90/scaled_mm_sm90.cuh"

VLLM_SQ_SM90_INSTANTIATE(Large, cutlass::bfloat16_t, false)
