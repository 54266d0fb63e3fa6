// The skinny-M int8 GEMM: decode batches of a few tokens, where the weight's N*K bytes are the whole cost.
//
// Why not CUTLASS. A 64-row wgmma tile holding 1-16 tokens wastes most of the tensor core, which does not matter,
// but the CUTLASS kernels also pay a fixed cost per CTA (TMA descriptor fetch, barrier setup, cluster launch,
// a pipeline that fills and drains once per tile) and give one CTA a long serial K loop over 64-256 weight rows.
// Here the weight is streamed in 16-byte pieces by every warp of the GPU at once: a CTA owns 16 or 32 weight
// rows and its warps split K between them. Two ways to keep pieces in flight (SkinnyConfig::kStages): loads into
// registers, or cp.async into a per-thread shared-memory ring, which holds no registers while in flight (sweep 7:
// 4-10% faster where its large CTAs fit one wave). Launched as a programmatic dependent of the quantization
// kernel before it (pdl.cuh): the first weight pieces are requested before the activation exists (run 8: the
// quantization adds 2.3-3.5 us in front of the GEMM instead of 3.4-6.4).
//
// Math. mma.sync.m16n8k32 (s8 x s8 -> s32, sm_80+) with the weight as the 16-row A operand and up to 8 tokens as
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

// Tokens: per CTA (8 per MMA column block); RowBlocks: 16-row weight blocks per CTA; Warps: split K.
// Stages == 0: loads into registers, Unroll K steps (64 bytes each) written before their MMAs (ptxas still
// interleaves them to save registers: about five 16-byte loads per thread are in flight).
// Stages > 0: each thread stages its pieces through shared memory with cp.async, Stages - 1 K steps ahead; an
// in-flight copy holds no register, so every warp keeps that many steps of its rows in flight.
template <int Tokens, int RowBlocks, int Warps, int Unroll, int Stages = 0>
struct SkinnyConfig {
  static_assert(Tokens % 8 == 0 && RowBlocks >= 1 && Warps >= 1 && Unroll >= 1 && Stages >= 0);
  static constexpr int kStages = Stages;
  static constexpr int kPieces = 2 * RowBlocks + Tokens / 8;  // 16-byte pieces per thread per K step
  // dynamic shared memory of the staged variant: [warp][stage][piece][lane] x 16 bytes
  static constexpr int kRingBytes = Warps * Stages * kPieces * 32 * 16;
  static constexpr int kTokens = Tokens;
  static constexpr int kTokenBlocks = Tokens / 8;
  static constexpr int kRowBlocks = RowBlocks;
  static constexpr int kRows = 16 * RowBlocks;
  static constexpr int kWarps = Warps;
  static constexpr int kUnroll = Unroll;
};

__device__ __forceinline__ int4 load_weight(const int8_t* p) {  // read once: bypass L1
  int4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.s32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

__device__ __forceinline__ int4 load_token(const int8_t* p) {  // read by every CTA: keep in L1
  int4 v;
  asm volatile("ld.global.nc.v4.s32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

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
__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;"); }
template <int Pending>
__device__ __forceinline__ void copy_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(Pending) : "memory");
}
// copy_wait<min(pending, Max)>() for a run-time `pending` (wait_group takes an immediate).
template <int Max>
__device__ __forceinline__ void copy_wait_at_most(int pending) {
  if constexpr (Max == 0) {
    copy_wait<0>();
  } else {
    if (pending >= Max) {
      copy_wait<Max>();
    } else {
      copy_wait_at_most<Max - 1>(pending);
    }
  }
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

// Grid: x = weight row blocks of kRows, y = token blocks of kTokens. Block: kWarps warps.
template <class Cfg, class Out>
__global__ void __launch_bounds__(Cfg::kWarps * 32) skinny_scaled_mm(const ScaledMmParams p) {
  constexpr int TB = Cfg::kTokenBlocks, RB = Cfg::kRowBlocks, W = Cfg::kWarps, U = Cfg::kUnroll;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int64_t n0 = int64_t(blockIdx.x) * Cfg::kRows;
  const int64_t m0 = int64_t(blockIdx.y) * Cfg::kTokens;
  const int steps = (p.k + 63) / 64;

  // This thread's rows, already offset to its 16 bytes. Rows past N and tokens past M read the last valid row
  // instead: their products land in accumulator entries the epilogue never stores, so the hot loop needs no
  // predicates and the compiler can issue all of a batch's loads before its MMAs.
  const int8_t* wrow[RB][2];
#pragma unroll
  for (int rb = 0; rb < RB; ++rb) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t n = min(n0 + 16 * rb + 8 * h + g, int64_t(p.n) - 1);
      wrow[rb][h] = p.b + n * p.k + 16 * t;
    }
  }
  const int8_t* xrow[TB];
#pragma unroll
  for (int j = 0; j < TB; ++j) {
    const int64_t m = min(m0 + 8 * j + g, int64_t(p.m) - 1);
    xrow[j] = p.a + m * p.k + 16 * t;
  }

  int acc[RB][TB][4] = {};
  auto mma_step = [&](const int4 (&wv)[RB][2], const int4 (&xv)[TB]) {
#pragma unroll
    for (int rb = 0; rb < RB; ++rb) {
#pragma unroll
      for (int j = 0; j < TB; ++j) {
        mma_s8(acc[rb][j], wv[rb][0].x, wv[rb][1].x, wv[rb][0].y, wv[rb][1].y, xv[j].x, xv[j].y);  // k 16t+0..7
        mma_s8(acc[rb][j], wv[rb][0].z, wv[rb][1].z, wv[rb][0].w, wv[rb][1].w, xv[j].z, xv[j].w);  // k 16t+8..15
      }
    }
  };
  // Warp w takes the 64-byte K steps w, w + W, w + 2W, ...: the CTA's warps read adjacent pieces of its rows.
  if constexpr (Cfg::kStages > 0) {
    // The staged loop: thread-private ring slots (a thread reads back only what it copied, so no barrier).
    constexpr int S = Cfg::kStages, P = Cfg::kPieces;
    extern __shared__ int4 ring[];
    int4* mine = ring + size_t(warp) * S * P * 32 + lane;
    // copies this warp's i-th K step (its weight pieces, its token pieces or both) into slot i % S
    auto issue = [&](int i, bool weight, bool tokens) {
      const int s = warp + i * W;
      if (s < steps) {
        int4* dst = mine + (i % S) * P * 32;
        const int64_t k = int64_t(s) * 64;
        const bool in = k + 16 * t < p.k;  // K % 16 == 0: a thread's 16 bytes are all in or all out
        const int64_t off = in ? k : 0;
        const int bytes = in ? 16 : 0;
        if (weight) {
#pragma unroll
          for (int rb = 0; rb < RB; ++rb) {
            copy_weight_async(dst + (2 * rb) * 32, wrow[rb][0] + off, bytes);
            copy_weight_async(dst + (2 * rb + 1) * 32, wrow[rb][1] + off, bytes);
          }
        }
        if (tokens) {
#pragma unroll
          for (int j = 0; j < TB; ++j) copy_token_async(dst + (2 * RB + j) * 32, xrow[j] + off, bytes);
        }
      }
    };
    const int my_steps = steps > warp ? (steps - warp + W - 1) / W : 0;
    // Prologue: the weight of the first S - 1 steps is requested before the activation's producer has finished
    // (pdl.cuh); their tokens follow the wait. All of it is one commit group, the oldest of the loop's waits.
#pragma unroll
    for (int i = 0; i < S - 1; ++i) issue(i, true, false);
    pdl::wait_for_producer();
#pragma unroll
    for (int i = 0; i < S - 1; ++i) issue(i, false, true);
    copy_commit();
    for (int i = 0; i < my_steps; ++i) {
      issue(i + S - 1, true, true);  // into the slot step i - 1 used, already in registers
      copy_commit();
      // Step i has landed once at most min(i + 1, S - 1) newer groups are pending (the prologue's group holds
      // steps 0 .. S - 2; each later step has its own).
      copy_wait_at_most<S - 1>(i + 1);
      const int4* src = mine + (i % S) * P * 32;
      int4 wv[RB][2];
      int4 xv[TB];
#pragma unroll
      for (int rb = 0; rb < RB; ++rb) {
        wv[rb][0] = src[(2 * rb) * 32];
        wv[rb][1] = src[(2 * rb + 1) * 32];
      }
#pragma unroll
      for (int j = 0; j < TB; ++j) xv[j] = src[(2 * RB + j) * 32];
      mma_step(wv, xv);
    }
    copy_wait<0>();
  } else {
  // Full batches of U steps first (every load in bounds), then the remaining steps one by one, the last of which
  // may be partial (K % 64 != 0: threads whose 16 bytes lie past K contribute zeros).
  // The first batch's weight is loaded before waiting for the activation's producer (pdl.cuh); each later
  // batch's weight is requested right after the previous batch's MMAs.
  const int full_steps = p.k / 64;
  auto full_batch = [&](int s) { return s + (U - 1) * W < full_steps; };
  auto load_weights = [&](int s, int4 (&wv)[U][RB][2]) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t k = int64_t(s + u * W) * 64;
#pragma unroll
      for (int rb = 0; rb < RB; ++rb) {
        wv[u][rb][0] = load_weight(wrow[rb][0] + k);
        wv[u][rb][1] = load_weight(wrow[rb][1] + k);
      }
    }
  };
  int s = warp;
  int4 wv[U][RB][2];
  if (full_batch(s)) load_weights(s, wv);
  pdl::wait_for_producer();
  for (; full_batch(s); s += U * W) {
    int4 xv[U][TB];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t k = int64_t(s + u * W) * 64;
#pragma unroll
      for (int j = 0; j < TB; ++j) xv[u][j] = load_token(xrow[j] + k);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) mma_step(wv[u], xv[u]);
    if (full_batch(s + U * W)) load_weights(s + U * W, wv);
  }
  for (; s < steps; s += W) {
    const int64_t k = int64_t(s) * 64;
    const bool in = k + 16 * t < p.k;  // K % 16 == 0: a thread's 16 bytes are all in or all out
    int4 wv[RB][2];
    int4 xv[TB];
#pragma unroll
    for (int rb = 0; rb < RB; ++rb) {
      wv[rb][0] = in ? load_weight(wrow[rb][0] + k) : make_int4(0, 0, 0, 0);
      wv[rb][1] = in ? load_weight(wrow[rb][1] + k) : make_int4(0, 0, 0, 0);
    }
#pragma unroll
    for (int j = 0; j < TB; ++j) xv[j] = in ? load_token(xrow[j] + k) : make_int4(0, 0, 0, 0);
    mma_step(wv, xv);
  }
  }  // register path

  // Sum the warps' partials: one output per (row block, token block, accumulator register, lane).
  constexpr int kFrags = RB * TB * 4;
  __shared__ int partial[W][kFrags][32];
#pragma unroll
  for (int rb = 0; rb < RB; ++rb) {
#pragma unroll
    for (int j = 0; j < TB; ++j) {
#pragma unroll
      for (int c = 0; c < 4; ++c) partial[warp][(rb * TB + j) * 4 + c][lane] = acc[rb][j][c];
    }
  }
  __syncthreads();
  Out* out = static_cast<Out*>(p.out);
  const Out* bias = static_cast<const Out*>(p.bias);
  for (int i = threadIdx.x; i < kFrags * 32; i += W * 32) {
    const int frag = i / 32, l = i % 32;
    int sum = 0;
#pragma unroll
    for (int w = 0; w < W; ++w) sum += partial[w][frag][l];
    // accumulator register c of lane (g, t): row g (+8 for c >= 2), token column 2t + (c & 1)
    const int c = frag % 4, j = (frag / 4) % TB, rb = frag / (4 * TB);
    const int64_t n = n0 + 16 * rb + (l >> 2) + (c >= 2 ? 8 : 0);
    const int64_t m = m0 + 8 * j + 2 * (l & 3) + (c & 1);
    if (n < p.n && m < p.m) {
      const float sa = p.a_scales[p.a_per_token ? m : 0];
      const float sb = p.b_scales[p.b_per_channel ? n : 0];
      const float b = bias ? to_float(bias[n]) : 0.0f;
      out[m * p.n + n] = from_float<Out>(__fmaf_rn(sa, sb * static_cast<float>(sum), b));
    }
  }
}

}  // namespace vllm_sq::skinny
