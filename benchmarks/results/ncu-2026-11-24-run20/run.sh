#!/usr/bin/env bash
# run 20 (session 14): ncu of DecodeN64c1 at M = 64 and 128 (7B o_proj: same work per CTA, twice the CTAs) and of
# SiLU-and-mul + quant at 13B M = 256, default against the staged experiment. Needs the extension installed.
# Usage: bash run.sh OUTDIR
set -u
D=$(dirname "$0"); O=$1; mkdir -p "$O"
NCU=/usr/local/cuda/bin/ncu
MET=sm__cycles_active.avg,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,l1tex__m_xbar2l1tex_read_bytes.sum,dram__bytes_read.sum,lts__t_bytes.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,smsp__warps_active.avg.per_cycle_active,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio
SEC="--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section WarpStateStats --section LaunchStats --section Occupancy"
for mm in 64 128; do
  $NCU --kernel-name regex:device_kernel --launch-skip 2 --launch-count 1 $SEC --metrics $MET \
    python3 "$D/g.py" $mm 4096 4096 DecodeN64c1 > "$O/ncu_gemm_c1_m$mm.txt" 2>&1
done
for v in "" staged2; do
  VLLM_SQ_SILU_EXP=$v $NCU --kernel-name regex:silu_and_mul_quant --launch-skip 3 --launch-count 1 $SEC --section SchedulerStats \
    --metrics $MET python3 "$D/s.py" 256 13824 > "$O/ncu_silu_13b_m256_${v:-default}.txt" 2>&1
done
# Results (run 20b, csrc 516aa608 installed from .prebuilt/, ncu clocks): see RUN.md in this folder.
