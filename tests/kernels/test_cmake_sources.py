"""csrc/CMakeLists.txt against the sources (CPU): every kernel source is built, in exactly one list, and the
CUTLASS_ENABLE_GDC_FOR_SM90 list (_sm90_gdc_srcs) holds no stream-K tile, which does not compile with it in
CUTLASS 4.2, while every tile the sm90 dispatch table launches as a programmatic dependent is built only there
(the run refuses the launch otherwise, at the first call on a GPU)."""

from __future__ import annotations

import re
from pathlib import Path

CSRC = Path(__file__).resolve().parents[2] / "csrc"
CMAKE = (CSRC / "CMakeLists.txt").read_text()


def _cmake_list(name: str) -> list[str]:
    match = re.search(rf"set\({name}\s+([^)]*)\)", CMAKE)
    assert match, f"csrc/CMakeLists.txt sets no {name}"
    return [w for w in match.group(1).split() if not w.startswith("#")]


def _instantiated(source: str) -> set[str]:
    """Symmetric configurations explicitly instantiated in one .cu file."""
    text = (CSRC / source).read_text()
    return set(re.findall(r"VLLM_SQ_SM90_INSTANTIATE\((\w+),\s*[\w:]+,\s*false\)", text))


def _stream_k_configs() -> set[str]:
    text = (CSRC / "gemm/sm90/configs_sm90.cuh").read_text()
    configs = re.findall(r"struct (\w+)\s*:\s*TileConfig<([^;]*?)>\s*\{\};", text, flags=re.S)
    assert configs, "no TileConfig structs found in configs_sm90.cuh"
    return {name for name, params in configs if re.search(r"\bStreamK\b", params)}


def test_every_kernel_source_is_in_exactly_one_list():
    lists = {name: _cmake_list(name) for name in ("_generic_srcs", "_sm90_srcs", "_sm90_gdc_srcs", "_sm80_srcs")}
    listed = [src for srcs in lists.values() for src in srcs]
    assert len(listed) == len(set(listed)), f"a source is in two lists: {lists}"
    on_disk = {str(p.relative_to(CSRC)) for p in CSRC.rglob("*.cu")} - {"gemm/sm90/dispatch_sm90.cu",
                                                                        "gemm/sm80/dispatch_sm80.cu"}
    assert on_disk == set(listed), f"not built: {on_disk - set(listed)}; missing: {set(listed) - on_disk}"


def test_gdc_sources_hold_no_stream_k_tile():
    stream_k = _stream_k_configs()
    assert {"DecodeSwap64", "Mid"} <= stream_k
    for src in _cmake_list("_sm90_gdc_srcs"):
        assert not _instantiated(src) & stream_k, f"{src} instantiates a stream-K tile: {_instantiated(src) & stream_k}"


def test_programmatic_tiles_are_built_with_gdc_only():
    table = (CSRC / "gemm/sm90/dispatch_sm90.cu").read_text()
    entries = re.findall(r"entry<(\w+),\s*(?:true|false)>\(\"\w+\",\s*(true|false)\)", table)
    assert entries, "no configuration entries found in dispatch_sm90.cu"
    pdl = {name for name, flag in entries if flag == "true"}
    assert pdl, "no tile is launched as a programmatic dependent"
    gdc = set().union(*(_instantiated(s) for s in _cmake_list("_sm90_gdc_srcs")))
    other = set().union(*(_instantiated(s) for s in _cmake_list("_sm90_srcs") if s.startswith("gemm/sm90/")))
    assert pdl <= gdc, f"launched as dependents but not built with GDC: {pdl - gdc}"
    assert not pdl & other, f"also instantiated without GDC: {pdl & other}"
