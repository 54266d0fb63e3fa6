"""The sources CMake builds for every arch (`_generic_srcs` in csrc/CMakeLists.txt) compile for the lowest arch of
the default list. The default `pip install` builds sm_80 and sm_89 next to sm_90a; a source there that uses sm_90-only
PTX (mbarrier try_wait, clusters, bulk copies) breaks the whole build, yet GPU runs that build only 90a never see it
(the skinny GEMM did, until it moved to the sm_90 sources). CPU: needs nvcc and torch's headers, runs in CI."""

from __future__ import annotations

import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from torch.utils.cpp_extension import include_paths

CSRC = Path(__file__).resolve().parents[2] / "csrc"
CMAKE = (CSRC / "CMakeLists.txt").read_text()


def _cmake_list(name: str) -> list[str]:
    match = re.search(rf"set\({name}\s+([^)]*)\)", CMAKE)
    assert match, f"csrc/CMakeLists.txt sets no {name}"
    return match.group(1).split()


def _lowest_default_arch() -> str:
    archs = [a for a in re.split(r"[;\s]+", _cmake_list("_archs")[0].strip('"')) if a]
    return min((a for a in archs if not a.endswith("a")), key=int)


def test_default_arch_list_starts_at_sm80():
    assert _lowest_default_arch() == "80"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("source", _cmake_list("_generic_srcs"))
def test_generic_source_compiles_for_the_lowest_arch(source, tmp_path):
    arch = _lowest_default_arch()
    # torch's CPU wheels lack the header CMake generates for CUDA builds; an empty one stands in
    stub = tmp_path / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    stub.parent.mkdir(parents=True)
    stub.write_text("#pragma once\n")
    includes = [str(CSRC), str(tmp_path), *include_paths(), sysconfig.get_paths()["include"]]
    cmd = ["nvcc", "-std=c++17", "-O1", "-c", "-o", str(tmp_path / "out.o"),
           f"-gencode=arch=compute_{arch},code=sm_{arch}", "--expt-relaxed-constexpr", "-diag-suppress", "3306",
           "-DNDEBUG", "-DVLLM_SQ_WITH_SM90", "-DVLLM_SQ_WITH_SM80",  # the definitions of the default build
           *(f"-I{p}" for p in includes), str(CSRC / source)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{source} does not compile for sm_{arch}:\n{proc.stderr[-3000:]}"
