// Tile configurations of the sm_90a int8 GEMM, one named struct each, with where the dispatch table uses it.
// The dispatch table (dispatch_sm90.cu) picks one by M, N, K; benchmarks/gemm.py times each of them.
//
// Two regimes (H100: 1,979 TOP/s int8 dense, ~3.0 TB/s):
// - decode, M <= 128: the weight (N*K bytes) dominates the traffic and the time floor is N*K / 3.0 TB/s. At
//   M <= 8 the table uses the skinny-M kernel (gemm/skinny/, not CUTLASS) instead, except on K > 8192. The
//   DecodeN* configurations use 64-row N tiles with a deep K step (256) and one CTA per tile (no persistent
//   loop, no stream-K workspace); clusters multicast the activation tile. Measured (run 5): 1.1-1.3x the time
//   of a device copy moving the weight's bytes on qkv/gate_up, 1.25-1.35x on o_proj (benchmarks/kernel_notes.md).
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
using cute::_64;
using cute::_128;
using cute::_256;
using cute::_4;
using cute::_8;

// A configuration: the CTA tile (M x N x K bytes), the cluster, kernel and epilogue schedules, the tile
// scheduler (void: one CTA per tile), the mainloop stage count (0: as many as shared memory holds) and whether
// the kernel computes out^T = b^T a^T (swap-AB: the weight rows fill the tile's M side).
template <class Tile_, class Cluster_, class KernelSchedule_, class EpilogueSchedule_, class Scheduler_,
          int Stages = 0, bool SwapAB = false>
struct TileConfig {
  static constexpr bool kSwapAB = SwapAB;
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

// ---- decode: M <= 128 ------------------------------------------------------------------------------------------
// Table: M <= 32 with N <= 8192 (o_proj, down_proj, Llama-3 qkv); 32 < M <= 64 with 5120 < N <= 8192.
// 64 x 64 x 256, all stages, 1x8 clusters (the activation tile multicast to 8 CTAs): the tile vLLM's int8 kernel
// uses for small N at M <= 32. Run 5: level with vLLM on every small-N shape (7B o_proj 10.0-10.7 us), 7-13%
// faster than the 64 x 32 x 256 two-CTAs-per-SM tile it replaced.
struct DecodeN64c8 : TileConfig<Shape<_64, _64, _256>, Shape<_1, _8, _1>, WarpSpecialized, EpiTma, void> {};
// Table: 32 < M <= 64 with N <= 5120; 64 < M <= 128 when ceil(M/64) * ceil(N/64) CTAs fit one wave. The same
// tile without clusters (vLLM's choice at 32 < M <= 64): 1-3% ahead of DecodeN64c8 there, and at M = 128 on
// N = 4096 (128 CTAs) 10-20% ahead of every other configuration.
struct DecodeN64c1 : TileConfig<Shape<_64, _64, _256>, Shape<_1, _1, _1>, WarpSpecialized, EpiTma, void> {};
// Table: M <= 64 with 8192 < N <= 16384 (qkv), and M <= 32 with N > 16384 (gate_up). 64 x 64 x 256, 3 stages
// (two CTAs per SM), 1x4 clusters.
struct DecodeN64x2 : TileConfig<Shape<_64, _64, _256>, Shape<_1, _4, _1>, WarpSpecialized, EpiTma, void, 3> {};
// Table: 32 < M <= 64 with N > 16384 (gate_up). 64 x 128 x 128 ping-pong (two consumer warpgroups alternate
// tiles, one's epilogue overlapping the other's MMA), persistent, 1x2 clusters.
struct Small : TileConfig<Shape<_64, _128, _128>, Shape<_1, _2, _1>, Pingpong, EpiTma, Persistent> {};
// Table: 64 < M <= 128 when DecodeN64c1's CTAs would not fit one wave (13B o/down, qkv, gate_up). The same
// ping-pong tile with 2x1 clusters (vLLM's choice at M <= 128): the two 64-row halves of M share each weight
// tile through multicast, so the weight crosses L2 once. Run 5: 2-9% ahead of the swap-AB tiles it replaced.
struct SmallM2 : TileConfig<Shape<_64, _128, _128>, Shape<_2, _1, _1>, Pingpong, EpiTma, Persistent> {};

// ---- swap-AB: 128 < M <= 256 on small N --------------------------------------------------------------------------
// Weight rows x tokens x K: the weight rows fill the 128-row wgmma tile. With stream-K: the asymmetric epilogue's
// M <= 64 configuration (and the table's 128 < M <= 256 one-wave small-N case until run 20j).
struct DecodeSwap64
    : TileConfig<Shape<_128, _64, _128>, Shape<_1, _1, _1>, Cooperative, EpiCooperative, StreamK, 0, true> {};
// Table: 128 < M <= 256 with N <= 8192 when its tiles fit one wave, and 128 < M <= 192 with N > 8192 (where 128-row
// tiles would be mostly padding). The same tile on the persistent scheduler: one
// tile per CTA there, as stream-K gave it, without stream-K's workspace and fix-up. Run 20j (7B / Llama-3 o_proj and
// down_proj, M = 160 / 256): GEMM 0.3-4.6 us and quantization + GEMM 1.0-7.0 us faster than DecodeSwap64 (Llama-3
// down_proj M = 160 43.7 -> 36.7). Launched as a programmatic dependent of the quantization kernel it lost up to
// 20 us per pair on the swept shapes (run 20i: 7B down_proj M = 256 31.3 -> 38.5), so it is not.
struct DecodeSwap64p
    : TileConfig<Shape<_128, _64, _128>, Shape<_1, _1, _1>, Cooperative, EpiCooperative, Persistent, 0, true> {};

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

// Defined in scaled_mm_sm90.cuh, explicitly instantiated in the scaled_mm_*sm90*.cu files.
template <class Cfg, class Out, bool Azp>
const char* plan_config(const ScaledMmParams& p, GemmPlan* plan);
template <class Cfg, class Out, bool Azp>
const char* run_config(const ScaledMmParams& p, void* workspace, cudaStream_t stream);

}  // namespace vllm_sq::sm90
