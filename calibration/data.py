"""Calibration and evaluation text: local files or directories (through `datasets`), a Hub data set, or
the embedded corpus ("builtin"), turned into fixed-length token blocks."""

from __future__ import annotations

import os
from pathlib import Path

import torch

BUILTIN = "builtin"
_BUILDERS = {".txt": "text", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
HOW_TO = ("pass --dataset-path with a local .txt/.jsonl/.json/.parquet file or a directory of them "
          f"(a 'text' column or one document per line), or '{BUILTIN}' for the embedded sample text")


class DataError(ValueError):
    pass


def _local_files(path: Path) -> tuple[str, list[str]]:
    files = sorted(p for p in path.rglob("*") if p.suffix in _BUILDERS) if path.is_dir() else [path]
    if not files:
        raise DataError(f"{path} contains no .txt/.jsonl/.json/.parquet files; {HOW_TO}")
    builders = {_BUILDERS.get(f.suffix) for f in files}
    if None in builders:
        raise DataError(f"unsupported file type {path.suffix!r} for {path}; {HOW_TO}")
    if len(builders) > 1:
        raise DataError(f"{path} mixes file types {sorted(builders)}; put one type per directory")
    return builders.pop(), [str(f) for f in files]


def load_texts(source: str | os.PathLike[str], *, num_samples: int | None = None, split: str = "train",
               text_field: str = "text") -> list[str]:
    """Non-empty texts from `source`: 'builtin', a local file/dir, or a Hub data set name."""
    from datasets import load_dataset

    source = str(source)
    if source == BUILTIN:
        from calibration.models.corpus import sample_texts
        return sample_texts(num_samples or 64)
    path = Path(source).expanduser()
    try:
        if path.exists():
            builder, files = _local_files(path)
            ds = load_dataset(builder, data_files=files, split="train")
        else:
            ds = load_dataset(source, split=split)
    except DataError:
        raise
    except Exception as exc:  # datasets raises many types for "not reachable" / "not found"
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        where = "the Hub is not reachable (offline)" if offline or not path.exists() else "it could not be read"
        raise DataError(f"cannot load data set {source!r}: {where} ({type(exc).__name__}: {exc}); {HOW_TO}") from exc
    if text_field not in ds.column_names:
        raise DataError(f"data set {source!r} has no column {text_field!r} (columns: {ds.column_names}); "
                        "pass --text-field")
    texts = [t for t in ds[text_field] if isinstance(t, str) and t.strip()]
    if not texts:
        raise DataError(f"data set {source!r} has no non-empty text in column {text_field!r}")
    return texts[:num_samples] if num_samples else texts


def token_blocks(tokenizer, texts: list[str], *, num_samples: int, seq_len: int) -> torch.Tensor:
    """Concatenate the tokenized texts (EOS between documents) and cut `num_samples` blocks of `seq_len`.

    Equal-length blocks need no padding, so every position is a real token whose activations count.
    Fewer blocks are returned if the text is too short; an error if not even one fits.
    """
    if num_samples < 1 or seq_len < 2:
        raise DataError(f"need num_samples >= 1 and seq_len >= 2, got {num_samples} and {seq_len}")
    sep = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"] + sep)
        if len(ids) >= num_samples * seq_len:
            break
    n = min(num_samples, len(ids) // seq_len)
    if n == 0:
        raise DataError(f"the text yields {len(ids)} tokens, fewer than one block of seq_len={seq_len}")
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len)
