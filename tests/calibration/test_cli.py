import json
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from calibration.cli import main
from calibration.models.tiny import save_tiny_model
from calibration.simulate import simulated_logits


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model("llama", tmp_path_factory.mktemp("m") / "tiny-llama", outliers=True)


def test_act_scales_export_reload_end_to_end(model_dir, tmp_path, capsys):
    start = time.time()
    pt = tmp_path / "act_scales" / "tiny.pt"
    assert main(["act-scales", "--model-name", str(model_dir), "--dataset-path", "builtin", "--num-samples", "8",
                 "--seq-len", "64", "--output-path", str(pt)]) == 0
    scales = torch.load(pt)
    assert scales["model.layers.0.self_attn.q_proj"].shape == (64,)
    out = tmp_path / "ckpt"
    assert main(["export", "--model_path", str(model_dir), "--act_scales_path", str(pt), "--alpha", "0.5",
                 "--output_path", str(out)]) == 0
    assert "wrote smoothquant checkpoint" in capsys.readouterr().out
    cfg = json.loads((out / "config.json").read_text())["quantization_config"]
    assert cfg["alpha"] == 0.5 and cfg["activation_dynamic"] is True
    assert load_file(out / "model.safetensors")["model.layers.1.mlp.up_proj.weight"].dtype == torch.int8
    ids = torch.tensor([[1, 50, 60, 70, 80, 90]])
    assert torch.isfinite(simulated_logits(out, ids)).all()
    assert time.time() - start < 60  # seconds on the CI machine, with headroom for a loaded one
    # an existing directory is refused (exit code 2, message on stderr), --overwrite replaces it
    assert main(["export", "--model-name", str(model_dir), "--act_scales_path", str(pt), "--output-path",
                 str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", "--model-name", str(model_dir), "--act_scales_path", str(pt), "--output-path",
                 str(out), "--overwrite", "--activation-scheme", "static", "--activation-granularity",
                 "per_tensor", "--weight-granularity", "per_tensor"]) == 0
    assert load_file(out / "model.safetensors")["model.layers.0.mlp.down_proj.input_scale"].shape == (1,)


def test_export_auto_and_alpha_file_and_asymmetric(model_dir, tmp_path):
    assert main(["export", "--model-name", str(model_dir), "--dataset-path", "builtin", "--num-samples", "4",
                 "--seq-len", "32", "--alpha", "auto", "--asymmetric", "--output-path", str(tmp_path / "a")]) == 0
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())["quantization_config"]
    assert isinstance(cfg["alpha"], dict) and cfg["activation_symmetric"] is False
    alphas = tmp_path / "alphas.json"
    alphas.write_text(json.dumps({"model.layers.0.input_layernorm": 0.8, "default": 0.4}))
    assert main(["export", "--model-name", str(model_dir), "--dataset-path", "builtin", "--num-samples", "4",
                 "--seq-len", "32", "--alpha", str(alphas), "--output-path", str(tmp_path / "b")]) == 0
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())["quantization_config"]
    assert cfg["alpha"]["model.layers.0.input_layernorm"] == 0.8 and cfg["alpha"]["model.layers.1.input_layernorm"] == 0.4


@pytest.mark.parametrize("args, match", [
    (["--alpha", "1.5"], r"alpha must be a number in \[0, 1\]"),
    (["--activation-scheme", "static"], "require activation_granularity='per_tensor'"),
    ([], "no calibration/evaluation data given: pass --dataset-path"),
    (["--dataset-path", "nobody/no-such-set"], "cannot load data set 'nobody/no-such-set'"),
    (["--act_scales_path", "/nonexistent/scales.pt"], "does not exist"),
])
def test_export_errors(model_dir, tmp_path, capsys, args, match):
    assert main(["export", "--model-name", str(model_dir), "--output-path", str(tmp_path / "x"), *args]) == 2
    assert pytest.importorskip("re").search(match, capsys.readouterr().err)
    assert not (tmp_path / "x").exists()


def test_ppl_three_way_and_original_flags(model_dir, capsys):
    common = ["ppl", "--model-name", str(model_dir), "--dataset-path", "builtin", "--n_samples", "4",
              "--seq-len", "32"]
    assert main(common + ["--alpha", "0.5"]) == 0
    out = capsys.readouterr().out
    values = {line.split()[0]: float(line.split()[-1]) for line in out.splitlines()[1:]}
    assert set(values) == {"float", "naive", "SmoothQuant"} and all(v > 1 for v in values.values())
    assert main(common + ["--smooth", "--quantize"]) == 0
    assert "SmoothQuant W8A8" in capsys.readouterr().out


def test_module_entry_point_help():
    res = subprocess.run([sys.executable, "-m", "calibration", "--help"], capture_output=True, text=True, check=True)
    assert all(cmd in res.stdout for cmd in ("act-scales", "export", "ppl", "demo"))
