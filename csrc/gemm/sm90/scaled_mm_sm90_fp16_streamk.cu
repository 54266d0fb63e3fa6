// Instantiations of the sm_90a int8 GEMM (scaled_mm_sm90.cuh): output cutlass::half_t, symmetric, the stream-K
// tiles (DecodeSwap64, Mid). Built without CUTLASS_ENABLE_GDC_FOR_SM90 (CUTLASS 4.2's stream-K scheduler does not
// compile with it), so never launched as programmatic dependents.
#include "gemm/sm90/scaled_mm_sm90.cuh"

VLLM_SQ_SM90_INSTANTIATE(DecodeSwap64, cutlass::half_t, false)
VLLM_SQ_SM90_INSTANTIATE(Mid, cutlass::half_t, false)
