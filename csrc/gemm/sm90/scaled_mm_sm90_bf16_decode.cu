// Instantiations of the sm_90a int8 GEMM (scaled_mm_sm90.cuh): output cutlass::bfloat16_t, symmetric, the 64 x 64 x 256 decode tiles (M <= 128).
// One file per (output dtype, config group) so the build compiles them in parallel.
#include "gemm/sm90/scaled_mm_sm90.cuh"

VLLM_SQ_SM90_INSTANTIATE(DecodeN64c8, cutlass::bfloat16_t, false)
VLLM_SQ_SM90_INSTANTIATE(DecodeN64c1, cutlass::bfloat16_t, false)
VLLM_SQ_SM90_INSTANTIATE(DecodeN64x2, cutlass::bfloat16_t, false)
