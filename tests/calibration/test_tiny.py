import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from calibration.models.tiny import OUTLIER_SCALE, build_tiny_model, outlier_channels, sample_texts, save_tiny_model


def test_save_reload_matches(tmp_path):
    model, tok = build_tiny_model("qwen2")
    path = save_tiny_model("qwen2", tmp_path / "m")
    reloaded = AutoModelForCausalLM.from_pretrained(path).eval()
    tok2 = AutoTokenizer.from_pretrained(path)
    text = sample_texts(1)[0]
    ids = tok(text, return_tensors="pt").input_ids
    assert tok2(text, return_tensors="pt").input_ids.tolist() == ids.tolist()
    assert torch.equal(model(ids).logits, reloaded(ids).logits)
    assert (path / "tokenizer.json").is_file() and (path / "model.safetensors").is_file()


def test_tokenizer_round_trips_text():
    _, tok = build_tiny_model("llama")
    text = sample_texts(1, seed=3)[0]
    assert tok.decode(tok(text).input_ids, skip_special_tokens=True) == text
    assert len(tok) <= 512 and tok.pad_token_id == 0 and tok.eos_token_id == 2


def test_outliers_amplify_fixed_channels_of_every_layer_norm():
    plain, _ = build_tiny_model("llama", hidden_size=128)
    amp, _ = build_tiny_model("llama", hidden_size=128, outliers=True)
    ch = outlier_channels(128)
    assert len(ch) >= 2
    for i in range(2):
        for norm in ("input_layernorm", "post_attention_layernorm"):
            a = amp.get_submodule(f"model.layers.{i}.{norm}").weight
            p = plain.get_submodule(f"model.layers.{i}.{norm}").weight
            torch.testing.assert_close(a[ch], p[ch] * OUTLIER_SCALE)
            others = [c for c in range(128) if c not in ch]
            assert torch.equal(a[others], p[others])
    assert torch.equal(amp.model.norm.weight, plain.model.norm.weight)


def test_sample_texts_deterministic():
    assert sample_texts(3) == sample_texts(3)
    assert sample_texts(3, seed=1) != sample_texts(3)
    assert len(sample_texts(5)) == 5
