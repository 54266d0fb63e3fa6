// Tile configurations of the sm_80/86/89 int8 GEMM (CUTLASS 2.x, mma.sync 16x8x32), one named struct each with
// the M range it is meant for; the dispatch table is in dispatch_sm80.cu. Shared memory per stage is
// (TileM + TileN) * TileK bytes; every configuration stays under the 100 KB an sm_86/89 CTA can have.
#pragma once

#include "cutlass/gemm/gemm.h"

#include "gemm/scaled_mm.h"

namespace vllm_sq::sm80 {

// M <= 32 (decode): 32 x 64 x 128 tiles, 2 warps of 32x32; deep pipeline (5 x 12 KB) to keep weight loads in flight.
struct Decode {
  using Tile = cutlass::gemm::GemmShape<32, 64, 128>;
  using Warp = cutlass::gemm::GemmShape<32, 32, 128>;
  static constexpr int kStages = 5;
};

// 32 < M <= 128: 64 x 128 x 128, 2 warps of 64x64, 4 stages (96 KB).
struct Small {
  using Tile = cutlass::gemm::GemmShape<64, 128, 128>;
  using Warp = cutlass::gemm::GemmShape<64, 64, 128>;
  static constexpr int kStages = 4;
};

// 128 < M <= 512: 128 x 128 x 64, 4 warps of 64x64, 5 stages (80 KB).
struct Mid {
  using Tile = cutlass::gemm::GemmShape<128, 128, 64>;
  using Warp = cutlass::gemm::GemmShape<64, 64, 64>;
  static constexpr int kStages = 5;
};

// M > 512 (prefill): 128 x 256 x 64, 8 warps of 64x64, 3 stages (72 KB).
struct Large {
  using Tile = cutlass::gemm::GemmShape<128, 256, 64>;
  using Warp = cutlass::gemm::GemmShape<64, 64, 64>;
  static constexpr int kStages = 3;
};

// Defined in scaled_mm_sm80.cuh, explicitly instantiated in scaled_mm_sm80_{bf16,fp16}.cu.
template <class Cfg, class Out, bool Azp>
const char* plan_config(const ScaledMmParams& p, GemmPlan* plan);
template <class Cfg, class Out, bool Azp>
const char* run_config(const ScaledMmParams& p, void* workspace, cudaStream_t stream);

}  // namespace vllm_sq::sm80
