// Host side of programmatic dependent launch (pdl.cuh): which bytes the last quantization kernel on each stream
// writes. A kernel launched as its dependent may start before those writes land and may read, before its
// griddepcontrol.wait, only memory outside them. The skinny GEMM reads its weight, the weight's scales and the
// bias that early, so it is launched as a dependent only when all three lie outside the spans recorded for its
// stream (a weight just quantized by per_token_quant, say, is read after the wait instead).
//
// Only the kernel immediately before a dependent matters: a quantization kernel triggers its dependents only
// after its own wait, when every kernel before it has completed (pdl.cuh). A record goes stale when another
// library's kernel runs between the quantization and the GEMM; that kernel never triggers, so the GEMM starts only
// once all its blocks have exited. What the GEMM could then read early without a guarantee is a weight written
// by that very kernel, immediately before the GEMM on the same stream: weights are written when a model is
// loaded, not between a layer's quantization and its GEMM.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace vllm_sq::pdl {

// VLLM_SQ_PDL=0 turns the programmatic launches off: every kernel then starts after the one before it completes.
// For A/B measurements of what they buy or cost next to other libraries' kernels. Read once per process.
inline bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("VLLM_SQ_PDL");
    if (v == nullptr || std::string(v) == "1") return true;
    if (std::string(v) == "0") return false;
    throw std::invalid_argument(std::string("VLLM_SQ_PDL must be 0 or 1 (got '") + v + "')");
  }();
  return on;
}

struct Span {
  uintptr_t begin = 0, end = 0;  // [begin, end)
};

class Registry {
 public:
  static Registry& get() {
    static Registry r;
    return r;
  }
  // The quantization kernel just launched on `stream` writes these (pointer, bytes) ranges.
  void note_writes(cudaStream_t stream, std::initializer_list<std::pair<const void*, size_t>> ranges) {
    std::vector<Span> spans;
    for (const auto& [p, bytes] : ranges) {
      if (p != nullptr && bytes > 0) spans.push_back({reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p) + bytes});
    }
    const std::lock_guard<std::mutex> lock(mutex_);
    last_[stream] = std::move(spans);
  }
  // True when [p, p + bytes) overlaps nothing the last recorded kernel on `stream` writes.
  bool may_read_early(cudaStream_t stream, const void* p, size_t bytes) {
    const uintptr_t b = reinterpret_cast<uintptr_t>(p), e = b + bytes;
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = last_.find(stream);
    if (it == last_.end()) return true;
    for (const Span& s : it->second) {
      if (b < s.end && s.begin < e) return false;
    }
    return true;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<cudaStream_t, std::vector<Span>> last_;
};

}  // namespace vllm_sq::pdl
