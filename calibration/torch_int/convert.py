"""Convert a torch-int `Int8OPT` checkpoint into this project's `smoothquant` format (docs/checkpoint_format.md).

The original checkpoint stores only *ratios* of scales (`a = s_in * s_w / s_out`, norms divided by `s_in`,
`qk_bmm.a = s_q * s_k`, `pv_bmm.a = s_v / (127 * s_out_in)`), never the real activation scales themselves.
They are not needed: every activation the original quantizes is re-expressed here in the original's int8
code units, so every static `input_scale` is exactly 1 and each stored `a` becomes a weight scale unchanged.
The int8 codes entering every linear are then the same numbers the original computes (see docs/torch_int.md
for the argument and for what differs: the original's int8 q/k/v outputs and int8 attention BMMs).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from calibration.torch_int.layout import (
    FLOAT_OUT_LINEARS,
    GLOBAL_TENSORS,
    INT8_OUT_LINEARS,
    LAYER_PREFIX,
    LAYER_TENSORS,
    LM_HEAD,
    NORMS,
    OPTDims,
    TorchIntLayoutError,
    check_config,
    check_tensor,
    config_dict,
    scalar,
    split_layer_name,
)

__all__ = ["convert_torch_int", "convert_torch_int_state_dict", "iter_checkpoint_tensors", "quantization_config"]

Tensors = Iterable[tuple[str, torch.Tensor]] | Mapping[str, torch.Tensor]


def quantization_config() -> dict[str, Any]:
    """The `quantization_config` of a converted checkpoint: per-tensor int8 weights, static per-tensor inputs.

    `alpha` is informational: the original export (`examples/export_int8_model.py`) smoothed OPT with 0.5.
    """
    return {
        "quant_method": "smoothquant",
        "format_version": 1,
        "weight_bits": 8,
        "weight_granularity": "per_tensor",
        "activation_granularity": "per_tensor",
        "activation_dynamic": False,
        "activation_symmetric": True,
        "alpha": 0.5,
        "ignored_modules": ["lm_head"],
    }


def model_dtype(config: Mapping[str, Any] | Any) -> torch.dtype:
    """The float dtype named by config.json (`torch_dtype`, or `dtype` in newer transformers); float32 if none."""
    cfg = config_dict(config)
    name = cfg.get("torch_dtype") or cfg.get("dtype") or "float32"
    dtype = getattr(torch, str(name).removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TorchIntLayoutError(f"config.json names an unknown model dtype {name!r}")
    return dtype


def convert_torch_int_state_dict(
    config: Mapping[str, Any] | Any, tensors: Tensors, *, dtype: torch.dtype | None = None
) -> tuple[dict[str, Any], Iterator[tuple[str, torch.Tensor]]]:
    """Map torch-int tensors to `smoothquant` tensors; usable on a state dict or on a loader's stream.

    Returns `(quantization_config, converted)`. The config is checked at once; tensors are checked and
    converted lazily, one decoder layer at a time as soon as all of its tensors have arrived (so a streaming
    loader holds at most the layers whose tensors are split across its files). Errors name the module.
    Float tensors come out in `dtype` (default: the config's model dtype), scales in float32.
    """
    dims = check_config(config)
    out_dtype = dtype or model_dtype(config)
    items = tensors.items() if isinstance(tensors, Mapping) else tensors
    return quantization_config(), _convert_stream(dims, items, out_dtype)


def _convert_stream(
    dims: OPTDims, items: Iterable[tuple[str, torch.Tensor]], dtype: torch.dtype
) -> Iterator[tuple[str, torch.Tensor]]:
    pending: dict[int, dict[str, dict[str, torch.Tensor]]] = {}
    done: set[int] = set()
    globals_seen: set[str] = set()
    for name, value in items:
        parts = split_layer_name(name)
        if parts is None:
            if name not in GLOBAL_TENSORS and name != LM_HEAD:
                raise TorchIntLayoutError(f"unexpected tensor {name!r} (module {name.rpartition('.')[0]!r}) "
                                          "outside the decoder layers of the torch-int Int8OPT layout")
            if name in globals_seen:
                raise TorchIntLayoutError(f"tensor {name!r} appears twice")
            if not value.is_floating_point() or not torch.isfinite(value).all():
                raise TorchIntLayoutError(f"{name}: expected finite float values, got {value.dtype}")
            globals_seen.add(name)
            yield name, value.to(dtype)
            continue
        layer, module, tensor = parts
        full = f"{LAYER_PREFIX}{layer}.{module}"
        if module not in LAYER_TENSORS:
            raise TorchIntLayoutError(f"unexpected module {full!r} (tensor {tensor!r}): the torch-int Int8OPT decoder "
                                      f"layer has only {', '.join(LAYER_TENSORS)}")
        if tensor not in LAYER_TENSORS[module]:
            raise TorchIntLayoutError(f"{full}: unexpected tensor {tensor!r}; torch-int stores "
                                      f"{', '.join(LAYER_TENSORS[module])}")
        if layer >= dims.layers:
            raise TorchIntLayoutError(f"unexpected module {full!r}: layer {layer} is beyond "
                                      f"num_hidden_layers={dims.layers}")
        if layer in done:
            raise TorchIntLayoutError(f"{full}: tensor {tensor!r} appears twice")
        slot = pending.setdefault(layer, {}).setdefault(module, {})
        if tensor in slot:
            raise TorchIntLayoutError(f"{full}: tensor {tensor!r} appears twice")
        slot[tensor] = check_tensor(dims, layer, module, tensor, value)
        if _complete(pending[layer]):
            done.add(layer)
            yield from _convert_layer(dims, layer, pending.pop(layer), dtype)
    for layer in sorted(pending):
        for module, wanted in LAYER_TENSORS.items():
            missing = [t for t in wanted if t not in pending[layer].get(module, {})]
            if missing:
                kind = "scalar" if all(t in ("a", "b") for t in missing) else "tensor"
                raise TorchIntLayoutError(f"{LAYER_PREFIX}{layer}.{module}: missing {kind} "
                                          f"{', '.join(repr(t) for t in missing)} (torch-int stores "
                                          f"{', '.join(LAYER_TENSORS[module])})")
    absent = [i for i in range(dims.layers) if i not in done]
    if absent:
        raise TorchIntLayoutError(f"decoder layers {absent} are missing ({LAYER_PREFIX}{absent[0]}.*)")
    missing_globals = [n for n in GLOBAL_TENSORS if n not in globals_seen]
    if not dims.tied and LM_HEAD not in globals_seen:
        missing_globals.append(LM_HEAD)
    if missing_globals:
        raise TorchIntLayoutError(f"missing tensors {missing_globals}")


def _complete(layer: dict[str, dict[str, torch.Tensor]]) -> bool:
    return all(len(layer.get(m, ())) == len(ts) for m, ts in LAYER_TENSORS.items())


def _convert_layer(
    dims: OPTDims, layer: int, t: dict[str, dict[str, torch.Tensor]], dtype: torch.dtype
) -> Iterator[tuple[str, torch.Tensor]]:
    """One decoder layer. Activation units ("gauges") per linear output, in original int8 codes:

    - q, k: the scores `qk_bmm.a * (q_codes . k_codes)` must come out of vLLM's `scaling * (q . k)`, so each
      side carries `sqrt(qk_bmm.a / scaling)` per code;
    - v: `pv_bmm` turns `P . v_codes` into out_proj's input codes with factor `127 * pv_bmm.a` (P in [0, 1]
      where the original has round(127 P)); v carries that factor, so out_proj's input is in codes (scale 1);
    - fc1: its int8 output codes are fc2's input codes: unit 1.
    """
    prefix = f"{LAYER_PREFIX}{layer}."
    a = {m: scalar(t[m]["a"], prefix + m, "a") for m in (*INT8_OUT_LINEARS, *FLOAT_OUT_LINEARS, "self_attn.qk_bmm",
                                                           "self_attn.pv_bmm")}
    b = {m: scalar(t[m]["b"], prefix + m, "b") for m in INT8_OUT_LINEARS}
    qk_unit = math.sqrt(a["self_attn.qk_bmm"] / dims.scaling)
    unit = {"self_attn.q_proj": qk_unit, "self_attn.k_proj": qk_unit,
            "self_attn.v_proj": 127.0 * a["self_attn.pv_bmm"], "fc1": 1.0}
    one = torch.ones(1, dtype=torch.float32)

    for norm in NORMS:  # kept divided by the input scale: the norm outputs int8 codes (input_scale 1)
        for tensor in ("weight", "bias"):
            yield f"{prefix}{norm}.{tensor}", t[norm][tensor].to(dtype)
    for m in INT8_OUT_LINEARS:
        # original: codes = round(a * acc + b * bias_q); here y = unit * (a * acc + b * bias_q), unrounded.
        bias_codes = t[m]["bias"].float() * torch.tensor(b[m], dtype=torch.float32)
        yield f"{prefix}{m}.weight", t[m]["weight"].contiguous()
        yield f"{prefix}{m}.weight_scale", torch.tensor([a[m] * unit[m]], dtype=torch.float32)
        yield f"{prefix}{m}.input_scale", one.clone()
        yield f"{prefix}{m}.bias", (bias_codes.double() * unit[m]).to(dtype)
    for m in FLOAT_OUT_LINEARS:
        # original: y = a * acc + bias (fp32), input codes in the unit set above.
        yield f"{prefix}{m}.weight", t[m]["weight"].contiguous()
        yield f"{prefix}{m}.weight_scale", torch.tensor([a[m]], dtype=torch.float32)
        yield f"{prefix}{m}.input_scale", one.clone()
        yield f"{prefix}{m}.bias", t[m]["bias"].to(dtype)


def iter_checkpoint_tensors(src: str | os.PathLike[str]) -> Iterator[tuple[str, torch.Tensor]]:
    """All tensors of a Hugging Face model directory (safetensors preferred, else pytorch_model*.bin), file by file."""
    root = Path(src)
    files = sorted(root.glob("*.safetensors")) or sorted(root.glob("pytorch_model*.bin"))
    if not files:
        raise FileNotFoundError(f"{root}: no *.safetensors or pytorch_model*.bin files")
    for path in files:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                for name in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
                    yield name, f.get_tensor(name)
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # legacy (non-zip) serialization cannot be memory-mapped
                state = torch.load(path, map_location="cpu", weights_only=True)
            yield from state.items()
            del state


def convert_torch_int(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    overwrite: bool = False,
    *,
    max_shard_bytes: int = 4 << 30,
) -> Path:
    """Convert the torch-int checkpoint directory `src` into a `smoothquant` checkpoint at `dst`.

    Tokenizer and generation files are copied; config.json gets `architectures: ["OPTForCausalLM"]` and the
    `quantization_config`. The result is written to a temporary sibling directory and moved into place only
    when complete; an existing `dst` is replaced only with `overwrite=True`.
    """
    src_path, dst_path = Path(src).resolve(), Path(dst).resolve()
    if src_path == dst_path:
        raise ValueError("convert_torch_int: src and dst are the same directory")
    if dst_path.exists() and any(dst_path.iterdir()) and not overwrite:
        raise FileExistsError(f"{dst_path} exists and is not empty (pass overwrite=True / --overwrite)")
    config = json.loads((src_path / "config.json").read_text())
    qcfg, converted = convert_torch_int_state_dict(config, iter_checkpoint_tensors(src_path))

    dst_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst_path.name}.", dir=dst_path.parent))
    try:
        _write_shards(converted, tmp, max_shard_bytes)
        config["architectures"] = ["OPTForCausalLM"]
        config["quantization_config"] = qcfg
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        for f in src_path.iterdir():
            if f.is_file() and f.name != "config.json" and not _is_weight_file(f.name):
                shutil.copy2(f, tmp / f.name)
        if dst_path.exists():
            shutil.rmtree(dst_path)
        tmp.rename(dst_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst_path


def _is_weight_file(name: str) -> bool:
    return name.endswith((".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json", ".pt", ".pth"))


def _write_shards(tensors: Iterable[tuple[str, torch.Tensor]], out: Path, max_shard_bytes: int) -> None:
    """safetensors shards of at most `max_shard_bytes` (one `model.safetensors` if it fits), plus the index."""
    from safetensors.torch import save_file

    shards: list[dict[str, str]] = []
    current: dict[str, torch.Tensor] = {}
    size = total = 0

    def flush() -> None:
        nonlocal current, size
        tmp_name = f"shard-{len(shards):05d}.safetensors"
        save_file(current, str(out / tmp_name), metadata={"format": "pt"})
        shards.append(dict.fromkeys(current, tmp_name))
        current, size = {}, 0

    for name, value in tensors:
        nbytes = value.numel() * value.element_size()
        if current and size + nbytes > max_shard_bytes:
            flush()
        current[name] = value.contiguous()
        size += nbytes
        total += nbytes
    if current or not shards:
        flush()
    if len(shards) == 1:
        (out / "shard-00000.safetensors").rename(out / "model.safetensors")
        return
    weight_map: dict[str, str] = {}
    for i, shard in enumerate(shards):
        final = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        (out / f"shard-{i:05d}.safetensors").rename(out / final)
        weight_map.update(dict.fromkeys(shard, final))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
