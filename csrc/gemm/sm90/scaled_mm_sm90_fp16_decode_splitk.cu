// Instantiations of the sm_90a int8 GEMM (scaled_mm_sm90.cuh): output cutlass::half_t, symmetric, swap-AB split-K decode tiles.
// One file per (output dtype, config group) so the build compiles them in parallel.
#include "gemm/sm90/scaled_mm_sm90.cuh"

VLLM_SQ_SM90_INSTANTIATE(DecodeSwap16SplitK, cutlass::half_t, false)
VLLM_SQ_SM90_INSTANTIATE(DecodeSwap32SplitK, cutlass::half_t, false)
VLLM_SQ_SM90_INSTANTIATE(DecodeSwap64SplitK, cutlass::half_t, false)
