// Tile configurations of the sm_90a int8 GEMM, one named struct each, with where the dispatch table uses it.
// The dispatch table (dispatch_sm90.cu) picks one by M, N, K; benchmarks/gemm.py times each of them.
//
// Two regimes (H100: 1,979 TOP/s int8 dense, ~3.0 TB/s):
// - decode, M <= 64: the weight (N*K bytes) dominates the traffic and the time floor is N*K / 3.0 TB/s. The
//   DecodeN* configurations use narrow N tiles (32-128 weight rows per CTA) with a deep K step (256), one CTA
//   per tile (no persistent loop, no stream-K workspace), and a fixed stage count small enough for two CTAs per
//   SM, so grids larger than the 132 SMs are resident at once. Measured (run 4): 1.2-1.4x the weight bound on
//   qkv/gate_up, ~2x on o_proj (benchmarks/kernel_notes.md). The swap-AB stream-K ones serve 64 < M <= 256.
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
using cute::_8;

// A configuration: the CTA tile (M x N x K bytes), the cluster, kernel and epilogue schedules, the tile
// scheduler (void: one CTA per tile), the mainloop stage count (0: as many as shared memory holds), whether
// the kernel computes out^T = b^T a^T (swap-AB: the weight rows fill the tile's M side) and whether the stream-K
// scheduler is forced into split-K (K cut into equal parts so that tiles x splits fill the SMs once).
template <class Tile_, class Cluster_, class KernelSchedule_, class EpilogueSchedule_, class Scheduler_,
          int Stages = 0, bool SwapAB = false, bool SplitK = false>
struct TileConfig {
  static constexpr bool kSwapAB = SwapAB;
  static constexpr bool kSplitK = SplitK;
  static constexpr int kStages = Stages;
  using Tile = Tile_;
  using Cluster = Cluster_;
  using KernelSchedule = KernelSchedule_;
  using EpilogueSchedule = EpilogueSchedule_;
  using Scheduler = Scheduler_;
};

using WarpSpecialized = cutlass::gemm::KernelTmaWarpSpecialized;  // one consumer warpgroup
using Cooperative = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
using Pingpong = cutlass::gemm::KernelTmaWarpSpecializedPingpong;
using EpiTma = cutlass::epilogue::TmaWarpSpecialized;
using EpiCooperative = cutlass::epilogue::TmaWarpSpecializedCooperative;
using StreamK = cutlass::gemm::StreamKScheduler;
using Persistent = cutlass::gemm::PersistentScheduler;

// ---- decode: M <= 64 -----------------------------------------------------------------------------------------
// Not in the table since run 5 (DecodeN64c8 is 7-13% faster on the same shapes); kept for the sweep.
// 64 x 32 x 256, 4 stages (96 KB: two CTAs per SM), 1x4 clusters; N/32 CTAs (128 for N = 4096).
struct DecodeN32x2 : TileConfig<Shape<_64, _32, _256>, Shape<_1, _4, _1>, WarpSpecialized, EpiTma, void, 4> {};
// Table: M <= 64, N <= 8192 (o_proj, down_proj, Llama-3 qkv). 64 x 64 x 256 with all stages and 1x8 clusters
// (the activation tile multicast to 8 CTAs), the tile vLLM's int8 kernel uses for small N at M <= 32. Run 5:
// 10.0-10.2 us on 7B o_proj at M <= 64 against DecodeN32x2's 10.9-11.7, level with vLLM on every small-N shape.
struct DecodeN64c8 : TileConfig<Shape<_64, _64, _256>, Shape<_1, _8, _1>, WarpSpecialized, EpiTma, void> {};
// Experiment for the next sweep (not in the table): the same tile without clusters, vLLM's choice for
// 32 < M <= 64, where run 5 had DecodeN64c8 2-4% behind vLLM on 7B/13B o_proj.
struct DecodeN64c1 : TileConfig<Shape<_64, _64, _256>, Shape<_1, _1, _1>, WarpSpecialized, EpiTma, void> {};
// Table: M <= 64, 8192 < N (qkv; gate_up up to M = 32). 64 x 64 x 256, 3 stages (two CTAs per SM).
struct DecodeN64x2 : TileConfig<Shape<_64, _64, _256>, Shape<_1, _4, _1>, WarpSpecialized, EpiTma, void, 3> {};
// Table: 64 < M <= 128 with 8192 < N <= 16384 (qkv). 64 x 128 x 128, 4 stages (two CTAs per SM).
struct DecodeN128x2 : TileConfig<Shape<_64, _128, _128>, Shape<_1, _2, _1>, WarpSpecialized, EpiTma, void, 4> {};
// Table: 32 < M <= 64 with N > 16384 (gate_up). 64 x 128 x 128 ping-pong (two consumer warpgroups alternate
// tiles, one's epilogue overlapping the other's MMA), persistent, 1x2 clusters.
struct Small : TileConfig<Shape<_64, _128, _128>, Shape<_1, _2, _1>, Pingpong, EpiTma, Persistent> {};
// Experiment for the next sweep (not in the table): the same ping-pong tile with 2x1 clusters, vLLM's choice for
// 64 < M <= 128: the two 64-row halves of M share (multicast) each weight tile, so the weight crosses L2 once.
// Run 5 had vLLM 3-6% ahead at M = 128 on qkv/gate_up.
struct SmallM2 : TileConfig<Shape<_64, _128, _128>, Shape<_2, _1, _1>, Pingpong, EpiTma, Persistent> {};

// ---- swap-AB with stream-K: 64 < M <= 256 ----------------------------------------------------------------------
// Weight rows x tokens x K. Not in the table (kept for the sweep).
struct DecodeSwap16
    : TileConfig<Shape<_128, _16, _128>, Shape<_1, _1, _1>, Cooperative, EpiCooperative, StreamK, 0, true> {};
// Table: 64 < M <= 128, N <= 8192, when ceil(M/32) * ceil(N/128) tiles fit one wave of SMs.
struct DecodeSwap32
    : TileConfig<Shape<_128, _32, _128>, Shape<_1, _1, _1>, Cooperative, EpiCooperative, StreamK, 0, true> {};
// Table: 64 < M <= 128 otherwise (N <= 8192) or N > 16384; 128 < M <= 256 with N <= 8192 when its tiles fit one
// wave. Also the asymmetric epilogue's M <= 64 configuration.
struct DecodeSwap64
    : TileConfig<Shape<_128, _64, _128>, Shape<_1, _1, _1>, Cooperative, EpiCooperative, StreamK, 0, true> {};

// ---- swap-AB split-K: decode on narrow weights (o_proj, down_proj) ----------------------------------------------
// With 128 weight rows per tile, N = 4096 gives only 32 tiles: one CTA per tile would leave 100 of 132 SMs idle
// and the weight stream would run at a quarter of the memory bandwidth. Split-K cuts K into
// s = min(SMs / tiles, K tiles / 4) parts (4 for 7B o/down), so ~128 CTAs each stream 128 rows x K/s of the
// weight; the parts meet in an int32 workspace (order-free: integer sums are exact, so the result is
// deterministic although the reduction order is not) and the last part runs the epilogue.
// Experiments for the next sweep (not in the table).
struct DecodeSwap16SplitK : TileConfig<Shape<_128, _16, _128>, Shape<_1, _1, _1>, Cooperative, EpiCooperative,
                                       StreamK, 0, true, true> {};
struct DecodeSwap32SplitK : TileConfig<Shape<_128, _32, _128>, Shape<_1, _1, _1>, Cooperative, EpiCooperative,
                                       StreamK, 0, true, true> {};
struct DecodeSwap64SplitK : TileConfig<Shape<_128, _64, _128>, Shape<_1, _1, _1>, Cooperative, EpiCooperative,
                                       StreamK, 0, true, true> {};

// ---- M around 256 to 1024 --------------------------------------------------------------------------------------
// Table: 128 < M <= 256 (except the one-wave small-N case); M <= 1024 when 128x256 tiles would leave most of a
// last wave idle (13B o/down). 128 x 128 x 128 ping-pong, persistent, 2x1 clusters (weight tile multicast).
struct MidPingpong : TileConfig<Shape<_128, _128, _128>, Shape<_2, _1, _1>, Pingpong, EpiTma, Persistent> {};
// Asymmetric epilogue, 64 < M <= 1024. 128 x 128 x 128 cooperative with stream-K (evens out the last wave).
struct Mid : TileConfig<Shape<_128, _128, _128>, Shape<_1, _1, _1>, Cooperative, EpiCooperative, StreamK> {};

// ---- prefill: M > 256 ------------------------------------------------------------------------------------------
// Table: M > 256 (see MidPingpong for the exception). 128 x 256 x 128 cooperative (two consumer warpgroups,
// 64x256 accumulators each), persistent, 2x1 clusters (weight tile multicast to both CTAs).
struct Large : TileConfig<Shape<_128, _256, _128>, Shape<_2, _1, _1>, Cooperative, EpiCooperative, Persistent> {};
// Within 2% of Large in the sweeps: 256 x 128 x 128, 1x2 clusters (activation tile multicast).
struct LargeTall
    : TileConfig<Shape<_256, _128, _128>, Shape<_1, _2, _1>, Cooperative, EpiCooperative, Persistent> {};

// Defined in scaled_mm_sm90.cuh, explicitly instantiated in the scaled_mm_*sm90*.cu files.
template <class Cfg, class Out, bool Azp>
const char* plan_config(const ScaledMmParams& p, GemmPlan* plan);
template <class Cfg, class Out, bool Azp>
const char* run_config(const ScaledMmParams& p, void* workspace, cudaStream_t stream);

}  // namespace vllm_sq::sm90
