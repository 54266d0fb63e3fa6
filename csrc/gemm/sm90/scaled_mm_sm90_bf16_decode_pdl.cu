// Instantiations of the sm_90a int8 GEMM (scaled_mm_sm90.cuh): output cutlass::bfloat16_t, symmetric, the unclustered
// 64 x 64 x 256 decode tile (DecodeN64c1), built with CUTLASS_ENABLE_GDC_FOR_SM90 (csrc/CMakeLists.txt) and
// therefore launched as a programmatic dependent of the kernel before it (scaled_mm_sm90.cuh, kLaunchWithPdl).
#include "gemm/sm90/scaled_mm_sm90.cuh"

VLLM_SQ_SM90_INSTANTIATE(DecodeN64c1, cutlass::bfloat16_t, false)
