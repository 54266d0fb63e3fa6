"""Weightless model directories at real LLM shapes, for vLLM's `load_format="dummy"`.

Serving benchmarks need the exact layer shapes of Llama-2-7B/13B or Llama-3-8B but no trained weights (none can
be downloaded where this project is tested, and random weights run at the same speed). A directory written here
holds only config.json (optionally with a `quantization_config`) and a word-level tokenizer whose vocabulary has
exactly the model's size, so token-id prompts, detokenization and `vllm serve` all work. vLLM fills every
parameter itself when loaded with `load_format="dummy"`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

UNK, BOS, EOS = 0, 1, 2


@dataclass(frozen=True)
class LlamaShape:
    """The config fields that decide a Llama model's cost."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    max_position_embeddings: int
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5


SHAPES: dict[str, LlamaShape] = {
    "7b": LlamaShape(4096, 11008, 32, 32, 32, 32000, 4096),
    "13b": LlamaShape(5120, 13824, 40, 40, 40, 32000, 4096),
    "llama3-8b": LlamaShape(4096, 14336, 32, 32, 8, 128256, 8192, rope_theta=500000.0),
    # Two layers at toy width: CPU smoke tests of the benchmark scripts.
    "tiny": LlamaShape(128, 256, 2, 4, 4, 512, 2048),
}

# `quantization_config` variants a dummy directory can carry.
QUANT_SCHEMES = ("bf16", "smoothquant-dynamic", "smoothquant-static", "w8a8-int8")


def smoothquant_config(*, dynamic: bool, alpha: float = 0.5) -> dict[str, Any]:
    """This project's `quantization_config` (docs/checkpoint_format.md): O1 (dynamic per-token) or O3 (static)."""
    return {
        "quant_method": "smoothquant",
        "format_version": 1,
        "weight_bits": 8,
        "weight_granularity": "per_channel",
        "activation_granularity": "per_token" if dynamic else "per_tensor",
        "activation_dynamic": dynamic,
        "activation_symmetric": True,
        "alpha": alpha,
        "ignored_modules": ["lm_head"],
    }


def compressed_tensors_w8a8_config() -> dict[str, Any]:
    """vLLM's built-in INT8 path: per-channel int8 weights, dynamic symmetric per-token int8 activations."""
    return {
        "quant_method": "compressed-tensors",
        "format": "int-quantized",
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": {
                    "num_bits": 8,
                    "type": "int",
                    "symmetric": True,
                    "strategy": "channel",
                    "dynamic": False,
                    "group_size": None,
                    "observer": "minmax",
                },
                "input_activations": {
                    "num_bits": 8,
                    "type": "int",
                    "symmetric": True,
                    "strategy": "token",
                    "dynamic": True,
                    "observer": None,
                },
                "output_activations": None,
            }
        },
        "ignore": ["lm_head"],
        "kv_cache_scheme": None,
    }


def quantization_config(scheme: str) -> dict[str, Any] | None:
    """The `quantization_config` for one of QUANT_SCHEMES (None for bf16)."""
    if scheme == "bf16":
        return None
    if scheme == "smoothquant-dynamic":
        return smoothquant_config(dynamic=True)
    if scheme == "smoothquant-static":
        return smoothquant_config(dynamic=False)
    if scheme == "w8a8-int8":
        return compressed_tensors_w8a8_config()
    raise ValueError(f"unknown quantization scheme {scheme!r}; expected one of {QUANT_SCHEMES}")


def resolve_shape(shape: str | LlamaShape) -> LlamaShape:
    """A shape by name (SHAPES) or as given."""
    if isinstance(shape, LlamaShape):
        return shape
    if shape not in SHAPES:
        raise ValueError(f"unknown model shape {shape!r}; expected one of {sorted(SHAPES)}")
    return SHAPES[shape]


def llama_config(shape: LlamaShape, scheme: str = "bf16") -> dict[str, Any]:
    """A Hugging Face LlamaForCausalLM config.json for `shape`, with the scheme's quantization_config."""
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        **asdict(shape),
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "torch_dtype": "bfloat16",
        "use_cache": True,
    }
    quant = quantization_config(scheme)
    if quant is not None:
        config["quantization_config"] = quant
    return config


def write_word_tokenizer(path: Path, vocab_size: int) -> None:
    """Save a word-level fast tokenizer with exactly `vocab_size` ids: `<unk>`, `<s>`, `</s>`, then `w3`, `w4`, ...

    Every id the dummy model can emit decodes to a word that encodes back to the same id, so token counts of
    prompts survive a round trip through text.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 4:
        raise ValueError(f"vocab_size must be at least 4, got {vocab_size}")
    vocab = {"<unk>": UNK, "<s>": BOS, "</s>": EOS}
    vocab.update({f"w{i}": i for i in range(3, vocab_size)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", model_max_length=1 << 20
    )
    fast.save_pretrained(str(path))


def write_dummy_model(
    path: str | Path, shape: str | LlamaShape = "7b", scheme: str = "bf16", *, overwrite: bool = True, **overrides: Any
) -> Path:
    """Write config.json and a tokenizer for a dummy-weight Llama model; returns the directory.

    `scheme` is one of QUANT_SCHEMES; `overrides` replace LlamaShape fields (e.g. `num_hidden_layers=2`).
    Load the result with `LLM(path, load_format="dummy")` or `vllm serve path --load-format dummy`.
    """
    resolved = replace(resolve_shape(shape), **overrides) if overrides else resolve_shape(shape)
    out = Path(path)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty (pass overwrite=True)")
    out.mkdir(parents=True, exist_ok=True)
    config = llama_config(resolved, scheme)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": BOS, "eos_token_id": EOS, "do_sample": False}, indent=2) + "\n"
    )
    write_word_tokenizer(out, resolved.vocab_size)
    return out
