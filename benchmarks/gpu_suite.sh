#!/usr/bin/env bash
# The GPU-machine suite in one command: build the extension, run every GPU test, a compute-sanitizer memcheck
# pass, the GEMM benchmark and (if present) benchmarks/serve_suite.sh. Run from the repository root:
#
#   OUT=/some/dir bash benchmarks/gpu_suite.sh
#
# Environment:
#   OUT                 where logs and results go (default ./out/gpu_suite); the device tool returns $OUT
#   SUITE_STEPS         comma list from build,test,sanitize,bench,serve (default: all of them)
#   VLLM_SQ_CUDA_ARCHS  arches to build (default 90a here: the H100; the package default is 80;89;90a)
#   GEMM_ARGS           extra arguments for benchmarks/gemm.py (e.g. "--sweep --models 7b")
#   VLLM_SQ_COMMIT      commit to stamp on results when the tree has no .git
# vLLM comparisons need the vLLM bundle: if /tmp/gpu holds part00.. and SHA256SUMS (copied there by earlier
# calls) it is verified, unpacked to /tmp/gpu-site and put on PYTHONPATH; otherwise they are reported as
# unavailable. CUTLASS headers: from an importable `cutlass_library`, else from a wheel under .whl/.
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out/gpu_suite}
LOGS=$OUT/logs
mkdir -p "$LOGS"
STEPS=",${SUITE_STEPS:-build,test,sanitize,bench,serve},"
export VLLM_SQ_CUDA_ARCHS=${VLLM_SQ_CUDA_ARCHS:-90a}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 CMAKE_POLICY_VERSION_MINIMUM=3.5
declare -a SUMMARY=()
note() { SUMMARY+=("$1"); echo "== $1"; }
step() { [[ $STEPS == *",$1,"* ]]; }

# --- vLLM bundle (optional) --------------------------------------------------------------------------------
if [[ -d /tmp/gpu-site ]]; then
  export PYTHONPATH=/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH} VLLM_USE_FLASHINFER_SAMPLER=0
  note "vLLM bundle: already unpacked"
elif [[ -f /tmp/gpu/SHA256SUMS ]]; then
  if (cd /tmp/gpu && sha256sum -c SHA256SUMS >"$LOGS/bundle.log" 2>&1 && cat part* | xz -d | tar x -C /tmp); then
    export PYTHONPATH=/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH} VLLM_USE_FLASHINFER_SAMPLER=0
    note "vLLM bundle: unpacked"
  else
    note "vLLM bundle: FAILED to verify/unpack (see logs/bundle.log); running without vLLM"
  fi
else
  note "vLLM bundle: absent (vLLM comparisons unavailable)"
fi

# --- CUTLASS headers -----------------------------------------------------------------------------------------
if ! python3 -c "import cutlass_library" 2>/dev/null; then
  if ls .whl/nvidia_cutlass-*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/nvidia_cutlass-*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  fi
fi

# --- build -------------------------------------------------------------------------------------------------
if step build; then
  start=$(date +%s)
  build() { CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) timeout 540 python3 -m pip install --no-build-isolation --no-deps -v . ; }
  if build >"$LOGS/build.log" 2>&1 || {
       grep -q "Could not find a package configuration file provided by \"Torch\"\|TorchConfig\|Caffe2" \
         "$LOGS/build.log" && echo "retrying with VLLM_SQ_TORCH_FROM_PYTHON=1" &&
       VLLM_SQ_TORCH_FROM_PYTHON=1 build >>"$LOGS/build.log" 2>&1; }; then
    so=$(find build -name '_C*.so' | head -1)
    cp "$so" vllm_sq/  # the tests import vllm_sq from this tree
    note "build: ok in $(( $(date +%s) - start )) s ($VLLM_SQ_CUDA_ARCHS)"
  else
    note "build: FAILED (logs/build.log)"
    tail -40 "$LOGS/build.log"
  fi
fi
python3 -c "import vllm_sq.ops as o; print(o.available())" 2>&1 | tee "$LOGS/available.txt"

# --- tests -------------------------------------------------------------------------------------------------
if step test; then
  timeout 420 python3 -m pytest -m gpu tests -q -p no:cacheprovider --junitxml="$LOGS/gpu_tests.xml" \
    >"$LOGS/gpu_tests.log" 2>&1
  note "gpu tests: rc=$? $(tail -1 "$LOGS/gpu_tests.log")"
  grep -E "^(FAILED|ERROR)" "$LOGS/gpu_tests.log" | head -20
fi

# --- compute-sanitizer memcheck on a subset (no caching allocator, so out-of-bounds accesses are visible) ---
if step sanitize; then
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 300 compute-sanitizer --tool memcheck --error-exitcode 99 \
    python3 -m pytest -q -p no:cacheprovider tests/kernels \
    -k "(scale_granularities and 33) or (every_tile and 33) or (azp and 255) or (quant and (7-80 or 33-4096 or 5-12))" \
    >"$LOGS/memcheck.log" 2>&1
  rc=$?
  note "memcheck: rc=$rc $(grep -E 'ERROR SUMMARY' "$LOGS/memcheck.log" | tail -1) $(tail -1 "$LOGS/memcheck.log")"
fi

# --- GEMM benchmark ------------------------------------------------------------------------------------------
if step bench; then
  # shellcheck disable=SC2086
  timeout 480 python3 -m benchmarks.gemm --out "$OUT" ${GEMM_ARGS:-} >"$LOGS/gemm.log" 2>&1
  note "gemm benchmark: rc=$? ($(ls "$OUT"/gemm_*.md 2>/dev/null | head -1))"
fi

# --- serving benchmarks (BENCH engineer's script) ------------------------------------------------------------
if step serve && [[ -f benchmarks/serve_suite.sh ]]; then
  OUT=$OUT/serve bash benchmarks/serve_suite.sh >"$LOGS/serve_suite.log" 2>&1
  note "serve suite: rc=$?"
fi

tar czf "$OUT/logs.tar.gz" -C "$OUT" logs && rm -rf "$LOGS"
echo
cat "$OUT"/gemm_*.md 2>/dev/null
echo
printf '%s\n' "${SUMMARY[@]}"
