// Instantiations of the sm_90a int8 GEMM (scaled_mm_sm90.cuh): output cutlass::half_t, symmetric, 64/128-wide decode tiles and the ping-pong tiles with 2x1 clusters.
// One file per (output dtype, config group) so the build compiles them in parallel.
#include "gemm/sm90/scaled_mm_sm90.cuh"

VLLM_SQ_SM90_INSTANTIATE(DecodeN64x2, cutlass::half_t, false)
VLLM_SQ_SM90_INSTANTIATE(DecodeN128x2, cutlass::half_t, false)
VLLM_SQ_SM90_INSTANTIATE(MidPingpong, cutlass::half_t, false)
VLLM_SQ_SM90_INSTANTIATE(SmallM2, cutlass::half_t, false)
