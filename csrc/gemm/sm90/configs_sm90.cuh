// Tile configurations of the sm_90a int8 GEMM, one named struct each, with where the dispatch table uses it.
// The dispatch table (dispatch_sm90.cu) picks one by M, N, K; benchmarks/gemm.py times each of them.
//
// Two regimes (H100: 1,979 TOP/s int8 dense, ~3.0 TB/s):
// - decode, M <= 64: the weight (N*K bytes) dominates the traffic and the time floor is N*K / 3.0 TB/s. What
//   matters is how many SMs stream the weight at once: the Decode* configurations use narrow N tiles (32-128
//   weight rows per CTA) with a deep K step (256), one CTA per tile (no persistent loop, no stream-K workspace),
//   and where N/tile exceeds the 132 SMs a fixed stage count small enough for two CTAs per SM, so the whole
//   grid is resident instead of running in 1.3-1.5 waves. The swap-AB stream-K ones were the first attempt
//   (measured 1.45-3.1x the weight bound: benchmarks/kernel_notes.md).
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
using cute::_4;

// Every configuration names: kSwapAB, Tile (M x N x K of one CTA), Cluster, the kernel/epilogue schedules,
// the tile Scheduler (void: one CTA per tile) and kStages (0: as many mainloop stages as shared memory holds).

// Swap-AB, 128 (weight rows) x 16 (tokens) x 128 (K bytes), stream-K. Designed for M <= 16; the sweep
// preferred Small there (kept for benchmarks and future tables).
struct DecodeSwap16 {
  static constexpr bool kSwapAB = true;
  using Tile = Shape<_128, _16, _128>;
  using Cluster = Shape<_1, _1, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecializedCooperative;
  using Scheduler = cutlass::gemm::StreamKScheduler;
  static constexpr int kStages = 0;
};

// Swap-AB, 128 x 32 x 128, stream-K (16 < M <= 32; not in the table after the sweep).
struct DecodeSwap32 {
  static constexpr bool kSwapAB = true;
  using Tile = Shape<_128, _32, _128>;
  using Cluster = Shape<_1, _1, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecializedCooperative;
  using Scheduler = cutlass::gemm::StreamKScheduler;
  static constexpr int kStages = 0;
};

// Swap-AB, 128 x 64 x 128, stream-K. Table: 64 < M <= 256 with N <= 12288.
struct DecodeSwap64 {
  static constexpr bool kSwapAB = true;
  using Tile = Shape<_128, _64, _128>;
  using Cluster = Shape<_1, _1, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecializedCooperative;
  using Scheduler = cutlass::gemm::StreamKScheduler;
  static constexpr int kStages = 0;
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
  static constexpr int kStages = 0;
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
  static constexpr int kStages = 0;
};

// M around 256: 128 x 128 x 128 ping-pong (each consumer warpgroup owns a whole tile, so one's epilogue hides
// under the other's mainloop), persistent, 2x1 clusters (weight tile multicast to both CTAs).
struct MidPingpong {
  static constexpr bool kSwapAB = false;
  using Tile = Shape<_128, _128, _128>;
  using Cluster = Shape<_2, _1, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecializedPingpong;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecialized;
  using Scheduler = cutlass::gemm::PersistentScheduler;
  static constexpr int kStages = 0;
};

// Table: M > 256. 128 x 256 x 128 cooperative, persistent, 2x1 clusters (weight tile multicast to both CTAs).
struct Large {
  static constexpr bool kSwapAB = false;
  using Tile = Shape<_128, _256, _128>;
  using Cluster = Shape<_2, _1, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecializedCooperative;
  using Scheduler = cutlass::gemm::PersistentScheduler;
  static constexpr int kStages = 0;
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
  static constexpr int kStages = 0;
};

// Decode, M <= 64, small N (7B/13B o_proj and down_proj, N = 4096/5120): 64 x 32 x 256 tiles, N/32 CTAs (128
// for N = 4096) each streaming a 32-row slice of the weight; 1x4 clusters multicast the activation tile.
// All stages shared memory holds (9 x 24 KB): one CTA per SM with ~72 KB of weight in flight.
struct DecodeN32 {
  static constexpr bool kSwapAB = false;
  using Tile = Shape<_64, _32, _256>;
  using Cluster = Shape<_1, _4, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecialized;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecialized;
  using Scheduler = void;
  static constexpr int kStages = 0;
};

// As DecodeN32 with 4 stages (96 KB): two CTAs per SM, for N/32 above the SM count (13B: 160 CTAs).
struct DecodeN32x2 {
  static constexpr bool kSwapAB = false;
  using Tile = Shape<_64, _32, _256>;
  using Cluster = Shape<_1, _4, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecialized;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecialized;
  using Scheduler = void;
  static constexpr int kStages = 4;
};

// Decode, M <= 64, mid N (qkv, N = 12288/15360): 64 x 64 x 256, 3 stages (96 KB): two CTAs per SM, so the
// 192-240 CTAs are resident at once.
struct DecodeN64x2 {
  static constexpr bool kSwapAB = false;
  using Tile = Shape<_64, _64, _256>;
  using Cluster = Shape<_1, _4, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecialized;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecialized;
  using Scheduler = void;
  static constexpr int kStages = 3;
};

// Decode, M <= 64, large N (gate_up, N = 22016/27648): 64 x 128 x 128, 4 stages (96 KB): two CTAs per SM
// (172-216 CTAs resident at once).
struct DecodeN128x2 {
  static constexpr bool kSwapAB = false;
  using Tile = Shape<_64, _128, _128>;
  using Cluster = Shape<_1, _2, _1>;
  using KernelSchedule = cutlass::gemm::KernelTmaWarpSpecialized;
  using EpilogueSchedule = cutlass::epilogue::TmaWarpSpecialized;
  using Scheduler = void;
  static constexpr int kStages = 4;
};

// Defined in scaled_mm_sm90.cuh, explicitly instantiated in the scaled_mm_*sm90*.cu files.
template <class Cfg, class Out, bool Azp>
const char* plan_config(const ScaledMmParams& p, GemmPlan* plan);
template <class Cfg, class Out, bool Azp>
const char* run_config(const ScaledMmParams& p, void* workspace, cudaStream_t stream);

}  // namespace vllm_sq::sm90
