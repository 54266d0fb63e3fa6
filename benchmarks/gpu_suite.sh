#!/usr/bin/env bash
# The GPU-machine suite in one command: build the extension, run every GPU test, the GEMM benchmark, a
# compute-sanitizer memcheck pass and (if present) benchmarks/serve_suite.sh. Run from the repository root:
#
#   OUT=/some/dir bash benchmarks/gpu_suite.sh
#
# Environment:
#   OUT                 where logs and results go (default ./out/gpu_suite); the device tool returns $OUT
#   SUITE_STEPS         comma list from build,test,sm80,bench,timeline,sanitize,serve (default: all but timeline,
#                       in that order); sm80 runs the GEMM tests on the sm_80 kernels through their PTX
#                       (VLLM_SQ_GEMM_ARCH=80); timeline runs benchmarks/pair_timeline.py (needs the vLLM bundle)
#   TIMELINE_ARGS       extra arguments for benchmarks/pair_timeline.py (e.g. "--shapes 16x6144x4096")
#   SUITE_BUDGET_S      wall-clock budget of the whole call (default 560: the device tool's limit is 600); each
#                       step gets what is left, steps that no longer fit are skipped and say so
#   VLLM_SQ_CUDA_ARCHS  arches to build (default 80,90a here: the H100's kernels, and the sm_80 ones with PTX so
#                       the sm80 step can run them on the H100; the package default is 80;89;90a)
#   SUITE_TEST_FILTER   a pytest -k expression that narrows the GPU tests (default: all of them)
#   SUITE_TEST_CAP_S    time limit of the GPU tests (default 480; all of them took 429 s in run 15e)
#   GEMM_ARGS           extra arguments for benchmarks/gemm.py (e.g. "--sweep" to time every tile configuration)
#   BENCH_CAP_S         time limit of the GEMM benchmark step (default 300; it writes its tables after each shape)
#   VLLM_SQ_COMMIT      commit to stamp on results when the tree has no .git
# Reusing a build: a successful build leaves $OUT/prebuilt/csrc-<hash of csrc/>.so.xz; carry that folder in as
# .prebuilt/ (ignored by git) and the next call installs it instead of compiling, if csrc/ is unchanged.
# vLLM comparisons need the vLLM bundle: if /tmp/gpu holds part00.. and SHA256SUMS (copied there by earlier
# calls) it is verified, unpacked to /tmp/gpu-site and put on PYTHONPATH; otherwise they are reported as
# unavailable. The device tool's 64 MiB per call counts the checkout's tracked files too (5.7 MiB in session 13): if a
# 58 MiB part no longer fits, re-split the bundle: cat part0* | split -b 50M -d -a 2 - DIR/part; (cd DIR &&
# sha256sum part* > SHA256SUMS); copy those parts instead. CUTLASS headers: from an importable `cutlass_library` (the bundle has one), else from the wheel
# under .whl/ (carry it).
# Results: $OUT/summary.txt, $OUT/gemm_<gpu>_<date>.{json,md}, $OUT/pair_timeline_<gpu>_<date>.{json,md} (timeline),
# $OUT/logs/*.log (tarred at the end).
set -u -o pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
BUDGET=${SUITE_BUDGET_S:-560}
OUT=${OUT:-$PWD/out/gpu_suite}
LOGS=$OUT/logs
mkdir -p "$LOGS"
STEPS=",${SUITE_STEPS:-build,test,sm80,bench,sanitize,serve},"
export VLLM_SQ_CUDA_ARCHS=${VLLM_SQ_CUDA_ARCHS:-80,90a}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 CMAKE_POLICY_VERSION_MINIMUM=3.5
note() { echo "== $1" | tee -a "$OUT/summary.txt"; }
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
# step NAME MIN_SECONDS: selected and at least MIN_SECONDS of budget left (else says it was skipped)
step() {
  [[ $STEPS == *",$1,"* ]] || return 1
  if (( $(left) < $2 )); then note "$1: SKIPPED, $(left) s of budget left (needs >= $2 s)"; return 1; fi
}
cap() { local l=$(( $(left) - 15 )); echo $(( l < $1 ? l : $1 )); }  # a step's timeout: its cap or what is left

note "gpu_suite on $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1), $(date -u +%FT%TZ)"

# --- vLLM bundle (optional) --------------------------------------------------------------------------------
if [[ -d /tmp/gpu-site ]]; then
  export PYTHONPATH=/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH} VLLM_USE_FLASHINFER_SAMPLER=0
  note "vLLM bundle: already unpacked"
elif [[ -f /tmp/gpu/SHA256SUMS ]]; then
  if (cd /tmp/gpu && sha256sum -c SHA256SUMS >/dev/null 2>&1 && cat part* | xz -d | tar x -C /tmp); then
    export PYTHONPATH=/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH} VLLM_USE_FLASHINFER_SAMPLER=0
    note "vLLM bundle: unpacked"
  else
    note "vLLM bundle: FAILED to verify/unpack ($(cd /tmp/gpu && sha256sum -c SHA256SUMS 2>&1 | grep -v OK$ | head -3))"
  fi
else
  note "vLLM bundle: absent (vLLM comparisons unavailable)"
fi

# --- CUTLASS headers -----------------------------------------------------------------------------------------
if ! python3 -c "import cutlass_library" 2>/dev/null; then
  if ls .whl/nvidia_cutlass-*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/nvidia_cutlass-*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  else
    note "CUTLASS: no cutlass_library and no .whl/nvidia_cutlass-*.whl: the build will fail"
  fi
fi

# --- build (pip install; the .so is also copied into the tree, which the tests import) ----------------------
# A call may reuse the extension an earlier call built and sent back ($OUT/prebuilt/, carried in as .prebuilt/):
# only when the hash of csrc/ and the CMake files matches the one stored beside it; else it builds.
src_hash() {  # the sources and the arch list
  { find csrc CMakeLists.txt -type f | LC_ALL=C sort | xargs sha256sum; echo "$VLLM_SQ_CUDA_ARCHS"; } |
    sha256sum | cut -c1-16
}
install_so() {  # copy the extension into the tree and into the installed package (vLLM's workers import either)
  cp "$1" vllm_sq/
  local site
  site=$(cd / && python3 -c 'import os, vllm_sq; print(os.path.dirname(vllm_sq.__file__))' 2>/dev/null)
  [[ -n "$site" && "$site" != "$PWD/vllm_sq" ]] && cp "$1" "$site/"
}
if step build 120; then
  start=$(date +%s)
  hash=$(src_hash)
  pre=.prebuilt/csrc-$hash.so.xz
  if [[ -f "$pre" ]]; then
    python3 -m pip install --no-build-isolation --no-deps -q -C cmake.define.VLLM_SQ_BUILD_EXTENSION=OFF . \
      >"$LOGS/build.log" 2>&1
    so=/tmp/_C$(python3 -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
    xz -dc "$pre" >"$so"
    install_so "$so"
    note "build: reused .prebuilt/$(basename "$pre") (csrc hash $hash), package installed in $(( $(date +%s) - start )) s"
  else
    ls .prebuilt/*.xz >/dev/null 2>&1 && note "build: .prebuilt/ holds builds of other sources ($(ls .prebuilt)), not $hash: rebuilding"
    # A warm machine keeps build/ between calls, but the copied sources may carry older mtimes than the objects
    # there, so ninja would see "no work to do" and install the previous sources' build. The folder keeps a copy
    # of the sources it last built; a file whose content differs from that copy gets a fresh mtime, so ninja
    # rebuilds exactly what changed (and what includes it).
    bdir=build/gpu-${VLLM_SQ_CUDA_ARCHS//[,;]/_}
    snap=$bdir/.built-sources
    if [[ -d $snap ]]; then
      changed=0
      while IFS= read -r f; do cmp -s "$f" "$snap/$f" || { touch "$f"; changed=$((changed + 1)); }; done \
        < <(find csrc CMakeLists.txt -type f)
      note "build: incremental in $bdir, $changed source file(s) changed since its last build"
    fi
    build() {
      CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) timeout "$(cap 480)" \
        python3 -m pip install --no-build-isolation --no-deps -v -C build-dir="$bdir" .
    }
    if build >"$LOGS/build.log" 2>&1 || {
         grep -q "provided by \"Torch\"\|TorchConfig\|Caffe2" "$LOGS/build.log" &&
         echo "== retrying with VLLM_SQ_TORCH_FROM_PYTHON=1" >>"$LOGS/build.log" &&
         VLLM_SQ_TORCH_FROM_PYTHON=1 build >>"$LOGS/build.log" 2>&1; }; then
      rm -rf "$snap" && mkdir -p "$snap" && cp -r --parents csrc CMakeLists.txt "$snap/"
      so=$(find "$bdir" -name '_C*.so' -not -path "$snap/*" | head -1)
      install_so "$so"
      # xz: the device tool returns files of at most 16 MiB
      mkdir -p "$OUT/prebuilt" && xz -T0 -c "$so" >"$OUT/prebuilt/csrc-$hash.so.xz"
      note "build: ok in $(( $(date +%s) - start )) s (arches $VLLM_SQ_CUDA_ARCHS, csrc hash $hash)"
    else
      note "build: FAILED after $(( $(date +%s) - start )) s (logs/build.log); last lines:"
      grep -E "error|Error|FAILED" "$LOGS/build.log" | head -15 | tee -a "$OUT/summary.txt"
    fi
  fi
fi
note "ops: $(python3 -c 'import vllm_sq.ops as o; print(o.available())' 2>&1 | tail -1)"

# --- tests -------------------------------------------------------------------------------------------------
if step test 60; then
  # the error-path tests run apart (verbose), so that a crash there cannot hide the other results
  timeout "$(cap "${SUITE_TEST_CAP_S:-480}")" python3 -m pytest -m gpu tests -q -p no:cacheprovider \
    -k "not rejects_bad_arguments${SUITE_TEST_FILTER:+ and ($SUITE_TEST_FILTER)}" \
    >"$LOGS/gpu_tests.log" 2>&1
  note "gpu tests: rc=$? $(tail -1 "$LOGS/gpu_tests.log")"
  timeout "$(cap 60)" python3 -m pytest -m gpu tests -v -p no:cacheprovider -k "rejects_bad_arguments" \
    >>"$LOGS/gpu_tests.log" 2>&1
  note "gpu error-path tests: rc=$? $(tail -1 "$LOGS/gpu_tests.log")"
  grep -E "^(FAILED|ERROR)" "$LOGS/gpu_tests.log" | head -20 | tee -a "$OUT/summary.txt"
fi

# --- the sm_80 (CUTLASS 2.x) kernels, run on this GPU through their compute_80 PTX ---------------------------------
if step sm80 60; then
  if [[ ",$VLLM_SQ_CUDA_ARCHS," == *",80,"* || ";$VLLM_SQ_CUDA_ARCHS;" == *";80;"* ]]; then
    VLLM_SQ_GEMM_ARCH=80 timeout "$(cap 200)" python3 -m pytest -m gpu tests/kernels/test_gemm.py -q \
      -p no:cacheprovider -k "not rejects_bad_arguments" >"$LOGS/sm80_tests.log" 2>&1
    note "sm_80 GEMM tests (VLLM_SQ_GEMM_ARCH=80, JIT from PTX): rc=$? $(tail -1 "$LOGS/sm80_tests.log")"
    grep -E "^(FAILED|ERROR)" "$LOGS/sm80_tests.log" | head -10 | tee -a "$OUT/summary.txt"
  else
    note "sm80: SKIPPED, VLLM_SQ_CUDA_ARCHS=$VLLM_SQ_CUDA_ARCHS has no 80"
  fi
fi

# --- GEMM benchmark ------------------------------------------------------------------------------------------
if step bench 90; then
  # SM clock, power and temperature while it runs: the int8 peak assumes the boost clock
  nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv,noheader,nounits -lms 250 \
    >"$LOGS/clocks.csv" 2>/dev/null &
  smi=$!
  # shellcheck disable=SC2086
  timeout "$(cap "${BENCH_CAP_S:-300}")" python3 -m benchmarks.gemm --out "$OUT" ${GEMM_ARGS:-} >"$LOGS/gemm.log" 2>&1
  note "gemm benchmark: rc=$? $(ls "$OUT"/gemm_*.md 2>/dev/null | head -1 | xargs -r basename)"
  kill "$smi" 2>/dev/null
  note "clocks during the benchmark (SM MHz, W, C): $(python3 -m benchmarks.clock_summary "$LOGS/clocks.csv" 2>&1 | tail -1)"
fi

# --- kernel timeline of quantize + GEMM pairs (right after the GEMM table: the same clocks) -------------------
if step timeline 60; then
  # shellcheck disable=SC2086
  timeout "$(cap 120)" python3 -m benchmarks.pair_timeline --out "$OUT" ${TIMELINE_ARGS:-} >"$LOGS/timeline.log" 2>&1
  note "pair timeline: rc=$? $(ls "$OUT"/pair_timeline_*.md 2>/dev/null | head -1 | xargs -r basename)"
fi

# --- compute-sanitizer memcheck on a subset (no caching allocator, so out-of-bounds accesses are visible) ---
if step sanitize 60; then
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout "$(cap 240)" compute-sanitizer --tool memcheck --error-exitcode 99 \
    python3 -m pytest -q -p no:cacheprovider tests/kernels \
    -k "(scale_granularities and 33) or (every_tile and 33 and 5120) or (skinny and 272) or (producer_reads and silu and 8) or (right_after and 16) or (azp and 255) or (quant and (7-80 or 5-12))" \
    >"$LOGS/memcheck.log" 2>&1
  rc=$?
  note "memcheck: rc=$rc (99 = errors found, 124 = timeout) $(grep -E 'ERROR SUMMARY' "$LOGS/memcheck.log" | tail -1) | $(tail -1 "$LOGS/memcheck.log")"
fi

# --- serving benchmarks (BENCH engineer's script) ------------------------------------------------------------
if [[ -f benchmarks/serve_suite.sh ]] && step serve 120; then
  OUT=$OUT/serve timeout "$(cap 600)" bash benchmarks/serve_suite.sh >"$LOGS/serve_suite.log" 2>&1
  note "serve suite: rc=$?"
fi

# one archive for every log (the device tool returns at most 8 files, 2 folders deep)
serve_logs=$(cd "$OUT" && find serve -type d -name logs 2>/dev/null)
# shellcheck disable=SC2086
tar czf "$OUT/logs.tar.gz" -C "$OUT" logs $serve_logs && rm -rf "$LOGS" ${serve_logs:+$(cd "$OUT" && realpath $serve_logs)}
note "total $(( $(date +%s) - T0 )) s"
echo
cat "$OUT"/gemm_*.md 2>/dev/null
echo
cat "$OUT/summary.txt"
