// The skinny-M int8 GEMM with bulk (TMA) copies: the weight streamed by the copy engine instead of by every thread.
//
// Why. The per-thread variants (skinny_mma.cuh) move the weight in 16-byte cp.async / ld pieces, 64 bytes of a row
// per warp instruction; they reach ~2.15 TB/s on 7B down_proj where CUTLASS's TMA tiles reach ~2.37 (sweep 14).
// Here one producer warp issues `cp.async.bulk` copies of whole row segments (StageK contiguous bytes of each of
// the CTA's weight rows and tokens) into a ring of shared-memory stages, completion counted in bytes on an
// mbarrier; eight consumer warps run the MMAs from shared memory and release each stage on a second mbarrier.
// The grid is persistent (at most one CTA per SM): a CTA takes 32-row weight blocks in turn and its producer runs
// on into the next block while the consumers store the last one's sums, so the ring never drains between blocks.
// Launched as a programmatic dependent like the other skinny variants: the first stages' weight is requested
// before the activation's producer has finished, the tokens after the wait.
//
// Math: as skinny_mma.cuh (mma.sync m16n8k32 swap-AB, int32 sums exact, one rounding in the epilogue). Shared
// memory rows are StageK + 64 bytes apart: the 8 threads of an LDS.128 phase (rows g, g + 1, 16-byte column
// pieces t = 0..3) then hit 32 distinct banks. Requires sm_90 (cp.async.bulk, mbarrier tx counts); K % 16 == 0 and
// 16-byte aligned rows (checked at the op's entry) make every copy a legal bulk copy.
#pragma once

#include "gemm/skinny/skinny_mma.cuh"

namespace vllm_sq::skinny {

// Tokens per work item (8 per MMA column block), RowBlocks of 16 weight rows per item, consumer Warps, StageK
// bytes of K per stage, Stages in the ring.
template <int Tokens, int RowBlocks, int Warps, int StageK, int Stages>
struct BulkConfig {
  static_assert(Tokens % 8 == 0 && RowBlocks >= 1 && Warps >= 1 && Stages >= 2);
  static_assert(StageK % 64 == 0 && StageK / 64 >= Warps, "every consumer warp takes >= 1 64-byte step a stage");
  static constexpr int kTokens = Tokens;
  static constexpr int kTokenBlocks = Tokens / 8;
  static constexpr int kRowBlocks = RowBlocks;
  static constexpr int kRows = 16 * RowBlocks;
  static constexpr int kWarps = Warps;  // consumers; one more warp produces
  static constexpr int kStageK = StageK;
  static constexpr int kStages = Stages;
  static constexpr int kPitch = StageK + 64;  // bytes between rows in shared memory (bank spread, see above)
  static constexpr int kStageBytes = (kRows + Tokens) * kPitch;
  static constexpr int kRingBytes = Stages * kStageBytes;
  static_assert(kRows <= 32 && Tokens <= 32, "one producer lane per row");
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ void mbar_init(uint64_t* bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, uint32_t bytes) {  // arrive, and expect `bytes`
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(bar)) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {  // until phase `parity` completes
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT_%=;\n"
      "}" ::"r"(smem_addr(bar)),
      "r"(parity)
      : "memory");
}
// `bytes` (a multiple of 16) global -> shared, counted on `bar`; `policy` an L2 cache policy (createpolicy).
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, uint32_t bytes, uint64_t* bar,
                                          uint64_t policy) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;"
      ::"r"(smem_addr(dst)), "l"(src), "r"(bytes), "r"(smem_addr(bar)), "l"(policy)
      : "memory");
}
__device__ __forceinline__ uint64_t l2_policy_evict_first() {  // the weight is read once per call
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}
__device__ __forceinline__ uint64_t l2_policy_evict_normal() {  // the tokens: read by every CTA, then done
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}
__device__ __forceinline__ void consumer_sync(int threads) {  // the consumer warps only (named barrier 1)
  asm volatile("bar.sync 1, %0;" ::"r"(threads) : "memory");
}
#endif

// Grid: min(work items, SMs), persistent; item i = (weight row block i / token blocks, token block i % token
// blocks): at M > kTokens the items sharing a weight block run at once on neighbouring CTAs, so the weight crosses
// HBM once and is shared in L2.
// Block: kWarps consumer warps + 1 producer warp.
template <class Cfg, class Out>
__global__ void __launch_bounds__((Cfg::kWarps + 1) * 32, 1) skinny_bulk_scaled_mm(const ScaledMmParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int TB = Cfg::kTokenBlocks, RB = Cfg::kRowBlocks, W = Cfg::kWarps, S = Cfg::kStages;
  constexpr int SK = Cfg::kStageK, PITCH = Cfg::kPitch;
  extern __shared__ __align__(128) int4 bulk_ring[];  // [stage][kRows weight rows, then kTokens token rows][PITCH]
  int8_t* const ring = reinterpret_cast<int8_t*>(bulk_ring);
  __shared__ __align__(8) uint64_t full[S], empty[S];
  __shared__ int partial[W][RB * TB * 4][32];

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t token_blocks = (int64_t(p.m) + Cfg::kTokens - 1) / Cfg::kTokens;
  const int64_t items = (int64_t(p.n) + Cfg::kRows - 1) / Cfg::kRows * token_blocks;
  const int64_t my_items = items > blockIdx.x ? (items - blockIdx.x + gridDim.x - 1) / gridDim.x : 0;
  const int steps = (p.k + SK - 1) / SK;  // stages per item
  const int64_t total = my_items * steps;  // stages this CTA consumes

  if (threadIdx.x == 0) {
    for (int s = 0; s < S; ++s) {
      mbar_init(&full[s], 1);   // the producer's expect_tx arrival (+ the copies' bytes)
      mbar_init(&empty[s], W);  // one arrival per consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();

  if (warp == W) {  // producer
    const uint64_t w_policy = l2_policy_evict_first(), x_policy = l2_policy_evict_normal();
    // Copies stage g of this CTA (its weight rows and/or its token rows) into slot g % S. A row past N or M
    // copies the last valid row: its sums land where the epilogue never stores.
    auto issue = [&](int64_t g, bool weight, bool tokens) {
      const int slot = int(g % S);
      const int64_t item = blockIdx.x + (g / steps) * gridDim.x;
      const int64_t k0 = (g % steps) * int64_t(SK);
      const uint32_t bytes = uint32_t(min(int64_t(SK), int64_t(p.k) - k0));
      int8_t* stage = ring + size_t(slot) * Cfg::kStageBytes;
      if (weight) {
        if (lane == 0) mbar_expect_tx(&full[slot], bytes * (Cfg::kRows + Cfg::kTokens));
        __syncwarp();
        if (lane < Cfg::kRows) {
          const int64_t n = min((item / token_blocks) * Cfg::kRows + lane, int64_t(p.n) - 1);
          bulk_copy(stage + lane * PITCH, p.b + n * p.k + k0, bytes, &full[slot], w_policy);
        }
      }
      if (tokens && lane < Cfg::kTokens) {
        const int64_t m = min((item % token_blocks) * Cfg::kTokens + lane, int64_t(p.m) - 1);
        bulk_copy(stage + (Cfg::kRows + lane) * PITCH, p.a + m * p.k + k0, bytes, &full[slot], x_policy);
      }
    };
    const int64_t ahead = min(int64_t(S), total);
    for (int64_t g = 0; g < ahead; ++g) issue(g, true, false);
    pdl::wait_for_producer();
    for (int64_t g = 0; g < ahead; ++g) issue(g, false, true);
    for (int64_t g = ahead; g < total; ++g) {
      mbar_wait(&empty[g % S], uint32_t((g / S - 1) & 1));  // the consumers are done with use g / S - 1
      issue(g, true, true);
    }
    return;
  }

  // consumers
  pdl::wait_for_producer();  // before the epilogue reads the activation's scales
  const int g8 = lane >> 2, t = lane & 3;
  int acc[RB][TB][4] = {};
  for (int64_t g = 0; g < total; ++g) {
    const int slot = int(g % S);
    const int64_t k0 = (g % steps) * int64_t(SK);
    mbar_wait(&full[slot], uint32_t((g / S) & 1));
    const int8_t* stage = ring + size_t(slot) * Cfg::kStageBytes;
    for (int s = warp; s < SK / 64; s += W) {
      const int64_t k = k0 + 64 * s;
      if (k >= p.k) break;  // the item's last stage may be short
      const bool in = k + 16 * t < p.k;  // a thread's 16 bytes are all in or all out (K % 16 == 0)
      const int col = 64 * s + 16 * t;
      int4 wv[RB][2];
      int4 xv[TB];
#pragma unroll
      for (int rb = 0; rb < RB; ++rb) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          wv[rb][h] = in ? *reinterpret_cast<const int4*>(stage + (16 * rb + 8 * h + g8) * PITCH + col)
                         : make_int4(0, 0, 0, 0);
        }
      }
#pragma unroll
      for (int j = 0; j < TB; ++j) {
        xv[j] = in ? *reinterpret_cast<const int4*>(stage + (Cfg::kRows + 8 * j + g8) * PITCH + col)
                   : make_int4(0, 0, 0, 0);
      }
      mma_tile<RB, TB>(acc, wv, xv);
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(&empty[slot]);
    if (g % steps == steps - 1) {  // the item's last stage: sum the warps' partials and store
      const int64_t item = blockIdx.x + (g / steps) * gridDim.x;
      store_sums<RB, TB, W, Out>(acc, partial, p, (item / token_blocks) * Cfg::kRows,
                                 (item % token_blocks) * Cfg::kTokens, threadIdx.x,
                                 [] { consumer_sync(W * 32); });
      consumer_sync(W * 32);  // partial[] is free for the next item
#pragma unroll
      for (int rb = 0; rb < RB; ++rb) {
#pragma unroll
        for (int j = 0; j < TB; ++j) {
#pragma unroll
          for (int c = 0; c < 4; ++c) acc[rb][j][c] = 0;
        }
      }
    }
  }
#else
  __trap();  // sm_90 only: the launcher refuses other devices
#endif
}

}  // namespace vllm_sq::skinny
