// Programmatic dependent launch (sm_90+): a kernel is placed on the GPU while the kernel before it in the stream
// drains, and waits (`wait_for_producer`) before it touches anything that kernel may write.
//
// Two uses. The quantization kernels (quant/quant_kernels.cu) are launched this way behind whatever comes before
// them: their CTAs are resident when it finishes. Their first instructions are `wait_for_producer`, then
// `launch_dependents`: the kernel after them may now be scheduled, while they quantize. That kernel is the skinny
// decode GEMM (gemm/skinny/), launched the same way: it requests its first weight pieces and loads the weight's
// scales and bias, waits, and only then reads the activation and its scales and stores. The order wait-then-trigger
// in the quantization kernel matters: when the GEMM starts, every kernel before the quantization has completed, so
// the only writes its early weight reads can race with are the quantization kernel's own. The GEMM is launched that
// way only when its weight, scales and bias are none of those (pdl_registry.h: a weight quantized on the fly is
// read after the wait, by an ordinary launch).
// Launched without the attribute (or after a kernel that never triggers), a kernel simply starts after its
// predecessor, as any kernel does, and the wait returns at once. Below sm_90 both instructions are no-ops.
//
// Of the CUTLASS GEMMs, only the unclustered decode tile (DecodeN64c1, M <= 64 on N <= 5120 and one-wave M <= 128)
// is launched as a dependent: built with CUTLASS_ENABLE_GDC_FOR_SM90, its producer warp waits before the first
// load, so only its launch and prologue overlap the quantization (gemm/sm90/scaled_mm_sm90.cuh). All decode and
// ping-pong tiles that way (run 9, benchmarks/kernel_notes.md) gained about 1 us per call on most shapes but lost
// 2-6 us on 13B qkv (1x4 clusters) and 6% of decode throughput at batch 64; the other tiles launch normally.
#pragma once

#include <cuda_runtime.h>

namespace vllm_sq::pdl {

// Launches kernel<<<grid, block, smem, stream>>>(args...), as a programmatic dependent of the kernel before it
// on the stream when `programmatic`.
template <class... Params, class... Args>
cudaError_t launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   bool programmatic, Args... args) {
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = programmatic ? &attr : nullptr;
  config.numAttrs = programmatic ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, args...);
}

__device__ __forceinline__ void launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void wait_for_producer() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

}  // namespace vllm_sq::pdl
