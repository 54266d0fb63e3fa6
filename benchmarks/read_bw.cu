// How fast can one kernel read an int8 weight of decode size, and which access pattern gets there?
//
// The decode GEMM's floor is reading N*K weight bytes once. benchmarks/gemm.py compares it with a device copy
// moving as many bytes; this standalone program (no torch, no vLLM) times pure reads of the same sizes with the
// access patterns a GEMM kernel can use, so the gap between the skinny GEMM and the copy can be split into what
// the pattern costs and what the GEMM around it costs (benchmarks/kernel_notes.md).
//
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o /tmp/read_bw benchmarks/read_bw.cu
//   /tmp/read_bw [--out FILE.json]          (one JSON line per size and pattern; a table on stderr)
//
// Patterns (each reads every byte of an N x K row-major int8 matrix once and folds it into one word per CTA):
//   copy      cudaMemcpyAsync of N*K/2 bytes (reads and writes N*K bytes: gemm.py's `copy`)
//   linear    16 KB per CTA, 256 threads, 4 independent 16-byte loads each; as many CTAs as chunks
//   rows      the skinny GEMM's staged pattern (Skinny8s): a CTA owns 32 rows, 8 warps take 64-byte K steps in
//             turn, thread (g, t) copies 16 bytes of rows g, g+8, g+16, g+24 with cp.async into a private ring of
//             `stages` steps. split > 1: the K range is cut into `split` CTAs per 32 rows.
//   rowsc     as rows, but warp w owns rows 4w..4w+3 and each copy instruction takes 512 contiguous bytes of one
//             row (longer runs per DRAM page, the same bytes per step)
//   tma       2-D tensor-map boxes (rows x bytes) into a ring of `stages` boxes; one thread issues them, four
//             consumer warps read each box from shared memory and release it. split as above.
// Timing: a CUDA graph of calls over enough copies of the matrix to span twice the L2; before each replay a read
// of twice the L2 evicts it and a sleep kernel hides the graph's launch; median of 30 replays (gemm.py's method).
#include <cuda.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#define CHECK(x)                                                                                      \
  do {                                                                                                \
    cudaError_t e_ = (x);                                                                             \
    if (e_ != cudaSuccess) {                                                                          \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));         \
      std::exit(1);                                                                                   \
    }                                                                                                 \
  } while (0)

__device__ __forceinline__ int4 ld_stream(const int8_t* p) {
  int4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.s32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}
__device__ __forceinline__ int fold(int4 v) { return v.x ^ v.y ^ v.z ^ v.w; }

// ---- linear --------------------------------------------------------------------------------------------------
__global__ void __launch_bounds__(256) read_linear(const int8_t* w, int64_t bytes, int* sink) {
  const int64_t base = int64_t(blockIdx.x) * 16384 + threadIdx.x * 16;
  int4 v[4];
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    const int64_t off = base + u * 4096;
    v[u] = off < bytes ? ld_stream(w + off) : make_int4(0, 0, 0, 0);
  }
  int acc = 0;
#pragma unroll
  for (int u = 0; u < 4; ++u) acc ^= fold(v[u]);
  if (acc == 0x7f3a5c11) sink[blockIdx.x] = acc;  // never true for random data; keeps the loads
}

// ---- rows (the skinny GEMM's staged pattern) -------------------------------------------------------------------
__device__ __forceinline__ void cp_async16(void* dst, const int8_t* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(
                   static_cast<unsigned>(__cvta_generic_to_shared(dst))),
               "l"(src));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;"); }
template <int N>
__device__ __forceinline__ void cp_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

// Contig: warp w instead owns rows 4w..4w+3 and walks K in 512-byte steps, one row's 512 contiguous bytes per
// copy instruction (the same 2 KB per warp per step).
template <int Stages, bool Contig>
__global__ void __launch_bounds__(256) read_rows(const int8_t* w, int n, int k, int split, int* sink) {
  constexpr int W = 8, P = 4;  // warps; 16-byte pieces per thread per step (rows g, g+8, g+16, g+24)
  constexpr int kStep = Contig ? 512 : 64;
  extern __shared__ int4 ring[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int row_block = blockIdx.x / split, part = blockIdx.x % split;
  const int steps_total = k / kStep, steps = steps_total / split, s0 = part * steps;
  const int8_t* rows[P];
#pragma unroll
  for (int r = 0; r < P; ++r) {
    rows[r] = Contig ? w + int64_t(min(row_block * 32 + 4 * warp + r, n - 1)) * k + 16 * lane
                     : w + int64_t(min(row_block * 32 + 8 * r + g, n - 1)) * k + 16 * t;
  }
  int4* mine = ring + size_t(warp) * Stages * P * 32 + lane;
  const int my = Contig ? steps : (steps > warp ? (steps - warp + W - 1) / W : 0);
  auto issue = [&](int i) {
    if (i < my) {
      const int64_t off = Contig ? int64_t(s0 + i) * kStep : int64_t(s0 + warp + i * W) * kStep;
      int4* dst = mine + (i % Stages) * P * 32;
#pragma unroll
      for (int r = 0; r < P; ++r) cp_async16(dst + r * 32, rows[r] + off);
    }
    cp_commit();
  };
#pragma unroll
  for (int i = 0; i < Stages - 1; ++i) issue(i);
  int acc = 0;
  for (int i = 0; i < my; ++i) {
    issue(i + Stages - 1);
    cp_wait<Stages - 1>();
    const int4* src = mine + (i % Stages) * P * 32;
#pragma unroll
    for (int r = 0; r < P; ++r) acc ^= fold(src[r * 32]);
  }
  cp_wait<0>();
  if (acc == 0x7f3a5c11) sink[blockIdx.x] = acc;
}

// ---- tma (2-D tensor-map boxes) ---------------------------------------------------------------------------------
__device__ __forceinline__ unsigned smem_u32(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint64_t* bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(bar)), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(bar)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_u32(bar)) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t* bar, unsigned parity) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra WAIT_%=;\n"
      "}\n" ::"r"(smem_u32(bar)),
      "r"(parity)
      : "memory");
}
__device__ __forceinline__ void tma_load_2d(void* dst, const CUtensorMap* map, int x, int y, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(
          smem_u32(dst)),
      "l"(map), "r"(x), "r"(y), "r"(smem_u32(bar))
      : "memory");
}

constexpr int kTmaConsumers = 4;  // warps
__global__ void __launch_bounds__(32 * (kTmaConsumers + 1))
    read_tma(const __grid_constant__ CUtensorMap map, int box_rows, int box_bytes, int n, int k, int split,
             int stages, int* sink) {
  extern __shared__ __align__(128) int8_t smem[];
  const int box = box_rows * box_bytes;
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + size_t(stages) * box);
  uint64_t* empty = full + stages;
  const int warp = threadIdx.x >> 5;
  const int row_blocks = (n + box_rows - 1) / box_rows;
  (void)row_blocks;
  const int row_block = blockIdx.x / split, part = blockIdx.x % split;
  const int boxes = k / box_bytes / split, x0 = part * boxes * box_bytes, y = row_block * box_rows;
  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], kTmaConsumers);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  if (warp == kTmaConsumers) {  // producer
    if ((threadIdx.x & 31) == 0) {
      for (int i = 0; i < boxes; ++i) {
        const int s = i % stages;
        if (i >= stages) mbar_wait(&empty[s], ((i / stages) - 1) & 1);
        mbar_expect_tx(&full[s], box);
        tma_load_2d(smem + size_t(s) * box, &map, x0 + i * box_bytes, y, &full[s]);
      }
    }
    return;
  }
  int acc = 0;
  for (int i = 0; i < boxes; ++i) {
    const int s = i % stages;
    mbar_wait(&full[s], (i / stages) & 1);
    const int4* src = reinterpret_cast<const int4*>(smem + size_t(s) * box);
    for (int j = threadIdx.x; j < box / 16; j += 32 * kTmaConsumers) acc ^= fold(src[j]);
    __syncwarp();
    if ((threadIdx.x & 31) == 0) mbar_arrive(&empty[s]);
  }
  if (acc == 0x7f3a5c11) sink[blockIdx.x] = acc;
}

// ---- harness ---------------------------------------------------------------------------------------------------
__global__ void sleep_kernel(long long cycles) {
  const long long t0 = clock64();
  while (clock64() - t0 < cycles) {
  }
}

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

struct Pattern {
  std::string name;
  int stages = 0, split = 1, box_rows = 0, box_bytes = 0;
};

static EncodeTiled encode_fn() {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult q;
  CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q));
  if (fn == nullptr || q != cudaDriverEntryPointSuccess) {
    std::fprintf(stderr, "cuTensorMapEncodeTiled not found\n");
    std::exit(1);
  }
  return reinterpret_cast<EncodeTiled>(fn);
}

// Enqueues one call of `pat` reading matrix `w` (n x k) on `stream`; returns false if the pattern cannot run.
static bool enqueue(const Pattern& pat, int8_t* w, int8_t* dst, int n, int k, int* sink, cudaStream_t stream) {
  const int64_t bytes = int64_t(n) * k;
  if (pat.name == "copy") {
    CHECK(cudaMemcpyAsync(dst, w, bytes / 2, cudaMemcpyDeviceToDevice, stream));
  } else if (pat.name == "linear") {
    read_linear<<<unsigned((bytes + 16383) / 16384), 256, 0, stream>>>(w, bytes, sink);
  } else if (pat.name == "rows" || pat.name == "rowsc") {
    const bool contig = pat.name == "rowsc";
    if (k % ((contig ? 512 : 64) * pat.split) != 0) return false;
    const size_t smem = size_t(8) * pat.stages * 4 * 32 * 16;
    const unsigned grid = unsigned((n + 31) / 32 * pat.split);
    const auto kernel = pat.stages == 6 ? (contig ? read_rows<6, true> : read_rows<6, false>)
                                        : (contig ? read_rows<3, true> : read_rows<3, false>);
    if (pat.stages != 6 && pat.stages != 3) return false;
    kernel<<<grid, 256, smem, stream>>>(w, n, k, pat.split, sink);
  } else if (pat.name == "tma") {
    if (k % (pat.box_bytes * pat.split) != 0 || n % pat.box_rows != 0) return false;
    static EncodeTiled encode = encode_fn();
    CUtensorMap map;
    const cuuint64_t dims[2] = {cuuint64_t(k), cuuint64_t(n)};
    const cuuint64_t strides[1] = {cuuint64_t(k)};
    const cuuint32_t box[2] = {cuuint32_t(pat.box_bytes), cuuint32_t(pat.box_rows)};
    const cuuint32_t estr[2] = {1, 1};
    const CUresult r = encode(&map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, w, dims, strides, box, estr,
                              CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                              CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
      std::fprintf(stderr, "tensor map %dx%d: error %d\n", pat.box_rows, pat.box_bytes, int(r));
      return false;
    }
    const size_t smem = size_t(pat.stages) * pat.box_rows * pat.box_bytes + 16 * pat.stages;
    const unsigned grid = unsigned(n / pat.box_rows * pat.split);
    read_tma<<<grid, 32 * (kTmaConsumers + 1), smem, stream>>>(map, pat.box_rows, pat.box_bytes, n, k, pat.split,
                                                             pat.stages, sink);
  } else {
    return false;
  }
  CHECK(cudaGetLastError());
  return true;
}

int main(int argc, char** argv) {
  const char* out_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
  }
  FILE* out = out_path ? std::fopen(out_path, "w") : stdout;
  int dev = 0, l2 = 0, sms = 0;
  CHECK(cudaGetDevice(&dev));
  CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, dev));
  for (auto kernel : {read_rows<6, false>, read_rows<3, false>, read_rows<6, true>, read_rows<3, true>}) {
    CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
  }
  CHECK(cudaFuncSetAttribute(read_tma, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));

  struct Size { const char* name; int n, k; };
  const Size sizes[] = {
      {"7b o", 4096, 4096},       {"13b o", 5120, 5120},     {"llama3 qkv", 6144, 4096},
      {"7b down", 4096, 11008},   {"7b qkv", 12288, 4096},   {"13b down", 5120, 13824},
      {"7b gate_up", 22016, 4096},
  };
  std::vector<Pattern> patterns = {
      {"copy"}, {"linear"},
      {"rows", 6, 1}, {"rows", 3, 2}, {"rows", 3, 4}, {"rowsc", 6, 1}, {"rowsc", 3, 2},
      {"tma", 8, 1, 32, 256}, {"tma", 4, 2, 32, 256}, {"tma", 8, 1, 64, 256}, {"tma", 16, 1, 32, 128},
      {"tma", 4, 4, 32, 256},
  };

  cudaStream_t stream;
  CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  int8_t* scrub;
  CHECK(cudaMalloc(&scrub, size_t(2) * l2));
  CHECK(cudaMemset(scrub, 1, size_t(2) * l2));
  int* sink;
  CHECK(cudaMalloc(&sink, 1 << 20));
  cudaEvent_t start, end;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&end));

  std::fprintf(stderr, "%s, %d SMs, L2 %d MB\n", prop.name, sms, l2 >> 20);
  std::fprintf(stderr, "%-12s %-22s %9s %8s\n", "size", "pattern", "us", "TB/s");
  for (const Size& sz : sizes) {
    const size_t bytes = size_t(sz.n) * sz.k;
    const int copies = int(std::min<size_t>(16, std::max<size_t>(2, (2 * size_t(l2) + bytes - 1) / bytes)));
    std::vector<int8_t*> bufs(copies), dsts(copies);
    for (int c = 0; c < copies; ++c) {
      CHECK(cudaMalloc(&bufs[c], bytes));
      CHECK(cudaMalloc(&dsts[c], bytes / 2));
      CHECK(cudaMemset(bufs[c], 0x5b + c, bytes));
    }
    for (const Pattern& pat : patterns) {
      cudaGraph_t graph;
      CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
      bool ok = true;
      for (int c = 0; c < copies && ok; ++c) ok = enqueue(pat, bufs[c], dsts[c], sz.n, sz.k, sink, stream);
      CHECK(cudaStreamEndCapture(stream, &graph));
      if (!ok) {
        CHECK(cudaGraphDestroy(graph));
        continue;
      }
      cudaGraphExec_t exec;
      CHECK(cudaGraphInstantiate(&exec, graph, 0));
      std::vector<float> us;
      for (int rep = 0; rep < 33; ++rep) {
        read_linear<<<unsigned((2 * size_t(l2)) / 16384), 256, 0, stream>>>(scrub, 2 * size_t(l2), sink);
        sleep_kernel<<<1, 1, 0, stream>>>(100000);
        CHECK(cudaEventRecord(start, stream));
        CHECK(cudaGraphLaunch(exec, stream));
        CHECK(cudaEventRecord(end, stream));
        CHECK(cudaEventSynchronize(end));
        float ms = 0;
        CHECK(cudaEventElapsedTime(&ms, start, end));
        if (rep >= 3) us.push_back(ms * 1e3f / copies);
      }
      std::sort(us.begin(), us.end());
      const float med = us[us.size() / 2];
      char label[64];
      std::snprintf(label, sizeof label, "%s s%d x%d b%dx%d", pat.name.c_str(), pat.stages, pat.split,
                    pat.box_rows, pat.box_bytes);
      std::fprintf(stderr, "%-12s %-22s %9.2f %8.3f\n", sz.name, label, med, bytes / (med * 1e6));
      std::fprintf(out,
                   "{\"gpu\": \"%s\", \"size\": \"%s\", \"n\": %d, \"k\": %d, \"pattern\": \"%s\", \"stages\": %d, "
                   "\"split\": %d, \"box_rows\": %d, \"box_bytes\": %d, \"us\": %.3f, \"tbps\": %.4f, "
                   "\"copies\": %d}\n",
                   prop.name, sz.name, sz.n, sz.k, pat.name.c_str(), pat.stages, pat.split, pat.box_rows,
                   pat.box_bytes, med, bytes / (med * 1e6), copies);
      CHECK(cudaGraphExecDestroy(exec));
      CHECK(cudaGraphDestroy(graph));
    }
    for (int c = 0; c < copies; ++c) {
      CHECK(cudaFree(bufs[c]));
      CHECK(cudaFree(dsts[c]));
    }
  }
  if (out != stdout) std::fclose(out);
  return 0;
}
