// Tile configurations of the sm_90a int8 GEMM, one named struct each, with where the dispatch table uses it.
// The dispatch table (dispatch_sm90.cu) picks one by M, N, K; benchmarks/gemm.py times each of them.
//
// Two regimes (H100: 1,979 TOP/s int8 dense, ~3.0 TB/s):
// - decode, M <= 64: the weight (N*K bytes) dominates the traffic and the time floor is N*K / 3.0 TB/s. The
//   swap-AB configurations compute out^T = b^T a^T so the N weight rows fill the 128-row tile, with stream-K
//   over K; measured, the plain 64x128 ping-pong kernel was as fast or faster (benchmarks/kernel_notes.md).
// - prefill, M >= 1024: 2*M*N*K operations dominate; large 128x256 tiles (two consumer warpgroups, 64x256
//   accumulators each) on a persistent grid, with 2x1 clusters multicasting the weight tile to both CTAs.
#pragma once

#include "cute/tensor.hpp"
#include "cutlass/epilogue/dispatch_policy.hpp"
#include "cutlass/gemm/dispatch_policy.hpp"
#include "cutlass/gemm/kernel/tile_scheduler.hpp"

#include "gemm/scaled_mm.h"

namespace vllm_sq::sm90 {

using cute::Shape;
using cute::_1;
using cute::_2;
using cute::_16;
using cute::_32;
using cute::_64;
using cute::_128;
using cute::_256;

// Swap-AB, 128 (weight rows) x 16 (tokens) x 128 (K bytes), stream-K. Designed for M <= 16; the sweep
// preferred Small there (kept for benchmarks and future tables).
struct DecodeSwap16 {
  static constexpr bool kSwapAB = true;
  using Tile = Shape<_128, _16, _128>;
  using Cluster = Shape<_1, _1, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecializedCooperative;
  using Scheduler = cutlass::gemm::StreamKScheduler;
};

// Swap-AB, 128 x 32 x 128, stream-K (16 < M <= 32; not in the table after the sweep).
struct DecodeSwap32 {
  static constexpr bool kSwapAB = true;
  using Tile = Shape<_128, _32, _128>;
  using Cluster = Shape<_1, _1, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecializedCooperative;
  using Scheduler = cutlass::gemm::StreamKScheduler;
};

// Swap-AB, 128 x 64 x 128, stream-K. Table: 64 < M <= 256 with N <= 12288.
struct DecodeSwap64 {
  static constexpr bool kSwapAB = true;
  using Tile = Shape<_128, _64, _128>;
  using Cluster = Shape<_1, _1, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecializedCooperative;
  using Scheduler = cutlass::gemm::StreamKScheduler;
};

// Table: M <= 64. 64 x 128 x 128 ping-pong (two consumer warpgroups alternate tiles, so one's epilogue overlaps
// the other's MMA), persistent; 1x2 clusters multicast the shared activation tile.
struct Small {
  static constexpr bool kSwapAB = false;
  using Tile = Shape<_64, _128, _128>;
  using Cluster = Shape<_1, _2, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecializedPingpong;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecialized;
  using Scheduler = cutlass::gemm::PersistentScheduler;
};

// Table: 64 < M <= 256 with N > 12288. 128 x 128 x 128 cooperative with stream-K, which evens out the last
// partial wave.
struct Mid {
  static constexpr bool kSwapAB = false;
  using Tile = Shape<_128, _128, _128>;
  using Cluster = Shape<_1, _1, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecializedCooperative;
  using Scheduler = cutlass::gemm::StreamKScheduler;
};

// Table: M > 256. 128 x 256 x 128 cooperative, persistent, 2x1 clusters (weight tile multicast to both CTAs).
struct Large {
  static constexpr bool kSwapAB = false;
  using Tile = Shape<_128, _256, _128>;
  using Cluster = Shape<_2, _1, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecializedCooperative;
  using Scheduler = cutlass::gemm::PersistentScheduler;
};

// Alternative for large M (within 2% of Large in the sweep): 256 x 128 x 128 cooperative, persistent,
// 1x2 clusters (activation tile multicast).
struct LargeTall {
  static constexpr bool kSwapAB = false;
  using Tile = Shape<_256, _128, _128>;
  using Cluster = Shape<_1, _2, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecializedCooperative;
  using Scheduler = cutlass::gemm::PersistentScheduler;
};

// Defined in scaled_mm_sm90.cuh, explicitly instantiated in the scaled_mm_*sm90*.cu files.
template <class Cfg, class Out, bool Azp>
const char* plan_config(const ScaledMmParams& p, GemmPlan* plan);
template <class Cfg, class Out, bool Azp>
const char* run_config(const ScaledMmParams& p, void* workspace, cudaStream_t stream);

}  // namespace vllm_sq::sm90
