// Per-device facts the kernels' host code needs, queried once per device (attribute reads, no stream work: safe
// during CUDA-graph capture).
#pragma once

#include <c10/cuda/CUDAException.h>
#include <c10/util/Exception.h>
#include <cuda_runtime.h>

#include <string>

namespace vllm_sq {

struct DeviceInfo {
  int arch = 0;  // 10 * major + minor
  int sm_count = 0;
  int smem_per_sm = 0;            // shared memory of a multiprocessor, bytes
  int smem_reserved_per_cta = 0;  // of it, what the system takes per resident CTA
  int threads_per_sm = 0;         // resident threads of a multiprocessor (2,048 on sm_80/90, 1,536 on sm_86/89)
  int regs_per_sm = 0;            // 32-bit registers of a multiprocessor
};

inline const DeviceInfo& device_info(int device) {
  static DeviceInfo infos[64];
  TORCH_CHECK(device >= 0 && device < 64, "device index ", std::to_string(device), " out of range");
  DeviceInfo& info = infos[device];
  if (info.arch == 0) {
    int major = 0, minor = 0, sms = 0, smem = 0, reserved = 0, threads = 0, regs = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, device));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&threads, cudaDevAttrMaxThreadsPerMultiProcessor, device));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&regs, cudaDevAttrMaxRegistersPerMultiprocessor, device));
    info.sm_count = sms;
    info.smem_per_sm = smem;
    info.smem_reserved_per_cta = reserved;
    info.threads_per_sm = threads;
    info.regs_per_sm = regs;
    info.arch = major * 10 + minor;
  }
  return info;
}

}  // namespace vllm_sq
