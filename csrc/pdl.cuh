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
// The CUTLASS tiles marked in the sm90 dispatch table (gemm/sm90/dispatch_sm90.cu: DecodeN64c1 / c8, Small, SmallM2,
// MidPingpong, at M <= 256) are launched the same way. Built with CUTLASS_ENABLE_GDC_FOR_SM90, their producer warp
// waits before its first load, so only their launch and prologue overlap the quantization; they trigger their own
// dependents after the main loop. The clustered DecodeN64x2 and the large-M launches lost time that way (runs 9, 20f).
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
