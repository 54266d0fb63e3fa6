// Instantiations of the sm_90a int8 GEMM (scaled_mm_sm90.cuh): output cutlass::half_t, symmetric, the ping-pong tiles (32 < M <= 1024; large M on short K) and the persistent swap-AB tile.
// One file per (output dtype, config group) so the build compiles them in parallel.
#include "gemm/sm90/scaled_mm_sm90.cuh"

VLLM_SQ_SM90_INSTANTIATE(Small, cutlass::half_t, false)
VLLM_SQ_SM90_INSTANTIATE(SmallM2, cutlass::half_t, false)
VLLM_SQ_SM90_INSTANTIATE(DecodeSwap64p, cutlass::half_t, false)
VLLM_SQ_SM90_INSTANTIATE(MidPingpong, cutlass::half_t, false)
