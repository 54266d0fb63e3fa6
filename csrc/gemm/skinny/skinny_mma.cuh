// The skinny-M int8 GEMM: decode batches of a few tokens, where the weight's N*K bytes are the whole cost.
//
// Why not CUTLASS. A 64-row wgmma tile holding 1-16 tokens wastes most of the tensor core, which does not matter,
// but the CUTLASS kernels also pay a fixed cost per CTA (TMA descriptor fetch, barrier setup, cluster launch,
// a pipeline that fills and drains once per tile) and give one CTA a long serial K loop over 64-256 weight rows.
// Here the weight is streamed in 16-byte cp.async pieces by every warp of the GPU at once: a CTA owns 16 or 32
// weight rows and its warps split K between them, through a shared-memory ring the warps fill together, each copy
// instruction taking 512 contiguous bytes of one row (benchmarks/read_bw.cu: 4-7% more read bandwidth than 64
// bytes of eight rows, the pattern of the thread-private ring this replaced), with mbarriers between the warps.
// Launched as a programmatic dependent of the
// quantization kernel before it (pdl.cuh): the first weight pieces are requested before the activation exists
// (run 8: the quantization adds 2.3-3.5 us in front of the GEMM instead of 3.4-6.4).
//
// Math. mma.sync.m16n8k32 (s8 x s8 -> s32) with the weight as the 16-row A operand and up to 8 tokens as
// the B operand (swap-AB: D[n, m] = sum_k W[n,k] * X[m,k]). A dot product does not care in which order K is
// summed, so each thread loads 16 contiguous bytes of one weight row (and of one token) and feeds them to two
// MMAs as if they were the fragment's "k = 4t..4t+3, 16+4t..16+4t+3" pieces: thread (g, t) of the warp holds
// physical k = 16t..16t+15, the same permutation for A and B, so every product still pairs W[n,k] with X[m,k].
// int32 accumulation is exact (|acc| <= 127^2 * K < 2^31 for K < 133k); the warps' partial sums are added in
// shared memory (int32, exact), then out = sa[m] * (sb[n] * float(acc)) + bias[n], rounded once to bf16/fp16:
// the same expression and rounding as the CUTLASS epilogue.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "gemm/scaled_mm.h"
#include "pdl.cuh"

namespace vllm_sq::skinny {

// Tokens: per CTA (8 per MMA column block); RowBlocks: 16-row weight blocks per CTA; Warps: split K; Stages: ring
// depth in chunks of 64 x Warps K bytes of all the CTA's rows and tokens, Stages - 1 of them in flight;
// CtasPerSm: how many CTAs an SM may hold (the launch pads shared memory so that no more fit, scaled_mm_skinny.cu).
template <int Tokens, int RowBlocks, int Warps, int Stages, int CtasPerSm>
struct SkinnyConfig {
  static_assert(Tokens % 8 == 0 && RowBlocks >= 1 && Stages >= 2);
  static_assert(Warps == 8 && (16 * RowBlocks) % Warps == 0 && Tokens % Warps == 0,
                "one 512-byte row chunk per copy instruction, rows and tokens split over 8 warps");
  static constexpr int kStages = Stages;
  static constexpr int kCtasPerSm = CtasPerSm;
  static constexpr int kTokens = Tokens;
  static constexpr int kTokenBlocks = Tokens / 8;
  static constexpr int kRowBlocks = RowBlocks;
  static constexpr int kRows = 16 * RowBlocks;
  static constexpr int kWarps = Warps;
  // K bytes per stage, and the bytes per row in a stage, padded by 64 so that the rows g and g + 1
  // read by one quarter-warp's 16-byte loads fall on disjoint banks.
  static constexpr int kChunk = 64 * Warps;
  static constexpr int kPitch = kChunk + 64;
  static constexpr int kStageBytes = (kRows + Tokens) * kPitch;
  // The warps' int32 partial sums, [warp][fragment][lane], summed by the epilogue.
  static constexpr int kPartialBytes = Warps * RowBlocks * kTokenBlocks * 4 * 32 * 4;
  // Dynamic shared memory: the ring's stages (the partial sums reuse them after the main loop), then a full and an
  // empty mbarrier per stage.
  static constexpr int kSmemBytes = Stages * (kStageBytes + 16);
  static_assert(kPartialBytes <= Stages * kStageBytes);
};

// 16 bytes global -> shared without registers; src_bytes == 0 writes zeros (a piece past K). cg: weights bypass
// L1; ca: tokens, read by every CTA of the SM, stay in it.
__device__ __forceinline__ void copy_weight_async(int4* dst, const int8_t* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(
                   static_cast<unsigned>(__cvta_generic_to_shared(dst))),
               "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void copy_token_async(int4* dst, const int8_t* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;" ::"r"(
                   static_cast<unsigned>(__cvta_generic_to_shared(dst))),
               "l"(src), "r"(src_bytes));
}
// The shared ring's barriers: `full` completes when every thread's copies of a stage have landed (each thread
// arrives through cp.async.mbarrier.arrive, without raising the expected count), `empty` when every warp has read
// the stage.
__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint64_t* bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(bar)) : "memory");
}
__device__ __forceinline__ void mbar_arrive_on_copies(uint64_t* bar) {  // once this thread's copies so far land
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(smem_addr(bar)) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t* bar, unsigned parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT_%=;\n"
      "}\n" ::"r"(smem_addr(bar)),
      "r"(parity)
      : "memory");
}

__device__ __forceinline__ void mma_s8(int (&d)[4], int a0, int a1, int a2, int a3, int b0, int b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

template <class Out>
__device__ __forceinline__ float to_float(Out v);
template <>
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

template <class Out>
__device__ __forceinline__ Out from_float(float v);
template <>
__device__ __forceinline__ __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }

// The epilogue's operands for the outputs one thread writes, loaded before the main loop: after it, the weight's
// scales and bias would be a DRAM miss (and the activation's scales an L2 hit) on the kernel's critical path.
// Thread i of the CTA writes outputs i, i + 32 W, ...; output o is accumulator register c of lane l of fragment
// (row block, token block), o = 32 * ((rb * TB + j) * 4 + c) + l, after the warps' partials are summed.
template <class Cfg, class Out>
struct Epilogue {
  static constexpr int TB = Cfg::kTokenBlocks, W = Cfg::kWarps;
  static constexpr int kFrags = Cfg::kRowBlocks * TB * 4;
  static constexpr int kOutputs = kFrags * 32;                         // per CTA
  static constexpr int kPerThread = (kOutputs + W * 32 - 1) / (W * 32);  // the last round may leave threads idle
  float sb[kPerThread], bias[kPerThread], sa[kPerThread];  // zero for outputs past N or M

  __device__ __forceinline__ static bool live(int r) { return threadIdx.x + r * W * 32 < kOutputs; }

  // Row and token of this thread's output r (recomputed where needed: fewer live registers in the main loop).
  __device__ __forceinline__ static int64_t row(int r, int64_t n0) {
    const int o = threadIdx.x + r * W * 32, frag = o / 32, l = o % 32, c = frag % 4, rb = frag / (4 * TB);
    return n0 + 16 * rb + (l >> 2) + (c >= 2 ? 8 : 0);
  }
  __device__ __forceinline__ static int64_t token(int r, int64_t m0) {
    const int o = threadIdx.x + r * W * 32, frag = o / 32, l = o % 32, c = frag % 4, j = (frag / 4) % TB;
    return m0 + 8 * j + 2 * (l & 3) + (c & 1);
  }
  // The weight's side (scales, bias): before the programmatic wait, like the weight itself (pdl_registry.h).
  __device__ __forceinline__ void load_weight_side(const ScaledMmParams& p, int64_t n0) {
    const Out* b = static_cast<const Out*>(p.bias);
#pragma unroll
    for (int r = 0; r < kPerThread; ++r) {
      const int64_t n = row(r, n0);
      const bool in = live(r) && n < p.n;
      sb[r] = in ? p.b_scales[p.b_per_channel ? n : 0] : 0.0f;
      bias[r] = in && b != nullptr ? to_float(b[n]) : 0.0f;
    }
  }
  // The activation's scales: written by the kernel before, so after the wait.
  __device__ __forceinline__ void load_activation_side(const ScaledMmParams& p, int64_t m0) {
#pragma unroll
    for (int r = 0; r < kPerThread; ++r) {
      const int64_t m = token(r, m0);
      sa[r] = live(r) && m < p.m ? p.a_scales[p.a_per_token ? m : 0] : 0.0f;
    }
  }
  // Sums the warps' int32 partials (exact) through `partial` (shared memory, Cfg::kPartialBytes, free for the
  // taking: callers synchronize before reusing a ring) and writes out = sa * (sb * acc) + bias, rounded once.
  __device__ __forceinline__ void store(const ScaledMmParams& p, const int (&acc)[Cfg::kRowBlocks][TB][4],
                                        int64_t n0, int64_t m0, int* partial) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int rb = 0; rb < Cfg::kRowBlocks; ++rb) {
#pragma unroll
      for (int j = 0; j < TB; ++j) {
#pragma unroll
        for (int c = 0; c < 4; ++c) partial[(warp * kFrags + (rb * TB + j) * 4 + c) * 32 + lane] = acc[rb][j][c];
      }
    }
    __syncthreads();
    Out* out = static_cast<Out*>(p.out);
#pragma unroll
    for (int r = 0; r < kPerThread; ++r) {
      if (!live(r)) break;
      const int o = threadIdx.x + r * W * 32;
      int sum = 0;
#pragma unroll
      for (int w = 0; w < W; ++w) sum += partial[w * kFrags * 32 + o];
      const int64_t n = row(r, n0), m = token(r, m0);
      if (n < p.n && m < p.m) out[m * p.n + n] = from_float<Out>(__fmaf_rn(sa[r], sb[r] * float(sum), bias[r]));
    }
  }
};

// Two 16 x 8 x 32 MMAs per 16-row block and 8-token block: thread (g, t)'s 16 bytes of rows g and g + 8 (wv) and of
// token g (xv) as the fragment's k = 16t .. 16t + 15 (see Math above).
template <int RB, int TB>
__device__ __forceinline__ void mma_step(int (&acc)[RB][TB][4], const int4 (&wv)[RB][2], const int4 (&xv)[TB]) {
#pragma unroll
  for (int rb = 0; rb < RB; ++rb) {
#pragma unroll
    for (int j = 0; j < TB; ++j) {
      mma_s8(acc[rb][j], wv[rb][0].x, wv[rb][1].x, wv[rb][0].y, wv[rb][1].y, xv[j].x, xv[j].y);  // k 16t+0..7
      mma_s8(acc[rb][j], wv[rb][0].z, wv[rb][1].z, wv[rb][0].w, wv[rb][1].w, xv[j].z, xv[j].w);  // k 16t+8..15
    }
  }
}

// Grid: x = token blocks of kTokens, y = weight row blocks of kRows (token blocks first: the CTAs
// that read the same weight rows are launched together, so all but one find them in L2). Block: kWarps warps.

// The kernel. Stage i % S holds K chunk i (kChunk bytes) of the CTA's
// rows and tokens, [row][kPitch]. Copies: warp w fills rows w * kRows / W .. and tokens w * kTokens / W .., lane
// l the 16 bytes at 16 l of each (one 512-byte run per instruction). Reads: warp w takes the chunk's 64-byte
// K step w, thread (g, t) the 16 bytes at 16 t of rows g, g + 8, ... and token g (the MMA layout of Math above).
template <class Cfg, class Out>
__global__ void __launch_bounds__(Cfg::kWarps * 32) skinny_scaled_mm(const ScaledMmParams p) {
  constexpr int TB = Cfg::kTokenBlocks, RB = Cfg::kRowBlocks, W = Cfg::kWarps, S = Cfg::kStages;
  constexpr int kRows = Cfg::kRows, kTokens = Cfg::kTokens, kPitch = Cfg::kPitch, kChunk = Cfg::kChunk;
  constexpr int kRowsPerWarp = kRows / W, kTokensPerWarp = kTokens / W;
  extern __shared__ int4 smem[];
  int8_t* const ring = reinterpret_cast<int8_t*>(smem);
  uint64_t* full = reinterpret_cast<uint64_t*>(ring + S * Cfg::kStageBytes);
  uint64_t* empty = full + S;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int64_t n0 = int64_t(blockIdx.y) * kRows;
  const int64_t m0 = int64_t(blockIdx.x) * kTokens;
  const int chunks = (p.k + kChunk - 1) / kChunk;

  if (threadIdx.x == 0) {
    for (int s = 0; s < S; ++s) {
      mbar_init(&full[s], W * 32);
      mbar_init(&empty[s], W);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();

  // Rows past N and tokens past M copy the last valid one (never stored, as in the other variants).
  const int8_t* wsrc[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    wsrc[r] = p.b + min(n0 + warp * kRowsPerWarp + r, int64_t(p.n) - 1) * p.k + 16 * lane;
  }
  const int8_t* xsrc[kTokensPerWarp];
#pragma unroll
  for (int j = 0; j < kTokensPerWarp; ++j) {
    xsrc[j] = p.a + min(m0 + warp * kTokensPerWarp + j, int64_t(p.m) - 1) * p.k + 16 * lane;
  }
  // copies chunk c into its stage: the weight rows, the tokens or both; 16 bytes past K are zero-filled
  auto issue = [&](int c, bool weight, bool tokens) {
    int8_t* dst = ring + (c % S) * Cfg::kStageBytes + 16 * lane;
    const int64_t k = int64_t(c) * kChunk;
    const bool in = k + 16 * lane < p.k;  // K % 16 == 0: a lane's 16 bytes are all in or all out
    const int64_t off = in ? k : 0;
    const int bytes = in ? 16 : 0;
    if (weight) {
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        copy_weight_async(reinterpret_cast<int4*>(dst + (warp * kRowsPerWarp + r) * kPitch), wsrc[r] + off, bytes);
      }
    }
    if (tokens) {
#pragma unroll
      for (int j = 0; j < kTokensPerWarp; ++j) {
        copy_token_async(reinterpret_cast<int4*>(dst + (kRows + warp * kTokensPerWarp + j) * kPitch), xsrc[j] + off,
                         bytes);
      }
    }
  };

  Epilogue<Cfg, Out> epi;
  epi.load_weight_side(p, n0);
  // Prologue: the weight of the first S - 1 chunks before the activation's producer has finished (pdl.cuh), their
  // tokens after the wait; each stage's arrival fires once all of this thread's copies so far have landed.
  const int prologue = min(S - 1, chunks);
  for (int c = 0; c < prologue; ++c) issue(c, true, false);
  pdl::wait_for_producer();
  epi.load_activation_side(p, m0);
  for (int c = 0; c < prologue; ++c) {
    issue(c, false, true);
    mbar_arrive_on_copies(&full[c]);
  }

  int acc[RB][TB][4] = {};
  for (int c = 0; c < chunks; ++c) {
    const int next = c + S - 1;
    if (next < chunks) {  // refill the stage chunk c - 1 used, once every warp has read it
      if (next >= S) mbar_wait(&empty[next % S], ((next / S) - 1) & 1);
      issue(next, true, true);
      mbar_arrive_on_copies(&full[next % S]);
    }
    mbar_wait(&full[c % S], (c / S) & 1);
    const int8_t* src = ring + (c % S) * Cfg::kStageBytes + 64 * warp + 16 * t;
    int4 wv[RB][2];
    int4 xv[TB];
#pragma unroll
    for (int rb = 0; rb < RB; ++rb) {
      wv[rb][0] = *reinterpret_cast<const int4*>(src + (16 * rb + g) * kPitch);
      wv[rb][1] = *reinterpret_cast<const int4*>(src + (16 * rb + 8 + g) * kPitch);
    }
#pragma unroll
    for (int j = 0; j < TB; ++j) xv[j] = *reinterpret_cast<const int4*>(src + (kRows + 8 * j + g) * kPitch);
    __syncwarp();
    if (lane == 0) mbar_arrive(&empty[c % S]);
    mma_step(acc, wv, xv);
  }
  __syncthreads();  // every warp is done with the ring: the partial sums take its first bytes
  epi.store(p, acc, n0, m0, reinterpret_cast<int*>(ring));
}

}  // namespace vllm_sq::skinny
