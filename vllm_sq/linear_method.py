"""`SmoothQuantLinearMethod`: int8 weights + float32 scales for every linear layer kind vLLM builds.

Parameters use vLLM's parameter classes so that tensor-parallel sharding (column/row, fused QKV and
gate_up shards) is done by vLLM's own loaders. After loading, the layer's tensors are reduced to one
canonical form and handed to the selected kernel (vllm_sq.kernels), which lays them out once.
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.config import get_current_vllm_config
from vllm.logger import init_logger
from vllm.model_executor.layers.linear import LinearMethodBase, register_weight_loader_v2_supported_method
from vllm.model_executor.parameter import (
    ChannelQuantScaleParameter,
    ModelWeightParameter,
    PerTensorScaleParameter,
)

from vllm_sq.kernels import Int8LinearSpec, select_kernel
from vllm_sq.kernels.base import replace_param
from vllm_sq.loading import check_all_loaded, check_scale_values, checked_loader, fill_dummy_int8, is_dummy_load
from vllm_sq.settings import SmoothQuantSettings

logger = init_logger("vllm.smoothquant.linear")

# Static input scales of the shards of one fused layer read the same input; they may differ only by
# calibration noise. Beyond this relative spread we warn, since one shared scale is then used.
_INPUT_SCALE_SPREAD_WARN = 1e-3


def canonical_weight_scale(per_shard: torch.Tensor, logical_widths: list[int], per_channel: bool) -> torch.Tensor:
    """float32 [N] (per channel) or [1]: per-tensor shard scales that differ are expanded exactly."""
    if per_channel:
        return per_shard.float().reshape(-1)
    scales = per_shard.float().reshape(-1)
    if bool((scales == scales[0]).all()):
        return scales[:1].clone()
    widths = torch.tensor(logical_widths, device=scales.device)
    return torch.repeat_interleave(scales, widths)


def canonical_input_scale(per_shard: torch.Tensor, layer_name: str) -> torch.Tensor:
    """One static scale [1] for a (fused) layer: the largest shard scale, so no shard's input clips."""
    scales = per_shard.float().reshape(-1)
    top = scales.max()
    spread = ((top - scales.min()) / top).item()
    if spread > _INPUT_SCALE_SPREAD_WARN:
        logger.warning(
            "smoothquant: %s: fused shards have different static input scales %s; using the largest",
            layer_name, scales.tolist(),
        )
    return top.reshape(1)


@register_weight_loader_v2_supported_method
class SmoothQuantLinearMethod(LinearMethodBase):
    """W8A8 linear layer of a smoothquant checkpoint."""

    def __init__(self, settings: SmoothQuantSettings, layer_name: str) -> None:
        self.settings = settings
        self.layer_name = layer_name

    def create_weights(
        self,
        layer: torch.nn.Module,
        input_size_per_partition: int,
        output_partition_sizes: list[int],
        input_size: int,
        output_size: int,
        params_dtype: torch.dtype,
        **extra_weight_attrs: Any,
    ) -> None:
        s = self.settings
        weight_loader = extra_weight_attrs["weight_loader"]
        layer.logical_widths = list(output_partition_sizes)
        layer._sq_loaded = {}
        self.dummy_load = is_dummy_load()
        out_features = sum(output_partition_sizes)
        self.kernel = select_kernel(
            Int8LinearSpec(
                activation_dynamic=s.activation_dynamic,
                activation_per_token=s.activation_per_token,
                activation_symmetric=s.activation_symmetric,
                out_dtype=params_dtype,
                out_features=out_features,
                in_features=input_size_per_partition,
            ),
            self.layer_name,
        )
        self.kernel.configure_compilation(get_current_vllm_config())

        def loader(name: str):
            return checked_loader(layer, self.layer_name, name, weight_loader)

        layer.register_parameter(
            "weight",
            ModelWeightParameter(
                data=torch.empty(out_features, input_size_per_partition, dtype=torch.int8),
                input_dim=1,
                output_dim=0,
                weight_loader=loader("weight"),
            ),
        )
        if s.weight_per_channel:
            weight_scale = ChannelQuantScaleParameter(
                data=torch.empty(out_features, dtype=torch.float32), output_dim=0, weight_loader=loader("weight_scale")
            )
        else:
            weight_scale = PerTensorScaleParameter(
                data=torch.empty(len(output_partition_sizes), dtype=torch.float32),
                weight_loader=loader("weight_scale"),
            )
        layer.register_parameter("weight_scale", weight_scale)
        if s.activation_dynamic:
            layer.register_parameter("input_scale", None)
        else:
            layer.register_parameter(
                "input_scale",
                PerTensorScaleParameter(
                    data=torch.empty(len(output_partition_sizes), dtype=torch.float32),
                    weight_loader=loader("input_scale"),
                ),
            )

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        s = self.settings
        if self.dummy_load:
            input_scale = None if s.activation_dynamic else layer.input_scale.data
            fill_dummy_int8(layer.weight.data, layer.weight_scale.data, input_scale)
        else:
            names = ["weight", "weight_scale"] + ([] if s.activation_dynamic else ["input_scale"])
            check_all_loaded(layer, self.layer_name, names)
        weight_scale = canonical_weight_scale(layer.weight_scale.data, layer.logical_widths, s.weight_per_channel)
        check_scale_values(self.layer_name, "weight_scale", weight_scale)
        replace_param(layer, "weight", layer.weight.data.contiguous())
        replace_param(layer, "weight_scale", weight_scale)
        if not s.activation_dynamic:
            replace_param(layer, "input_scale", canonical_input_scale(layer.input_scale.data, self.layer_name))
        del layer._sq_loaded
        self.kernel.process_weights(layer)

    def apply(self, layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return self.kernel.apply(layer, x, bias)
