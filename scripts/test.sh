#!/usr/bin/env bash
# Run the test suite in the project venv (GPU tests skip themselves where no GPU is present).
# Extra arguments go to pytest, e.g.: bash scripts/test.sh tests/calibration -k export
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
exec .venv/bin/python -m pytest "${@:-tests}"
