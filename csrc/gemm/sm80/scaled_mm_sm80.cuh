// The one Ampere/Ada (sm_80, sm_86, sm_89) int8 GEMM definition: a CUTLASS 2.x multistage mma.sync kernel
// (16x8x32 s8 instructions, cp.async pipeline) whose epilogue visitor tree applies the dequantization and bias.
//
// Math (same function as the sm_90 kernel, see scaled_mm.h):
//   symmetric:  out = sa[m] * (sb[n] * acc) + bias[n]
//   asymmetric: out = sa[m] * (sb[n] * float(acc - azp[m] * azp_adj[n])) + bias[n]
// acc is exact in int32; the azp product is formed in int32; one fp32 rounding per product, one final rounding
// to bf16/fp16. The 2.x broadcast visitors read vectors only, so per-tensor scales arrive expanded to vectors
// (scaled_mm_entry.cpp does that for this architecture).
#pragma once

#include <cstdint>
#include <type_traits>

// Include order matters: the 2.x visitor headers assume the GEMM and conversion headers came first.
#include "cutlass/cutlass.h"
#include "cutlass/numeric_conversion.h"
#include "cutlass/numeric_types.h"
#include "cutlass/gemm/gemm.h"
#include "cutlass/gemm/device/gemm_universal.h"
#include "cutlass/gemm/kernel/default_gemm_universal_with_visitor.h"
#include "cutlass/gemm/threadblock/threadblock_swizzle.h"
#include "cutlass/epilogue/threadblock/fusion/visitors.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cute/tensor.hpp"

#include "gemm/scaled_mm.h"
#include "gemm/sm80/configs_sm80.cuh"

namespace vllm_sq::sm80 {

using namespace cute;
namespace tb = cutlass::epilogue::threadblock;

template <class Cfg, class Out, bool Azp>
struct Int8Gemm {
  static constexpr int kAlignAB = 16;  // 16 int8 = 16 bytes: K % 16 == 0
  static constexpr int kAlignD = 128 / cutlass::sizeof_bits<Out>::value;
  static constexpr int kEpiStages = 1;
  static constexpr auto kRound = cutlass::FloatRoundStyle::round_to_nearest;

  using TileMap = tb::OutputTileThreadLayout<typename Cfg::Tile, typename Cfg::Warp, Out, kAlignD, kEpiStages>;

  using Acc = tb::VisitorAccFetch;
  using ScaleA = tb::VisitorColBroadcast<TileMap, float, Stride<_1, _0, int32_t>>;
  using ScaleB = tb::VisitorRowBroadcast<TileMap, float, Stride<_0, _1, int32_t>>;
  using Bias = tb::VisitorRowBroadcast<TileMap, Out, Stride<_0, _1, int32_t>>;  // nullptr -> adds 0
  using ZeroPoint = tb::VisitorColBroadcast<TileMap, int32_t, Stride<_1, _0, int32_t>>;
  using ColSums = tb::VisitorRowBroadcast<TileMap, int32_t, Stride<_0, _1, int32_t>>;

  using AzpTerm = tb::Sm80EVT<tb::VisitorCompute<cutlass::multiplies, int32_t, int32_t, kRound>, ZeroPoint, ColSums>;
  using Corrected = tb::Sm80EVT<tb::VisitorCompute<cutlass::minus, float, int32_t, kRound>, Acc, AzpTerm>;
  using Product = std::conditional_t<Azp, Corrected, Acc>;
  using ScaledB = tb::Sm80EVT<tb::VisitorCompute<cutlass::multiplies, float, float, kRound>, ScaleB, Product>;
  using Dequant = tb::Sm80EVT<tb::VisitorCompute<cutlass::multiply_add, Out, float, kRound>, ScaleA, ScaledB, Bias>;
  using Store = tb::VisitorAuxStore<TileMap, Out, kRound, Stride<int64_t, _1, int64_t>>;
  using Tree = tb::Sm80EVT<Store, Dequant>;

  using Kernel = typename cutlass::gemm::kernel::DefaultGemmWithVisitor<
      int8_t, cutlass::layout::RowMajor, cutlass::ComplexTransform::kNone, kAlignAB,
      int8_t, cutlass::layout::ColumnMajor, cutlass::ComplexTransform::kNone, kAlignAB,
      Out, cutlass::layout::RowMajor, kAlignD, int32_t, float, cutlass::arch::OpClassTensorOp,
      cutlass::arch::Sm80, typename Cfg::Tile, typename Cfg::Warp, cutlass::gemm::GemmShape<16, 8, 32>, Tree,
      cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<>, Cfg::kStages,
      cutlass::arch::OpMultiplyAddSaturate, kEpiStages>::GemmKernel;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  static typename Tree::Arguments tree_args(const ScaledMmParams& p) {
    auto product = [&] {
      if constexpr (Azp) {
        return typename Corrected::Arguments{
            {},
            {{p.azp, 0, {_1{}, _0{}, 0}}, {p.azp_adj, 0, {_0{}, _1{}, 0}}, {}},
            {}};
      } else {
        return typename Acc::Arguments{};
      }
    }();
    return typename Tree::Arguments{
        {{p.a_scales, 0.f, {_1{}, _0{}, 0}},
         {{p.b_scales, 0.f, {_0{}, _1{}, 0}}, product, {}},
         {static_cast<const Out*>(p.bias), Out(0), {_0{}, _1{}, 0}},
         {}},
        {static_cast<Out*>(p.out), {int64_t(p.n), _1{}, int64_t(p.m) * p.n}}};
  }

  static typename Gemm::Arguments arguments(const ScaledMmParams& p) {
    return typename Gemm::Arguments(cutlass::gemm::GemmUniversalMode::kGemm, {p.m, p.n, p.k}, 1, tree_args(p),
                                    p.a, p.b, nullptr, nullptr, int64_t(p.m) * p.k, int64_t(p.n) * p.k, 0, 0,
                                    p.k, p.k, 0, 0);
  }

  static const char* plan(const ScaledMmParams& p, GemmPlan* out) {
    auto args = arguments(p);
    if (Gemm::can_implement(args) != cutlass::Status::kSuccess) {
      return "CUTLASS sm80 kernel cannot implement this problem (alignment or shape)";
    }
    out->workspace_bytes = Gemm::get_workspace_size(args);
    return "";
  }

  static const char* run(const ScaledMmParams& p, void* workspace, cudaStream_t stream) {
    auto args = arguments(p);
    Gemm gemm;
    cutlass::Status status = gemm.initialize(args, workspace, stream);
    if (status == cutlass::Status::kSuccess) status = gemm.run(stream);
    return status == cutlass::Status::kSuccess ? "" : cutlassGetStatusString(status);
  }
};

template <class Cfg, class Out, bool Azp>
const char* plan_config(const ScaledMmParams& p, GemmPlan* plan) {
  return Int8Gemm<Cfg, Out, Azp>::plan(p, plan);
}
template <class Cfg, class Out, bool Azp>
const char* run_config(const ScaledMmParams& p, void* workspace, cudaStream_t stream) {
  return Int8Gemm<Cfg, Out, Azp>::run(p, workspace, stream);
}

}  // namespace vllm_sq::sm80
