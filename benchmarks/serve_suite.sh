#!/usr/bin/env bash
# GPU-machine serving stage (called by benchmarks/gpu_suite.sh after the kernel stages, or on its own):
#   benchmarks/serve_suite.sh RESULTS_DIR        (or OUT=RESULTS_DIR benchmarks/serve_suite.sh)
# Stages run only if SERVE_STAGES (default "throughput,latency") names them.
# 1. offline throughput, Llama-2-7B shapes, all configs (bf16, vLLM INT8 W8A8, smoothquant dynamic/static,
#    smoothquant + fp8 KV cache), 128 prompts, within SERVE_THROUGHPUT_BUDGET_S (default 400 s);
# 2. online latency of smoothquant dynamic under `vllm serve`, two request rates, within
#    SERVE_LATENCY_BUDGET_S (default 140 s).
# Needs vLLM importable (e.g. PYTHONPATH=/tmp/gpu-site) and the project installed. A failing config is
# recorded in the results and the stage goes on; the exit status is 0 when both stages wrote their tables.
set -uo pipefail
out="${1:-${OUT:-}}"
[[ -n "$out" ]] || { echo "usage: benchmarks/serve_suite.sh RESULTS_DIR (or OUT=RESULTS_DIR)" >&2; exit 2; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p "$out"
out="$(cd "$out" && pwd)"
py="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export VLLM_USE_FLASHINFER_SAMPLER="${VLLM_USE_FLASHINFER_SAMPLER:-0}"
# CUDA-graph batch sizes for every engine (default list: ~51 sizes): these 18 cover every batch of the workloads
# with little padding and shorten each engine start alike. SERVE_CUDAGRAPH_SIZES="" keeps vLLM's own list.
sizes="${SERVE_CUDAGRAPH_SIZES-1,2,4,8,16,24,32,48,64,96,128,160,192,256,320,384,448,512}"
graph_args=()
[[ -n "$sizes" ]] && graph_args=(--cudagraph-capture-sizes "$sizes")

stages=",${SERVE_STAGES:-throughput,latency},"
tables=()
if [[ $stages == *,throughput,* ]]; then
tables+=(serve_throughput/serve_throughput.md)
echo "[serve_suite] throughput -> $out/serve_throughput"
"$py" -m benchmarks.serve_throughput --results-dir "$out/serve_throughput" \
  --budget-s "${SERVE_THROUGHPUT_BUDGET_S:-400}" "${graph_args[@]}" ${SERVE_THROUGHPUT_ARGS:-}
echo "[serve_suite] throughput exit $?"
fi

if [[ $stages == *,latency,* ]]; then
tables+=(serve_latency/serve_latency.md)
echo "[serve_suite] latency -> $out/serve_latency"
"$py" -m benchmarks.serve_latency --results-dir "$out/serve_latency" --configs sq-dynamic \
  --rates 4,inf --num-requests 32 --max-seconds-per-rate 30 --server-timeout-s 240 \
  --budget-s "${SERVE_LATENCY_BUDGET_S:-140}" "${graph_args[@]}" ${SERVE_LATENCY_ARGS:-}
echo "[serve_suite] latency exit $?"
fi

status=0
for table in "${tables[@]}"; do
  if [[ -s "$out/$table" ]]; then echo "[serve_suite] wrote $out/$table"; else echo "[serve_suite] MISSING $out/$table"; status=1; fi
done
exit $status
