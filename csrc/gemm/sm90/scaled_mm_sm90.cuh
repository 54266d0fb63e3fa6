// The one Hopper (sm_90a) int8 GEMM definition: a CUTLASS 3.x warp-specialized wgmma kernel whose epilogue
// applies the dequantization and bias through an epilogue visitor tree (EVT), so the int32 accumulators never
// leave registers unscaled.
//
// Math. acc[m,n] = sum_k a[m,k] * b[k,n] (exact in int32: |acc| <= 127^2 * K < 2^31 for K < 133k).
//   symmetric:  out = sa[m] * (sb[n] * acc) + bias[n]
//   asymmetric: out = sa[m] * (sb[n] * float(acc - azp[m] * azp_adj[n])) + bias[n]
// (azp * azp_adj is formed in int32 and subtracted before the conversion, so it is exact too). Scales are fp32;
// the only roundings are the fp32 products and the final conversion to bf16/fp16 (round to nearest even).
//
// Swap-AB. For small M the kernel computes out^T = b^T a^T instead: the weight rows (N) fill the 128-row wgmma
// tile and the few tokens sit in a narrow 16/32/64-column tile. The out^T of that product is a column-major
// [N,M] matrix, i.e. exactly the row-major [M,N] `out`, so only the roles of the broadcasts change (a per-token
// vector becomes a per-column one).
#pragma once

#include <cstdint>
#include <type_traits>

#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/epilogue/fusion/sm90_callbacks_tma_warpspecialized.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cutlass/gemm/kernel/gemm_universal.hpp"
#include "cutlass/gemm/kernel/tile_scheduler.hpp"
#include "cutlass/numeric_types.h"
#include "cutlass/util/packed_stride.hpp"

#include "gemm/scaled_mm.h"
#include "gemm/sm90/configs_sm90.cuh"

namespace vllm_sq::sm90 {

using namespace cute;
namespace fusion = cutlass::epilogue::fusion;

// A vector broadcast over the GEMM's D tile: one value per row of D (`PerRow`, a column broadcast in CUTLASS
// terms) or per column. `Dynamic`: the stride is a run-time bool, so one kernel takes a vector or a scalar
// (per-tensor scale). Alignment 1: the vector may be M long, which has no alignment guarantee.
template <bool PerRow, class Tile, class In, class Compute, bool Dynamic>
struct VecBcast {
  using Stride = std::conditional_t<Dynamic, cute::Stride<bool, _0, _0>, cute::Stride<_1, _0, _0>>;
  using Node = fusion::Sm90ColBroadcast<0, Tile, In, Compute, Stride, 1>;
  static typename Node::Arguments args(const In* ptr, bool is_vector) {
    if constexpr (Dynamic) {
      return {ptr, In(0), {is_vector, _0{}, _0{}}};
    } else {
      return {ptr, In(0), {}};
    }
  }
};
template <class Tile, class In, class Compute, bool Dynamic>
struct VecBcast<false, Tile, In, Compute, Dynamic> {
  using Stride = std::conditional_t<Dynamic, cute::Stride<_0, bool, _0>, cute::Stride<_0, _1, _0>>;
  using Node = fusion::Sm90RowBroadcast<0, Tile, In, Compute, Stride, 1>;
  static typename Node::Arguments args(const In* ptr, bool is_vector) {
    if constexpr (Dynamic) {
      return {ptr, In(0), {_0{}, is_vector, _0{}}};
    } else {
      return {ptr, In(0), {}};
    }
  }
};

// The dequantization epilogue as a visitor tree. Token-indexed vectors (sa, azp) run along D's rows unless
// swapped; channel-indexed ones (sb, bias, azp_adj) along D's columns.
template <class Tile, class Out, bool Azp, bool SwapAB>
struct DequantEpilogue {
  static constexpr bool kTokenPerRow = !SwapAB;
  using ScaleA = VecBcast<kTokenPerRow, Tile, float, float, true>;
  using ScaleB = VecBcast<!kTokenPerRow, Tile, float, float, true>;
  using Bias = VecBcast<!kTokenPerRow, Tile, Out, float, false>;  // nullptr -> no bias (adds 0)
  using ZeroPoint = VecBcast<kTokenPerRow, Tile, int32_t, int32_t, false>;
  using ColSums = VecBcast<!kTokenPerRow, Tile, int32_t, int32_t, false>;

  static constexpr auto kRound = cutlass::FloatRoundStyle::round_to_nearest;
  using Acc = fusion::Sm90AccFetch;
  // acc - azp * azp_adj, in int32, then to fp32 (asymmetric only)
  using AzpTerm = fusion::Sm90EVT<fusion::Sm90Compute<cutlass::multiplies, int32_t, int32_t, kRound>,
                                  typename ZeroPoint::Node, typename ColSums::Node>;
  using Corrected = fusion::Sm90EVT<fusion::Sm90Compute<cutlass::minus, float, int32_t, kRound>, Acc, AzpTerm>;
  using Product = std::conditional_t<Azp, Corrected, Acc>;
  // sb * product
  using ScaledB = fusion::Sm90EVT<fusion::Sm90Compute<cutlass::multiplies, float, float, kRound>,
                                  typename ScaleB::Node, Product>;
  // sa * (sb * product) + bias, rounded once to the output type
  using Tree = fusion::Sm90EVT<fusion::Sm90Compute<cutlass::multiply_add, Out, float, kRound>,
                               typename ScaleA::Node, ScaledB, typename Bias::Node>;

  static typename Tree::Arguments args(const ScaledMmParams& p) {
    auto product = [&] {
      if constexpr (Azp) {
        return typename Corrected::Arguments{
            {},
            {ZeroPoint::args(p.azp, true), ColSums::args(p.azp_adj, true), {}},
            {}};
      } else {
        return typename Acc::Arguments{};
      }
    }();
    return typename Tree::Arguments{
        ScaleA::args(p.a_scales, p.a_per_token),
        {ScaleB::args(p.b_scales, p.b_per_channel), product, {}},
        Bias::args(static_cast<const Out*>(p.bias), true),
        {}};
  }
};

// Built with CUTLASS_ENABLE_GDC_FOR_SM90 (csrc/CMakeLists.txt, _sm90_gdc_srcs), a kernel's producer warp waits for
// the grid before it ahead of its first global load, and the kernel triggers its dependents after its main loop:
// only then may it be launched as a programmatic dependent (ScaledMmParams::programmatic, chosen per configuration
// in dispatch_sm90.cu). Launched that way without the macro it would read an unfinished activation: refused.
#ifdef CUTLASS_ENABLE_GDC_FOR_SM90
constexpr bool kBuiltWithGdc = true;
#else
constexpr bool kBuiltWithGdc = false;
#endif

// The kernel type for one configuration `Cfg` (see configs_sm90.cuh), output type and epilogue variant.
template <class Cfg, class Out, bool Azp>
struct Int8Gemm {
  static constexpr bool kSwapAB = Cfg::kSwapAB;
  using Tile = typename Cfg::Tile;
  using LayoutA = cutlass::layout::RowMajor;     // K-major, as int8 wgmma requires
  using LayoutB = cutlass::layout::ColumnMajor;  // K-major
  // D is [M,N] row-major; with swapped operands the kernel writes D^T, a column-major [N,M].
  using LayoutD = std::conditional_t<kSwapAB, cutlass::layout::ColumnMajor, cutlass::layout::RowMajor>;
  static constexpr int kAlignAB = 16;                      // 16 int8 = 16 bytes: K % 16 == 0
  static constexpr int kAlignD = 128 / cutlass::sizeof_bits<Out>::value;  // 8 halves: N % 8 == 0

  using Epi = DequantEpilogue<Tile, Out, Azp, kSwapAB>;

  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, Tile, typename Cfg::Cluster,
      cutlass::epilogue::collective::EpilogueTileAuto, int32_t, float,
      void, LayoutD, kAlignD,  // no C operand: bias comes through the visitor tree
      Out, LayoutD, kAlignD, typename Cfg::EpilogueSchedule, typename Epi::Tree>::CollectiveOp;

  using Stages = std::conditional_t<
      (Cfg::kStages > 0), cutlass::gemm::collective::StageCount<(Cfg::kStages > 0 ? Cfg::kStages : 1)>,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename CollectiveEpilogue::SharedStorage))>>;
  using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, int8_t, LayoutA, kAlignAB, int8_t, LayoutB, kAlignAB,
      int32_t, Tile, typename Cfg::Cluster,
      Stages,
      typename Cfg::KernelSchedule>::CollectiveOp;

  using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, CollectiveMainloop,
                                                      CollectiveEpilogue, typename Cfg::Scheduler>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  static typename Gemm::Arguments arguments(const ScaledMmParams& p) {
    // Operand "A" of the kernel is the matrix whose rows index D's rows.
    const int8_t* op_a = kSwapAB ? p.b : p.a;
    const int8_t* op_b = kSwapAB ? p.a : p.b;
    const int rows = kSwapAB ? p.n : p.m;
    const int cols = kSwapAB ? p.m : p.n;
    using StrideA = typename Kernel::StrideA;
    using StrideB = typename Kernel::StrideB;
    using StrideD = typename Kernel::StrideD;
    using StrideC = typename Kernel::StrideC;
    StrideA stride_a = cutlass::make_cute_packed_stride(StrideA{}, cute::make_shape(rows, p.k, 1));
    StrideB stride_b = cutlass::make_cute_packed_stride(StrideB{}, cute::make_shape(cols, p.k, 1));
    StrideD stride_d = cutlass::make_cute_packed_stride(StrideD{}, cute::make_shape(rows, cols, 1));

    cutlass::KernelHardwareInfo hw;
    hw.sm_count = p.sm_count;

    typename Gemm::Arguments args{
        cutlass::gemm::GemmUniversalMode::kGemm,
        {rows, cols, p.k, 1},
        {op_a, stride_a, op_b, stride_b},
        {Epi::args(p), nullptr, StrideC{}, static_cast<Out*>(p.out), stride_d},
        hw};
    return args;
  }

  static const char* plan(const ScaledMmParams& p, GemmPlan* out) {
    auto args = arguments(p);
    if (Gemm::can_implement(args) != cutlass::Status::kSuccess) {
      return "CUTLASS sm90 kernel cannot implement this problem (alignment or shape)";
    }
    out->workspace_bytes = Gemm::get_workspace_size(args);
    return "";
  }

  static const char* run(const ScaledMmParams& p, void* workspace, cudaStream_t stream) {
    if (p.programmatic && !kBuiltWithGdc) {
      return "programmatic launch requested for a tile built without CUTLASS_ENABLE_GDC_FOR_SM90";
    }
    auto args = arguments(p);
    Gemm gemm;
    cutlass::Status status = gemm.initialize(args, workspace, stream);
    if (status != cutlass::Status::kSuccess) {
      return cutlassGetStatusString(status);
    }
    status = gemm.run(stream, /*cuda_adapter=*/nullptr, p.programmatic);
    if (status != cutlass::Status::kSuccess) {
      return cutlassGetStatusString(status);
    }
    return "";
  }
};

// Explicitly instantiated (one translation unit per output dtype and config group) for the dispatcher.
template <class Cfg, class Out, bool Azp>
const char* plan_config(const ScaledMmParams& p, GemmPlan* plan) {
  return Int8Gemm<Cfg, Out, Azp>::plan(p, plan);
}
template <class Cfg, class Out, bool Azp>
const char* run_config(const ScaledMmParams& p, void* workspace, cudaStream_t stream) {
  return Int8Gemm<Cfg, Out, Azp>::run(p, workspace, stream);
}

}  // namespace vllm_sq::sm90

// Explicit instantiation of one (configuration, output type, epilogue) in a scaled_mm_*sm90*.cu file.
#define VLLM_SQ_SM90_INSTANTIATE(Cfg, Out, Azp)                                                          \
  template const char* vllm_sq::sm90::plan_config<vllm_sq::sm90::Cfg, Out, Azp>(                         \
      const vllm_sq::ScaledMmParams&, vllm_sq::GemmPlan*);                                               \
  template const char* vllm_sq::sm90::run_config<vllm_sq::sm90::Cfg, Out, Azp>(                          \
      const vllm_sq::ScaledMmParams&, void*, cudaStream_t);
