"""Parse and validate the `quantization_config` of a smoothquant checkpoint.

Kept free of vLLM imports so the rules of docs/checkpoint_format.md can be checked (and unit tested)
without starting an engine. A typo in the config must never silently change numerics, so every
unknown key and every bad value is an error that names the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

QUANT_METHOD = "smoothquant"
FORMAT_VERSIONS = (1,)

_REQUIRED = (
    "quant_method",
    "format_version",
    "weight_granularity",
    "activation_granularity",
    "activation_dynamic",
    "activation_symmetric",
)
_OPTIONAL = ("weight_bits", "alpha", "ignored_modules")


class SmoothQuantConfigError(ValueError):
    """A checkpoint's quantization_config does not follow docs/checkpoint_format.md."""


@dataclass(frozen=True)
class SmoothQuantSettings:
    """The validated, normalized content of a smoothquant `quantization_config`."""

    weight_per_channel: bool
    activation_per_token: bool
    activation_dynamic: bool
    activation_symmetric: bool
    ignored_modules: tuple[str, ...] = ("lm_head",)
    alpha: float | dict[str, float] | None = None
    format_version: int = 1

    @property
    def level(self) -> str:
        """The paper's name for the activation scheme (O1/O2/O3), for logs and records."""
        if not self.activation_dynamic:
            return "O3"
        return "O1" if self.activation_per_token else "O2"

    def is_ignored(self, module_name: str) -> bool:
        """True if `module_name` is left unquantized (full-name or `.`-suffix match)."""
        return any(
            module_name == name or module_name.endswith("." + name) for name in self.ignored_modules
        )

    def describe(self) -> str:
        """One line for logs: what the checkpoint's numerics are."""
        weights = "per-channel" if self.weight_per_channel else "per-tensor"
        acts = "per-token" if self.activation_per_token else "per-tensor"
        mode = "dynamic" if self.activation_dynamic else "static"
        sym = "symmetric" if self.activation_symmetric else "asymmetric"
        return f"W8 {weights} / A8 {mode} {acts} {sym} ({self.level})"


def _fail(field: str, message: str) -> SmoothQuantConfigError:
    return SmoothQuantConfigError(f"quantization_config.{field}: {message}")


def _expect_bool(cfg: dict[str, Any], field: str) -> bool:
    value = cfg[field]
    if not isinstance(value, bool):
        raise _fail(field, f"expected true or false, got {value!r}")
    return value


def _expect_choice(cfg: dict[str, Any], field: str, choices: tuple[str, ...]) -> str:
    value = cfg[field]
    if value not in choices:
        raise _fail(field, f"expected one of {list(choices)}, got {value!r}")
    return value


def _parse_alpha(value: Any) -> float | dict[str, float] | None:
    def one(name: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
            raise _fail(name, f"expected a number in [0, 1], got {v!r}")
        return float(v)

    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): one(f"alpha[{k!r}]", v) for k, v in value.items()}
    return one("alpha", value)


def _parse_ignored(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail("ignored_modules", f"expected a list of module names, got {value!r}")
    return tuple(value)


def parse_settings(cfg: dict[str, Any]) -> SmoothQuantSettings:
    """Validate a `quantization_config` dict and return its settings; raise naming the field."""
    if not isinstance(cfg, dict):
        raise SmoothQuantConfigError(f"quantization_config must be an object, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise _fail(unknown[0], f"unknown field(s) {unknown} (format_version 1 defines {sorted(_REQUIRED + _OPTIONAL)})")
    missing = [f for f in _REQUIRED if f not in cfg]
    if missing:
        raise _fail(missing[0], f"required field(s) {missing} missing")

    if cfg["quant_method"] != QUANT_METHOD:
        raise _fail("quant_method", f"expected {QUANT_METHOD!r}, got {cfg['quant_method']!r}")
    version = cfg["format_version"]
    if isinstance(version, bool) or version not in FORMAT_VERSIONS:
        raise _fail("format_version", f"this reader knows versions {list(FORMAT_VERSIONS)}, got {version!r}")
    bits = cfg.get("weight_bits", 8)
    if isinstance(bits, bool) or bits != 8:
        raise _fail("weight_bits", f"only 8 is defined, got {bits!r}")

    weight_per_channel = _expect_choice(cfg, "weight_granularity", ("per_channel", "per_tensor")) == "per_channel"
    per_token = _expect_choice(cfg, "activation_granularity", ("per_token", "per_tensor")) == "per_token"
    dynamic = _expect_bool(cfg, "activation_dynamic")
    symmetric = _expect_bool(cfg, "activation_symmetric")
    if not dynamic and per_token:
        raise _fail(
            "activation_granularity",
            "static activations (activation_dynamic: false) require 'per_tensor' (one calibrated input_scale)",
        )
    if not symmetric and not (dynamic and per_token):
        raise _fail(
            "activation_symmetric",
            "asymmetric activations are defined for dynamic per_token activations only",
        )
    return SmoothQuantSettings(
        weight_per_channel=weight_per_channel,
        activation_per_token=per_token,
        activation_dynamic=dynamic,
        activation_symmetric=symmetric,
        ignored_modules=_parse_ignored(cfg.get("ignored_modules", ["lm_head"])),
        alpha=_parse_alpha(cfg.get("alpha")),
        format_version=version,
    )
