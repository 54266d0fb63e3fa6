"""torch-int (mit-han-lab/smoothquant Int8OPT) checkpoints: builder layout, converter numerics, errors.

A tiny float OPT with outlier channels is smoothed (alpha 0.5, as the original export) and written in the
torch-int layout; the converted checkpoint must feed every linear the int8 codes the original feeds it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file, save_file

from calibration.act_scales import collect_act_scales
from calibration.models.tiny import build_tiny_model, sample_texts
from calibration.simulate import simulated_logits
from calibration.smooth import smooth_lm
from calibration.torch_int import (
    TorchIntLayoutError,
    convert_torch_int,
    convert_torch_int_state_dict,
    export_torch_int,
    is_torch_int_config,
    torch_int_logits,
)
from calibration.torch_int.layout import LAYER_TENSORS
from calibration.torch_int.reference import int8_gemm, layernorm_q, linear_float_out, linear_int8_out

L0 = "model.decoder.layers.0."


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    tmp = tmp_path_factory.mktemp("torch_int")
    model, tok = build_tiny_model("opt", hidden_size=64, num_layers=2, outliers=True)
    texts = sample_texts(16)
    smooth_lm(model, collect_act_scales(model, tok, texts, num_samples=16, seq_len=64, progress=False), 0.5)
    src = export_torch_int(model, tok, texts, tmp / "torch-int")
    dst = convert_torch_int(src, tmp / "converted")
    config = json.loads((src / "config.json").read_text())
    ids = tok(" ".join(sample_texts(40)[-3:]), return_tensors="pt").input_ids[:, :32]
    with torch.no_grad():
        float_logits = model(ids).logits
    return SimpleNamespace(tmp=tmp, src=src, dst=dst, config=config, ids=ids, float_logits=float_logits,
                           state=torch.load(src / "pytorch_model.bin", weights_only=True),
                           conv=load_file(dst / "model.safetensors"))


def _a(state: dict[str, torch.Tensor], name: str) -> float:
    return float(state[name].reshape(()))


def test_builder_writes_the_torch_int_layout(ckpt: SimpleNamespace) -> None:
    assert ckpt.config["architectures"] == ["Int8OPTForCausalLM"] and is_torch_int_config(ckpt.config)
    layer_keys = {k.removeprefix(L0) for k in ckpt.state if k.startswith(L0)}
    assert layer_keys == {f"{m}.{t}" for m, ts in LAYER_TENSORS.items() for t in ts}
    s = ckpt.state
    for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "fc1"):
        assert s[f"{L0}{m}.weight"].dtype == s[f"{L0}{m}.bias"].dtype == torch.int8
        assert s[f"{L0}{m}.weight"].abs().max() == 127 and s[f"{L0}{m}.bias"].abs().max() == 127  # abs-max
        assert s[f"{L0}{m}.a"].dim() == 0 and s[f"{L0}{m}.b"].dim() == 0
    for m in ("self_attn.out_proj", "fc2"):
        assert s[f"{L0}{m}.weight"].dtype == torch.int8 and s[f"{L0}{m}.bias"].dtype == torch.float32
    # norms pre-divided by the next input scale: their output lands in int8 range on calibration data
    assert s[f"{L0}self_attn_layer_norm.weight"].abs().max() > 10


def test_reference_forward_is_a_faithful_w8a8_model(ckpt: SimpleNamespace) -> None:
    """The emulated original stays near the float model it was built from (relative logits error)."""
    ref = torch_int_logits(ckpt.config, ckpt.state, ckpt.ids)
    assert rel_err(ref, ckpt.float_logits) < 0.25
    assert (ref.argmax(-1) == ckpt.float_logits.argmax(-1)).float().mean() > 0.7


def format_linear(conv: dict[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    """docs/checkpoint_format.md, static per-tensor: round(x / input_scale) -> int8 GEMM -> s_x * s_w * acc + bias."""
    s_x = conv[name + ".input_scale"]
    x_q = torch.round(x / s_x).clamp(-127, 127)
    acc = int8_gemm(x_q, conv[name + ".weight"])
    return ((s_x * conv[name + ".weight_scale"]).double() * acc.double() + conv[name + ".bias"].double()).float()


@pytest.fixture(scope="module")
def codes() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-127, 128, (48, 64), generator=g).float()
    return torch.where(torch.rand(48, 1, generator=g) < 0.5, x, torch.round(x / 8))  # full-range and small rows


def test_norms_give_the_same_int8_codes(ckpt: SimpleNamespace) -> None:
    h = torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(1))
    for norm, reader in (("self_attn_layer_norm", "self_attn.q_proj"), ("final_layer_norm", "fc1")):
        w, b = ckpt.conv[f"{L0}{norm}.weight"], ckpt.conv[f"{L0}{norm}.bias"]
        ours = torch.round(torch.nn.functional.layer_norm(h, (64,), w, b, 1e-5) / ckpt.conv[f"{L0}{reader}.input_scale"])
        theirs = layernorm_q(h, ckpt.state[f"{L0}{norm}.weight"], ckpt.state[f"{L0}{norm}.bias"])
        assert torch.equal(ours.clamp(-127, 127), theirs.clamp(-127, 127))


def test_fc1_output_codes_are_fc2_input_codes_exactly(ckpt: SimpleNamespace, codes: torch.Tensor) -> None:
    s, c = ckpt.state, ckpt.conv
    theirs = linear_int8_out(codes, s[L0 + "fc1.weight"], s[L0 + "fc1.bias"], _a(s, L0 + "fc1.a"), _a(s, L0 + "fc1.b"),
                             relu=True)
    y = torch.relu(format_linear(c, L0 + "fc1", codes))
    ours = torch.round(y / c[L0 + "fc2.input_scale"]).clamp(-127, 127)
    assert 0 < (theirs == 127).float().mean() < 0.5  # saturation is exercised
    assert torch.equal(ours, theirs)


def test_float_output_linears_match_to_one_ulp(ckpt: SimpleNamespace, codes: torch.Tensor) -> None:
    s, c = ckpt.state, ckpt.conv
    for m, k in (("self_attn.out_proj", 64), ("fc2", 256)):
        x = codes.repeat(1, k // 64)
        theirs = linear_float_out(x, s[f"{L0}{m}.weight"], s[f"{L0}{m}.bias"], _a(s, f"{L0}{m}.a"))
        ours = format_linear(c, L0 + m, x)
        ulp = torch.finfo(torch.float32).eps * theirs.abs().clamp_min(1e-6)
        assert ((ours - theirs).abs() <= ulp).all(), m


def test_attention_scores_and_out_proj_input_are_preserved(ckpt: SimpleNamespace, codes: torch.Tensor) -> None:
    """Before the original's int8 rounding of q/k/v, scores and P.V agree with what vLLM computes from ours."""
    s, c = ckpt.state, ckpt.conv
    unrounded = {n: linear_int8_out(codes, s[f"{L0}self_attn.{n}_proj.weight"], s[f"{L0}self_attn.{n}_proj.bias"],
                                    _a(s, f"{L0}self_attn.{n}_proj.a"), _a(s, f"{L0}self_attn.{n}_proj.b"),
                                    round_output=False).double() for n in "qkv"}
    ours = {n: format_linear(c, f"{L0}self_attn.{n}_proj", codes).double() for n in "qkv"}
    scaling = (64 // 2) ** -0.5  # 2 heads of 32
    for h in (slice(0, 32), slice(32, 64)):
        theirs_scores = _a(s, L0 + "self_attn.qk_bmm.a") * unrounded["q"][:, h] @ unrounded["k"][:, h].T
        ours_scores = scaling * ours["q"][:, h] @ ours["k"][:, h].T
        torch.testing.assert_close(ours_scores, theirs_scores, rtol=1e-5, atol=1e-5 * theirs_scores.abs().max().item())
    probs = torch.softmax(torch.randn(48, 48, generator=torch.Generator().manual_seed(2)), -1).double()
    theirs_ctx = 127 * _a(s, L0 + "self_attn.pv_bmm.a") * probs @ unrounded["v"]
    ours_ctx = probs @ ours["v"] / c[L0 + "self_attn.out_proj.input_scale"].double()
    torch.testing.assert_close(ours_ctx, theirs_ctx, rtol=1e-5, atol=1e-4)


def test_converted_model_equals_reference_with_float_attention(ckpt: SimpleNamespace) -> None:
    """Everything but the attention internals is the same computation: logits agree to float32 rounding."""
    ours = simulated_logits(ckpt.dst, ckpt.ids)
    theirs = torch_int_logits(ckpt.config, ckpt.state, ckpt.ids, attention="float")
    assert rel_err(ours, theirs) < 1e-5
    assert torch.equal(ours.argmax(-1), theirs.argmax(-1))


def test_converted_model_vs_original_int8_attention(ckpt: SimpleNamespace) -> None:
    """The documented difference: the original's int8 q/k/v outputs and int8 BMMs vs float attention.

    On this random model (near-uniform attention, so round(127 P) is coarse) the two differ by ~20% of the
    logits' norm; ours is the closer of the two to the float model.
    """
    ours = simulated_logits(ckpt.dst, ckpt.ids)
    theirs = torch_int_logits(ckpt.config, ckpt.state, ckpt.ids)
    assert rel_err(ours, theirs) < 0.3
    assert rel_err(ours, ckpt.float_logits) < rel_err(theirs, ckpt.float_logits)


def test_converted_directory(ckpt: SimpleNamespace) -> None:
    cfg = json.loads((ckpt.dst / "config.json").read_text())
    assert cfg["architectures"] == ["OPTForCausalLM"]
    assert cfg["quantization_config"]["activation_dynamic"] is False
    assert cfg["quantization_config"]["weight_granularity"] == "per_tensor"
    assert {p.name for p in ckpt.dst.iterdir()} == {"config.json", "model.safetensors", "tokenizer.json",
                                                    "tokenizer_config.json"}
    assert all(not k.endswith((".a", ".b")) for k in ckpt.conv)
    assert ckpt.conv[L0 + "self_attn.q_proj.weight"].dtype == torch.int8
    assert ckpt.conv[L0 + "fc1.input_scale"].tolist() == [1.0]
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_torch_int(ckpt.src, ckpt.dst)


def test_command_line_convert(ckpt: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from calibration.torch_int.cli import main

    assert main(["convert", str(ckpt.src), str(tmp_path / "out")]) == 0
    assert torch.equal(load_file(tmp_path / "out" / "model.safetensors")[L0 + "fc1.weight"], ckpt.conv[L0 + "fc1.weight"])
    assert main(["convert", str(ckpt.dst), str(tmp_path / "again")]) == 2  # already converted: refused
    assert "not a torch-int" in capsys.readouterr().err
    assert not (tmp_path / "again").exists()


def test_calibration_cli_convert_subcommand(ckpt: SimpleNamespace, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from calibration.cli import main

    assert main(["convert-torch-int", str(ckpt.src), str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out")
    assert torch.equal(load_file(tmp_path / "out" / "model.safetensors")[L0 + "fc1.weight"], ckpt.conv[L0 + "fc1.weight"])
    assert main(["convert-torch-int", str(ckpt.src), str(tmp_path / "out")]) == 2  # exists, no --overwrite


def test_accepts_safetensors_and_1xN_biases(ckpt: SimpleNamespace, tmp_path: Path) -> None:
    """torch-int registers biases as [1, N]; checkpoints may also be safetensors (and sharded)."""
    src = tmp_path / "src"
    shutil.copytree(ckpt.src, src)
    (src / "pytorch_model.bin").unlink()
    state = {k: (v.reshape(1, -1) if k.endswith(".bias") and ".layers." in k else v) for k, v in ckpt.state.items()}
    state.pop("lm_head.weight")  # tied: a safetensors save drops it
    names = sorted(state)
    save_file({k: state[k] for k in names[::2]}, str(src / "model-00001-of-00002.safetensors"))
    save_file({k: state[k] for k in names[1::2]}, str(src / "model-00002-of-00002.safetensors"))
    out = convert_torch_int(src, tmp_path / "out", max_shard_bytes=40_000)
    assert len(list(out.glob("model-*-of-*.safetensors"))) > 1
    index = json.loads((out / "model.safetensors.index.json").read_text())
    converted = {}
    for f in set(index["weight_map"].values()):
        converted.update(load_file(out / f))
    assert converted.keys() == ckpt.conv.keys() - {"lm_head.weight"}
    assert all(torch.equal(converted[k], ckpt.conv[k]) for k in converted)


def test_state_dict_conversion_streams_layer_by_layer(ckpt: SimpleNamespace) -> None:
    """A loader's iterator is converted one layer at a time (reusable by the vLLM plugin at load)."""
    consumed: list[str] = []

    def stream():
        for k, v in ckpt.state.items():
            consumed.append(k)
            yield k, v

    qcfg, out = convert_torch_int_state_dict(ckpt.config, stream())
    assert qcfg["quant_method"] == "smoothquant"
    for name, _ in out:
        if name.startswith(L0) and name.endswith("weight_scale"):
            assert not any(k.startswith("model.decoder.layers.1.") for k in consumed)
            break
    else:
        pytest.fail("layer 0 was never emitted")


def test_float16_original_export(ckpt: SimpleNamespace) -> None:
    """The original export ran on a float16 model: its scalars and norms are float16; they are used as stored."""
    state = {k: (v.half() if v.is_floating_point() and not k.endswith(("out_proj.bias", "fc2.bias")) else v)
             for k, v in ckpt.state.items()}
    qcfg, out = convert_torch_int_state_dict(ckpt.config | {"dtype": "float16"}, state)
    conv = dict(out)
    assert conv[L0 + "fc1.weight_scale"].dtype == torch.float32
    assert conv[L0 + "fc1.weight_scale"].item() == state[L0 + "fc1.a"].float().item()
    assert conv[L0 + "fc2.bias"].dtype == conv[L0 + "self_attn_layer_norm.weight"].dtype == torch.float16
    assert qcfg["activation_dynamic"] is False


def _convert(config: dict, state: dict[str, torch.Tensor]) -> None:
    _, out = convert_torch_int_state_dict(config, state)
    for _ in out:
        pass


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.pop(L0 + "self_attn.q_proj.b"), r"layers\.0\.self_attn\.q_proj: missing scalar 'b'"),
    (lambda s: s.pop("model.decoder.layers.1.fc2.a"), r"layers\.1\.fc2: missing scalar 'a'"),
    (lambda s: s.pop(L0 + "self_attn.pv_bmm.a"), r"layers\.0\.self_attn\.pv_bmm: missing scalar 'a'"),
    (lambda s: s.update({L0 + "self_attn.rotary.inv_freq": torch.ones(4)}),
     r"unexpected module 'model\.decoder\.layers\.0\.self_attn\.rotary'"),
    (lambda s: s.update({L0 + "fc1.weight_scale": torch.ones(1)}), r"layers\.0\.fc1: unexpected tensor 'weight_scale'"),
    (lambda s: s.update({"model.decoder.project_in.weight": torch.ones(4)}), r"module 'model\.decoder\.project_in'"),
    (lambda s: s.update({L0 + "fc1.a": torch.tensor(float("nan"))}), r"layers\.0\.fc1: scalar 'a' must be finite"),
    (lambda s: s.update({L0 + "fc1.b": torch.ones(3)}), r"layers\.0\.fc1: scalar 'b' must be a single float"),
    (lambda s: s.update({L0 + "self_attn.k_proj.weight": torch.zeros(64, 64)}),
     r"layers\.0\.self_attn\.k_proj\.weight: expected int8"),
    (lambda s: s.update({L0 + "fc2.weight": torch.zeros(64, 64, dtype=torch.int8)}),
     r"layers\.0\.fc2\.weight: expected shape \[64, 256\]"),
    (lambda s: s.pop("model.decoder.embed_positions.weight"), r"missing tensors \['model\.decoder\.embed_positions"),
])
def test_layout_errors_name_the_module(ckpt: SimpleNamespace, edit, message: str) -> None:
    state = dict(ckpt.state)
    edit(state)
    with pytest.raises(TorchIntLayoutError, match=message):
        _convert(ckpt.config, state)


@pytest.mark.parametrize(("change", "message"), [
    ({"architectures": ["OPTForCausalLM"]}, "not a torch-int"),
    ({"model_type": "llama"}, "model_type 'llama'"),
    ({"word_embed_proj_dim": 32}, "project_in"),
    ({"quantization_config": {"quant_method": "smoothquant"}}, "already has a quantization_config"),
])
def test_config_errors(ckpt: SimpleNamespace, change: dict, message: str) -> None:
    with pytest.raises(TorchIntLayoutError, match=message):
        convert_torch_int_state_dict(ckpt.config | change, ckpt.state)


@pytest.mark.vllm
def test_vllm_serves_the_original_checkpoint(ckpt: SimpleNamespace) -> None:
    """`LLM(<torch-int dir>, quantization="smoothquant")`: converted at load by `convert_torch_int_state_dict`.

    The directory is the original layout as is (pytorch_model.bin, `Int8OPTForCausalLM`, no
    quantization_config). vLLM runs float32 so the comparison is tight: against the reference with float
    attention (what vLLM computes by design) prompt logprobs agree to float rounding; against the original's
    int8 attention they differ by the documented amount (docs/torch_int.md).
    """
    import gc
    import os

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    assert "quantization_config" not in ckpt.config and (ckpt.src / "pytorch_model.bin").exists()
    ids = ckpt.ids[0].tolist()
    llm = LLM(str(ckpt.src), quantization="smoothquant", dtype="float32", enforce_eager=True, max_model_len=128,
              max_num_seqs=2, seed=0)
    try:
        out = llm.generate(TokensPrompt(prompt_token_ids=ids),
                           SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0), use_tqdm=False)
    finally:
        del llm
        gc.collect()
    got = torch.tensor([entry[tok].logprob for entry, tok in zip(out[0].prompt_logprobs[1:], ids[1:])])

    def reference(attention: str) -> torch.Tensor:
        logits = torch_int_logits(ckpt.config, ckpt.state, ckpt.ids, attention=attention)[0]
        return torch.log_softmax(logits, -1)[:-1].gather(1, ckpt.ids[0, 1:, None]).squeeze(1)

    assert (got - reference("float")).abs().max() < 1e-4
    diff_int8 = (got - reference("int8")).abs()
    assert diff_int8.mean() < 0.05 and diff_int8.max() < 0.25
