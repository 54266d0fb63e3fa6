// Instantiations of the sm_90a int8 GEMM (scaled_mm_sm90.cuh): output cutlass::bfloat16_t, symmetric, the ping-pong tiles (32 < M <= 1024; large M on short K) and the persistent swap-AB tile.
// One file per (output dtype, config group) so the build compiles them in parallel.
#include "gemm/sm90/scaled_mm_sm90.cuh"

VLLM_SQ_SM90_INSTANTIATE(Small, cutlass::bfloat16_t, false)
VLLM_SQ_SM90_INSTANTIATE(SmallM2, cutlass::bfloat16_t, false)
VLLM_SQ_SM90_INSTANTIATE(DecodeSwap64p, cutlass::bfloat16_t, false)
VLLM_SQ_SM90_INSTANTIATE(MidPingpong, cutlass::bfloat16_t, false)
