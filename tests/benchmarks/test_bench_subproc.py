"""benchmarks.subproc: bounded children whose whole process group dies on timeout."""

import os
import sys
import time

from benchmarks.subproc import ChildResult, run_logged


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it no longer runs
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_timeout_kills_the_child_and_its_grandchildren(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    script = ("import subprocess, sys, time; "
              f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              f"open({str(pid_file)!r}, 'w').write(str(p.pid)); print('started', flush=True); time.sleep(60)")
    start = time.monotonic()
    res = run_logged([sys.executable, "-c", script], tmp_path / "log.txt", timeout_s=3)
    assert res.timed_out and time.monotonic() - start < 30
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)
    assert "started" in res.log_path.read_text()


def test_exit_code_and_root_cause_line(tmp_path):
    log = tmp_path / "fail.log"
    res = run_logged([sys.executable, "-c", "import sys; print('x'); sys.exit(3)"], log, timeout_s=30)
    assert res.returncode == 3 and not res.timed_out
    log.write_text(
        "(Worker pid=1) ERROR [x.py:1] RuntimeError: expected scalar type Float but found BFloat16\n"
        "Exception: WorkerProc initialization failed due to an exception. See stack trace for root cause.\n"
        "RuntimeError: Engine core initialization failed. See root cause above.\n")
    assert ChildResult(1, 0.0, log).error_line().endswith("RuntimeError: expected scalar type Float but found BFloat16")
    log.write_text("pydantic_core.ValidationError: 1 validation error for ModelConfig\n"
                   "  Value error, Unknown quantization method: smoothquant.\n")
    assert "Unknown quantization method" in ChildResult(1, 0.0, log).error_line()
