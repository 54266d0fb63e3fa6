"""`SmoothQuantConfig`: the `smoothquant` quantization method, registered with vLLM on import."""

from __future__ import annotations

from typing import Any

import torch
from vllm.logger import init_logger
from vllm.model_executor.layers.linear import LinearBase, UnquantizedLinearMethod
from vllm.model_executor.layers.quantization import register_quantization_config
from vllm.model_executor.layers.quantization.base_config import QuantizationConfig, QuantizeMethodBase

from vllm_sq.kernels.cuda import MIN_CAPABILITY
from vllm_sq.settings import QUANT_METHOD, SmoothQuantSettings, parse_settings

logger = init_logger("vllm.smoothquant.config")


@register_quantization_config(QUANT_METHOD)
class SmoothQuantConfig(QuantizationConfig):
    """SmoothQuant W8A8 checkpoints as written by `calibration` (docs/checkpoint_format.md)."""

    def __init__(self, settings: SmoothQuantSettings | None = None) -> None:
        # vLLM builds the config with no arguments when config.json has no quantization_config but
        # `--quantization smoothquant` is given; maybe_update_config then decides (torch-int OPT or error).
        super().__init__()
        self.settings = settings

    def __repr__(self) -> str:
        if self.settings is None:
            return "SmoothQuantConfig(unresolved)"
        return f"SmoothQuantConfig({self.settings.describe()}, ignored={list(self.settings.ignored_modules)})"

    def get_name(self) -> str:
        return QUANT_METHOD

    def get_supported_act_dtypes(self) -> list[torch.dtype]:
        from vllm.platforms import current_platform

        if current_platform.is_cpu():
            return [torch.bfloat16, torch.float16, torch.float32]
        return [torch.bfloat16, torch.float16]

    @classmethod
    def get_min_capability(cls) -> int:
        return MIN_CAPABILITY

    @staticmethod
    def get_config_filenames() -> list[str]:
        return []

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SmoothQuantConfig:
        settings = parse_settings(config)
        logger.info("smoothquant checkpoint: %s", settings.describe())
        return cls(settings)

    def maybe_update_config(self, model_name: str, hf_config: Any = None, revision: str | None = None) -> None:
        if self.settings is not None:
            return
        from calibration.torch_int.convert import quantization_config
        from calibration.torch_int.layout import is_torch_int_config

        if hf_config is None or not is_torch_int_config(hf_config):
            raise ValueError(
                f"{model_name}: config.json has no smoothquant quantization_config; export the checkpoint with "
                "`calibration` (or convert an original SmoothQuant torch-int OPT checkpoint)"
            )
        self.settings = parse_settings(quantization_config())
        logger.info("smoothquant: torch-int Int8OPT checkpoint, converted at load: %s", self.settings.describe())

    def _shard_names(self, prefix: str) -> list[str]:
        """HF module names behind a (possibly fused) vLLM layer, e.g. qkv_proj -> q/k/v_proj."""
        parent, _, leaf = prefix.rpartition(".")
        shards = self.packed_modules_mapping.get(leaf)
        if not shards:
            return [prefix]
        return [f"{parent}.{s}" if parent else s for s in shards]

    def is_ignored(self, prefix: str) -> bool:
        """True if the layer stays unquantized; a fused layer must be all-or-nothing."""
        shards = self._shard_names(prefix)
        ignored = [self.settings.is_ignored(name) for name in shards]
        if all(ignored):
            return True
        if any(ignored):
            raise ValueError(
                f"smoothquant: fused layer {prefix!r} has ignored and quantized parts "
                f"({dict(zip(shards, ignored))}); a fused layer must be quantized all or nothing"
            )
        return False

    def get_quant_method(self, layer: torch.nn.Module, prefix: str) -> QuantizeMethodBase | None:
        from vllm.model_executor.layers.fused_moe import RoutedExperts

        if isinstance(layer, LinearBase):
            if self.is_ignored(prefix):
                return UnquantizedLinearMethod()
            from vllm_sq.linear_method import SmoothQuantLinearMethod

            return SmoothQuantLinearMethod(self.settings, prefix)
        if isinstance(layer, RoutedExperts):
            if self.is_ignored(prefix):
                return None
            from vllm_sq.moe import make_moe_method

            return make_moe_method(self.settings, layer, prefix)
        return None
