// Programmatic dependent launch (sm_90+): a decode GEMM streams its weight while the kernel that quantizes its
// activation is still running.
//
// The producer (every quantization kernel, quant/quant_kernels.cu) executes `launch_dependents` as it starts:
// a kernel launched after it with cudaLaunchAttributeProgrammaticStreamSerialization (the skinny GEMM,
// gemm/skinny/) may then be scheduled at once instead of at the producer's completion. The consumer reads only
// its weight before `wait_for_producer`, which returns when the producer grid has completed and its writes are
// visible; the activation, its scales and every store come after it. It is launched that way only when its
// weight is none of what the producer writes (pdl_registry.h: a weight quantized on the fly is read after the
// wait, by an ordinary launch). Launched without the attribute (or after a
// kernel that never triggers), a consumer simply starts after its predecessor, as any kernel does, and the wait
// returns at once. Below sm_90 both are no-ops.
//
// The CUTLASS GEMMs are launched normally. Built with CUTLASS_ENABLE_GDC_FOR_SM90 and launched as dependents
// (run 9, benchmarks/kernel_notes.md), the decode tiles gained about 1 us per call on most shapes but lost 2-6 us on
// 13B qkv, and 7B decode at batch 64 served 6% fewer tokens/s relative to vLLM's INT8 path; reverted.
#pragma once

namespace vllm_sq::pdl {

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
