import json

import pandas as pd
import pytest

from calibration.data import DataError, load_texts, token_blocks
from calibration.models.tiny import build_tokenizer, sample_texts


def test_local_formats(tmp_path):
    texts = sample_texts(4)
    (tmp_path / "a.txt").write_text("\n".join(texts) + "\n")
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps({"text": t, "id": i}) for i, t in enumerate(texts)))
    pd.DataFrame({"content": texts}).to_parquet(tmp_path / "c.parquet")
    assert load_texts(tmp_path / "a.txt") == texts
    assert load_texts(tmp_path / "b.jsonl", num_samples=2) == texts[:2]
    assert load_texts(tmp_path / "c.parquet", text_field="content") == texts
    d = tmp_path / "dir"
    d.mkdir()
    (d / "x.jsonl").write_text(json.dumps({"text": "one"}) + "\n")
    (d / "y.jsonl").write_text(json.dumps({"text": "two"}) + "\n")
    assert load_texts(d) == ["one", "two"]
    assert load_texts("builtin", num_samples=3) == sample_texts(3)


def test_data_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="cannot load data set 'someone/pile-val'.*offline.*--dataset-path"):
        load_texts("someone/pile-val")
    (tmp_path / "a.jsonl").write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(DataError, match="no column 'text'.*--text-field"):
        load_texts(tmp_path / "a.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="contains no .txt"):
        load_texts(tmp_path / "empty")
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(DataError, match="unsupported file type '.bin'"):
        load_texts(tmp_path / "weights.bin")


def test_token_blocks_are_full_and_contiguous():
    tok = build_tokenizer()
    texts = sample_texts(10)
    blocks = token_blocks(tok, texts, num_samples=5, seq_len=40)
    assert blocks.shape == (5, 40)
    first = tok(texts[0], add_special_tokens=False).input_ids
    assert blocks[0, : min(40, len(first))].tolist() == first[:40]
    assert token_blocks(tok, texts[:1], num_samples=100, seq_len=40).shape[0] < 100  # as many as the text has
    with pytest.raises(DataError, match="fewer than one block"):
        token_blocks(tok, ["hi"], num_samples=1, seq_len=64)
