"""Tiny random-weight Hugging Face models with a locally trained tokenizer.

No weights can be downloaded where the project is tested, so tests, the demo and the README example build
their own models: a real transformers architecture at toy size, randomly initialized, optionally with the
systematic outlier channels that make large LLMs hard to quantize (a few hidden channels amplified at every
norm, as observed in models above 6.7B parameters).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast

from calibration.models.corpus import SENTENCES, sample_texts

__all__ = ["OUTLIER_SCALE", "SUPPORTED_ARCHS", "build_tiny_model", "outlier_channels", "sample_texts", "save_tiny_model"]

# Special tokens: ids 0..3 in this order.
PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
OUTLIER_SCALE = 60.0
HEAD_DIM = 32  # vLLM's CPU attention supports head sizes 32, 64, 80, ...


def outlier_channels(hidden_size: int) -> list[int]:
    """Fixed hidden channels that carry the injected outliers (about 3% of the channels, at least 2)."""
    count = max(2, hidden_size // 32)
    return sorted({(7 + 37 * i) % hidden_size for i in range(count)})


@functools.lru_cache(maxsize=4)
def _tokenizer_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(SENTENCES) * 2, trainer=trainer)
    return tok.to_str()


def build_tokenizer(vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on the embedded corpus (deterministic, offline)."""
    from tokenizers import Tokenizer

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(vocab_size)),
        bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
    )
    tok.model_max_length = 512
    return tok


def _heads(hidden_size: int) -> int:
    if hidden_size % HEAD_DIM:
        raise ValueError(f"hidden_size must be a multiple of {HEAD_DIM} (vLLM CPU head sizes), got {hidden_size}")
    return hidden_size // HEAD_DIM


def _common(h: int, layers: int, vocab: int) -> dict[str, Any]:
    return dict(vocab_size=vocab, hidden_size=h, num_hidden_layers=layers, num_attention_heads=_heads(h),
                max_position_embeddings=512, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def _llama_like(model_type: str, *, gqa: bool = True, **extra: Any) -> Callable[[int, int, int], PretrainedConfig]:
    def make(h: int, layers: int, vocab: int) -> PretrainedConfig:
        from transformers import AutoConfig

        heads = _heads(h)
        kw = _common(h, layers, vocab) | dict(
            intermediate_size=2 * h + h // 2 + 32,  # not a multiple of the hidden size: catches transposes
            num_key_value_heads=max(1, heads // 2) if gqa else heads,
            head_dim=HEAD_DIM, tie_word_embeddings=False,
        ) | extra
        return AutoConfig.for_model(model_type, **kw)
    return make


def _opt(h: int, layers: int, vocab: int) -> PretrainedConfig:
    from transformers import OPTConfig

    kw = _common(h, layers, vocab) | dict(ffn_dim=4 * h, word_embed_proj_dim=h, bos_token_id=1,
                                          dropout=0.0, tie_word_embeddings=True)
    return OPTConfig(**kw)


def _falcon(h: int, layers: int, vocab: int) -> PretrainedConfig:
    from transformers import FalconConfig

    kw = _common(h, layers, vocab) | dict(multi_query=True, parallel_attn=True, new_decoder_architecture=False,
                                          bias=False, alibi=False, tie_word_embeddings=True)
    return FalconConfig(**kw)


def _bloom(h: int, layers: int, vocab: int) -> PretrainedConfig:
    from transformers import BloomConfig

    return BloomConfig(vocab_size=vocab, hidden_size=h, n_layer=layers, n_head=_heads(h), pad_token_id=0,
                       bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)


_CONFIGS: dict[str, Callable[[int, int, int], PretrainedConfig]] = {
    "llama": _llama_like("llama"),
    "mistral": _llama_like("mistral", sliding_window=None),
    "qwen2": _llama_like("qwen2"),
    "qwen3": _llama_like("qwen3"),
    "phi3": _llama_like("phi3", original_max_position_embeddings=512),
    "mixtral": _llama_like("mixtral", num_local_experts=4, num_experts_per_tok=2, sliding_window=None),
    "opt": _opt,
    "falcon": _falcon,
    "bloom": _bloom,
}
SUPPORTED_ARCHS: tuple[str, ...] = tuple(_CONFIGS)


def _inject_outliers(model: nn.Module, hidden_size: int, scale: float) -> None:
    """Amplify fixed channels at every per-layer hidden-size norm (not the final one, not Qwen3's q/k norms)."""
    channels = outlier_channels(hidden_size)
    for layer_list in (m for m in model.modules() if isinstance(m, nn.ModuleList)):
        for mod in layer_list.modules():
            weight = getattr(mod, "weight", None)
            if ("norm" in type(mod).__name__.lower() and isinstance(weight, nn.Parameter)
                    and weight.shape == (hidden_size,)):
                weight.data[channels] *= scale


@torch.no_grad()
def build_tiny_model(
    arch: str = "llama",
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    vocab_size: int = 512,
    outliers: bool = False,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Build a random-init causal LM of architecture `arch` and its local tokenizer.

    Norm weights/biases and linear biases are perturbed away from their trivial init (ones/zeros) so that
    any mistake in folding smoothing factors into them shows up in tests. `outliers=True` multiplies a few
    fixed hidden channels (`outlier_channels`) of every per-layer norm weight by `OUTLIER_SCALE`.
    """
    if arch not in _CONFIGS:
        raise ValueError(f"unknown tiny architecture {arch!r}; supported: {', '.join(SUPPORTED_ARCHS)}")
    config = _CONFIGS[arch](hidden_size, num_layers, vocab_size)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed + 1)
    for mod in model.modules():
        is_norm = "norm" in type(mod).__name__.lower()
        w, b = getattr(mod, "weight", None), getattr(mod, "bias", None)
        if is_norm and isinstance(w, nn.Parameter):
            w.data = 1.0 + 0.1 * torch.randn(w.shape, generator=gen)
        if isinstance(b, nn.Parameter):
            b.data = 0.02 * torch.randn(b.shape, generator=gen)
    if outliers:
        _inject_outliers(model, hidden_size, OUTLIER_SCALE)
    model = model.to(dtype).eval()
    return model, build_tokenizer(vocab_size)


def save_tiny_model(arch: str, path: str | os.PathLike[str], **kw: Any) -> Path:
    """Write `build_tiny_model(arch, **kw)` as a Hugging Face directory (safetensors + tokenizer) for vLLM."""
    model, tokenizer = build_tiny_model(arch, **kw)
    out = Path(path)
    model.save_pretrained(out, safe_serialization=True)
    save_tokenizer(tokenizer, out)
    return out


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, path: Path) -> None:
    """Save with the class name every transformers version knows (5.x would write "TokenizersBackend")."""
    tokenizer.save_pretrained(path)
    cfg_path = path / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("tokenizer_class") == "TokenizersBackend":
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")
