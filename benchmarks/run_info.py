"""Provenance recorded with every benchmark result: where, when, with which vLLM and which commit."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str:
    """HEAD of the repository, with `-dirty` when tracked files differ from it.

    $VLLM_SQ_COMMIT, when set, wins: the GPU machine's copy of the tree may carry a stale .git (seen: the
    session's first commit), so the caller names the commit it sent. Without .git or the variable: "unknown".
    """
    if os.environ.get("VLLM_SQ_COMMIT"):
        return os.environ["VLLM_SQ_COMMIT"]
    if not (REPO_ROOT / ".git").exists():
        return "unknown"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def _nvidia_smi_names() -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def device_name() -> str:
    """The GPU's name, or the CPU's model when there is no CUDA device.

    Asks nvidia-smi first: a CUDA context in a benchmark's parent process would hold GPU memory that its
    engine children then cannot use.
    """
    names = _nvidia_smi_names()
    if names:
        return names[0] if len(names) == 1 else f"{len(names)}x {names[0]}"
    try:
        import torch

        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            name = torch.cuda.get_device_name(0)
            return name if count == 1 else f"{count}x {name}"
    except ImportError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return "CPU: " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU: " + (platform.processor() or platform.machine())


def package_version(name: str) -> str | None:
    """`name.__version__` if importable, else None (never raises)."""
    try:
        module = __import__(name)
    except Exception:  # a broken install must not stop the report
        return None
    return str(getattr(module, "__version__", None))


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_info() -> dict[str, Any]:
    """Everything a reader needs to place a number: device, date, software versions, commit, host."""
    return {
        "date_utc": utc_now(),
        "device": device_name(),
        "vllm": package_version("vllm"),
        "torch": package_version("torch"),
        "python": platform.python_version(),
        "commit": git_commit(),
        "host": platform.node(),
    }


def smoothquant_plugin_missing() -> str | None:
    """Why vLLM would not know `smoothquant` in its engine processes (None when the entry point is installed).

    vLLM loads plugins from installed entry points in every process, so importing vllm_sq here is not enough.
    """
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="vllm.general_plugins")}
    if "smoothquant" not in names:
        return ("the vllm.general_plugins entry point 'smoothquant' is not installed "
                "(pip install --no-build-isolation -e . in the repository)")
    return None
