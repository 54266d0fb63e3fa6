"""quantization_config parsing and validation (docs/checkpoint_format.md), and plugin registration. No engine."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from typing import Any

import pytest

from vllm_sq.settings import SmoothQuantConfigError, parse_settings


def _cfg(**over: Any) -> dict[str, Any]:
    cfg = {
        "quant_method": "smoothquant",
        "format_version": 1,
        "weight_bits": 8,
        "weight_granularity": "per_channel",
        "activation_granularity": "per_token",
        "activation_dynamic": True,
        "activation_symmetric": True,
        "alpha": 0.5,
        "ignored_modules": ["lm_head"],
    }
    cfg.update(over)
    return {k: v for k, v in cfg.items() if v is not None}


def test_documented_example_parses() -> None:
    s = parse_settings(_cfg())
    assert (s.weight_per_channel, s.activation_per_token, s.activation_dynamic, s.activation_symmetric) == (
        True, True, True, True,
    )
    assert s.level == "O1" and s.ignored_modules == ("lm_head",) and s.alpha == 0.5


@pytest.mark.parametrize(
    ("over", "level"),
    [
        ({"activation_granularity": "per_tensor"}, "O2"),
        ({"activation_granularity": "per_tensor", "activation_dynamic": False}, "O3"),
    ],
)
def test_paper_levels(over: dict[str, Any], level: str) -> None:
    assert parse_settings(_cfg(**over)).level == level


def test_optional_fields_default() -> None:
    s = parse_settings(_cfg(weight_bits=None, alpha=None, ignored_modules=None))
    assert s.ignored_modules == ("lm_head",) and s.alpha is None


def test_per_layer_alpha_object() -> None:
    s = parse_settings(_cfg(alpha={"model.layers.0.self_attn.q_proj": 0.6}))
    assert s.alpha == {"model.layers.0.self_attn.q_proj": 0.6}


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"quant_method": "fp8"}, "quant_method"),
        ({"format_version": 2}, "format_version"),
        ({"format_version": True}, "format_version"),
        ({"weight_bits": 4}, "weight_bits"),
        ({"weight_granularity": "per_row"}, "weight_granularity"),
        ({"activation_granularity": "per_channel"}, "activation_granularity"),
        ({"activation_dynamic": "yes"}, "activation_dynamic"),
        ({"activation_symmetric": 1}, "activation_symmetric"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": {"q_proj": -0.1}}, "alpha['q_proj']"),
        ({"ignored_modules": "lm_head"}, "ignored_modules"),
        ({"ignored_modules": ["lm_head", ""]}, "ignored_modules"),
        # static activations are one calibrated scale per layer: per-token makes no sense
        ({"activation_dynamic": False}, "activation_granularity"),
        # zero points are defined for dynamic per-token only
        ({"activation_symmetric": False, "activation_granularity": "per_tensor"}, "activation_symmetric"),
    ],
)
def test_bad_values_name_the_field(over: dict[str, Any], field: str) -> None:
    with pytest.raises(SmoothQuantConfigError, match=rf"quantization_config\.{re.escape(field)}:"):
        parse_settings(_cfg(**over))


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(SmoothQuantConfigError, match=r"quantization_config\.activation_dynamc: unknown field"):
        parse_settings(_cfg(activation_dynamc=False))


def test_missing_required_key_is_named() -> None:
    cfg = _cfg()
    del cfg["activation_symmetric"]
    with pytest.raises(SmoothQuantConfigError, match=r"activation_symmetric.*missing"):
        parse_settings(cfg)


def test_ignored_modules_match_full_names_and_dotted_suffixes() -> None:
    s = parse_settings(_cfg(ignored_modules=["lm_head", "mlp.gate"]))
    assert s.is_ignored("lm_head")
    assert s.is_ignored("model.layers.3.mlp.gate")
    assert not s.is_ignored("model.layers.3.mlp.gate_proj")
    assert not s.is_ignored("model.layers.3.self_attn.q_proj")


def test_plugin_entry_point_registers_smoothquant() -> None:
    eps = {ep.name: ep.value for ep in entry_points(group="vllm.general_plugins")}
    assert eps.get("smoothquant") == "vllm_sq.plugin:register"

    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS, get_quantization_config

    from vllm_sq.config import SmoothQuantConfig
    from vllm_sq.plugin import register

    register()
    assert "smoothquant" in QUANTIZATION_METHODS
    assert get_quantization_config("smoothquant") is SmoothQuantConfig
    config = SmoothQuantConfig.from_config(_cfg())
    assert config.get_name() == "smoothquant" and config.get_min_capability() == 75


def test_fused_layer_must_be_ignored_all_or_nothing() -> None:
    from vllm_sq.config import SmoothQuantConfig

    config = SmoothQuantConfig.from_config(_cfg(ignored_modules=["lm_head", "layers.0.self_attn.q_proj"]))
    config.packed_modules_mapping = {"qkv_proj": ["q_proj", "k_proj", "v_proj"], "gate_up_proj": ["gate_proj", "up_proj"]}
    assert not config.is_ignored("model.layers.1.self_attn.qkv_proj")
    with pytest.raises(ValueError, match="qkv_proj.*all or nothing"):
        config.is_ignored("model.layers.0.self_attn.qkv_proj")
    config = SmoothQuantConfig.from_config(_cfg(ignored_modules=["gate_proj", "up_proj"]))
    config.packed_modules_mapping = {"gate_up_proj": ["gate_proj", "up_proj"]}
    assert config.is_ignored("model.layers.0.mlp.gate_up_proj")
