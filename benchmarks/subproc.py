"""Run one benchmark step in its own process group, bounded in time, its output kept in a log file.

vLLM does not reliably free GPU memory inside a process, and a hung engine must not stop the rest of a suite,
so every engine start happens in a child that is killed (with its engine-core and worker children) on timeout.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# vLLM's front end re-raises a worker's failure under these generic messages; the root cause comes earlier.
_WRAPPER_ERRORS = ("root cause", "Engine core initialization failed")
_ERROR_RE = re.compile(r"\b\w*(Error|Exception): ")


@dataclass
class ChildResult:
    returncode: int | None  # None: killed on timeout
    seconds: float
    log_path: Path

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def error_line(self) -> str:
        """The last line of the log that names an exception (what a table's footnote should show)."""
        lines = self.log_tail(200).splitlines()
        for i in range(len(lines) - 1, -1, -1):
            if _ERROR_RE.search(lines[i]) and not any(w in lines[i] for w in _WRAPPER_ERRORS):
                # pydantic and similar put the reason on an indented continuation line
                detail = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1][:1].isspace() else ""
                return (lines[i].strip() + (" " + detail if detail else ""))[:400]
        return ""

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(proc: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM the child's process group (leader and leftovers), SIGKILL whatever is left after `grace_s`."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if not _group_alive(proc.pid):
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            proc.poll()
            if not _group_alive(proc.pid):
                break
            time.sleep(0.2)
    proc.poll()


def run_logged(cmd: list[str], log_path: Path, timeout_s: float, *, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> ChildResult:
    """Run `cmd` with stdout+stderr into `log_path`; kill its whole process group after `timeout_s`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True)
        try:
            returncode: int | None = proc.wait(timeout=max(timeout_s, 1.0))
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            # Also reaps engine-core/worker processes a finished child may have left behind.
            stop_group(proc)
    return ChildResult(returncode, time.monotonic() - start, log_path)
