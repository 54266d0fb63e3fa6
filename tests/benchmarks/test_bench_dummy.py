"""calibration.models.dummy: config-only model directories that vLLM loads with load_format="dummy"."""

import json
import random

import pytest
from transformers import AutoConfig, AutoTokenizer

from calibration.models.dummy import QUANT_SCHEMES, SHAPES, write_dummy_model


@pytest.mark.parametrize("shape", ["7b", "13b", "tiny"])
def test_config_has_the_shape_and_the_tokenizer_covers_the_vocabulary(tmp_path, shape):
    path = write_dummy_model(tmp_path / shape, shape)
    cfg = AutoConfig.from_pretrained(path)
    want = SHAPES[shape]
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers) == (
        want.hidden_size, want.intermediate_size, want.num_hidden_layers)
    assert cfg.num_key_value_heads == want.num_key_value_heads and cfg.vocab_size == want.vocab_size
    assert "quantization_config" not in json.loads((path / "config.json").read_text())
    tok = AutoTokenizer.from_pretrained(path)
    assert len(tok) == want.vocab_size
    ids = [random.Random(0).randrange(3, want.vocab_size) for _ in range(50)] + [want.vocab_size - 1]
    # any id the model can emit decodes to text that encodes back to the same ids (prompt lengths survive)
    assert tok.encode(tok.decode(ids), add_special_tokens=False) == ids


def test_llama3_shape_has_gqa_and_its_large_vocabulary(tmp_path):
    path = write_dummy_model(tmp_path / "l3", "llama3-8b")
    cfg = AutoConfig.from_pretrained(path)
    assert (cfg.num_key_value_heads, cfg.vocab_size, cfg.intermediate_size) == (8, 128256, 14336)
    assert len(AutoTokenizer.from_pretrained(path)) == 128256


def test_smoothquant_configs_are_accepted_by_the_plugin(tmp_path):
    config_mod = pytest.importorskip("vllm_sq.config")
    for scheme, dynamic in (("smoothquant-dynamic", True), ("smoothquant-static", False)):
        qcfg = json.loads((write_dummy_model(tmp_path / scheme, "tiny", scheme) / "config.json").read_text())[
            "quantization_config"]
        assert qcfg["activation_dynamic"] is dynamic
        parsed = config_mod.SmoothQuantConfig.from_config(qcfg)
        assert parsed.get_name() == "smoothquant"


def test_int8_w8a8_config_is_vllms_compressed_tensors_dynamic_per_token(tmp_path):
    ct = pytest.importorskip("vllm.model_executor.layers.quantization.compressed_tensors.compressed_tensors")
    qcfg = json.loads((write_dummy_model(tmp_path / "ct", "tiny", "w8a8-int8") / "config.json").read_text())[
        "quantization_config"]
    parsed = ct.CompressedTensorsConfig.from_config(qcfg)
    assert parsed.get_name() == "compressed-tensors"
    scheme = next(iter(parsed.target_scheme_map.values()))
    assert scheme["weights"].strategy == "channel" and scheme["input_activations"].dynamic
    assert scheme["input_activations"].strategy == "token"


def test_overrides_unknown_names_and_overwrite(tmp_path):
    path = write_dummy_model(tmp_path / "m", "7b", num_hidden_layers=2)
    assert AutoConfig.from_pretrained(path).num_hidden_layers == 2
    with pytest.raises(FileExistsError, match="not empty"):
        write_dummy_model(path, "7b", overwrite=False)
    with pytest.raises(ValueError, match="unknown model shape '70b'"):
        write_dummy_model(tmp_path / "x", "70b")
    with pytest.raises(ValueError, match="unknown quantization scheme 'fp4'"):
        write_dummy_model(tmp_path / "y", "tiny", "fp4")
    assert set(QUANT_SCHEMES) == {"bf16", "smoothquant-dynamic", "smoothquant-static", "w8a8-int8"}
