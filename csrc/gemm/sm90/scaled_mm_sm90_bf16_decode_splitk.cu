// Instantiations of the sm_90a int8 GEMM (scaled_mm_sm90.cuh): output cutlass::bfloat16_t, symmetric, swap-AB split-K decode tiles.
// One file per (output dtype, config group) so the build compiles them in parallel.
#include "gemm/sm90/scaled_mm_sm90.cuh"

VLLM_SQ_SM90_INSTANTIATE(DecodeSwap16SplitK, cutlass::bfloat16_t, false)
VLLM_SQ_SM90_INSTANTIATE(DecodeSwap32SplitK, cutlass::bfloat16_t, false)
VLLM_SQ_SM90_INSTANTIATE(DecodeSwap64SplitK, cutlass::bfloat16_t, false)
