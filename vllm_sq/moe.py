"""SmoothQuant int8 W8A8 experts for MoE models (Mixtral-style: w1/w3 gate+up, w2 down, SiLU).

Supported: per-channel (or per-tensor, expanded to per-channel at load) int8 expert weights with
dynamic symmetric per-token activations. Two execution paths:
- vLLM's int8 fused-MoE kernels (its int8 MoE oracle: Triton `fused_experts` with int8 W8A8 and
  per-channel scales on GPUs; AMX kernels on CPUs that have AMX);
- elsewhere on CPU, `_experts_reference`: a per-expert loop of exact int32 GEMMs (`torch._int_mm`) with
  the format's per-token quantization -- correct, not fast.
Static or asymmetric activations on experts are refused at load with an error naming the layer.
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.logger import init_logger
from vllm.model_executor.layers.fused_moe import FusedMoEMethodBase, FusedMoeWeightScaleSupported, MoEActivation
from vllm.model_executor.layers.fused_moe.config import FusedMoEConfig, FusedMoEQuantConfig
from vllm.model_executor.utils import set_weight_attrs

from vllm_sq.kernels.base import replace_param
from vllm_sq.loading import CheckpointError, check_scale_values, fill_dummy_int8, is_dummy_load
from vllm_sq.settings import SmoothQuantSettings

logger = init_logger("vllm.smoothquant.moe")


def make_moe_method(settings: SmoothQuantSettings, layer: torch.nn.Module, prefix: str) -> FusedMoEMethodBase:
    """The experts method for `layer`, or a clear error if the checkpoint's scheme has no MoE path."""
    if not (settings.activation_dynamic and settings.activation_per_token and settings.activation_symmetric):
        raise ValueError(
            f"smoothquant: MoE layer {prefix!r}: int8 experts need dynamic symmetric per-token activations; "
            f"this checkpoint has {settings.describe()} (add the experts to ignored_modules to keep them in bf16)"
        )
    if getattr(layer.moe_config, "has_bias", False):
        raise ValueError(f"smoothquant: MoE layer {prefix!r}: experts with biases are not supported")
    return SmoothQuantMoEMethod(settings, layer.moe_config, prefix)


def _quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric dynamic per-token int8, exactly as docs/checkpoint_format.md (zero rows get scale 1)."""
    xf = x.float()
    scale = xf.abs().amax(dim=1, keepdim=True) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.round(xf / scale).clamp(-127, 127).to(torch.int8), scale


def _int8_linear(x: torch.Tensor, w: torch.Tensor, w_scale: torch.Tensor) -> torch.Tensor:
    q, s = _quantize_rows(x)
    return torch._int_mm(q, w.t()).float() * s * w_scale.view(1, -1)


def _experts_reference(
    x: torch.Tensor,
    w13: torch.Tensor,
    w13_scale: torch.Tensor,
    w2: torch.Tensor,
    w2_scale: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    expert_map: torch.Tensor | None,
) -> torch.Tensor:
    """sum_k w_k * down(silu(gate(x)) * up(x)) over each token's experts, with int8 GEMMs."""
    out = torch.zeros(x.shape[0], w2.shape[1], dtype=torch.float32, device=x.device)
    ids = topk_ids if expert_map is None else expert_map[topk_ids]
    for e in torch.unique(ids).tolist():
        if e < 0:
            continue  # expert lives on another rank
        token, slot = torch.nonzero(ids == e, as_tuple=True)
        h = _int8_linear(x[token], w13[e], w13_scale[e])
        gate, up = h.chunk(2, dim=-1)
        y = _int8_linear(torch.nn.functional.silu(gate) * up, w2[e], w2_scale[e])
        out.index_add_(0, token, y * topk_weights[token, slot].float().unsqueeze(1))
    return out.to(x.dtype)


class SmoothQuantMoEMethod(FusedMoEMethodBase):
    """int8 experts: vLLM's int8 fused-MoE kernels where available, else an exact CPU loop."""

    def __init__(self, settings: SmoothQuantSettings, moe: FusedMoEConfig, layer_name: str) -> None:
        super().__init__(moe)
        self.settings = settings
        self.layer_name = layer_name
        self.int8_backend = None
        self.experts_cls = None
        reason = self._select_vllm_backend()
        if self.experts_cls is None:
            from vllm.platforms import current_platform

            if not current_platform.is_cpu():
                raise RuntimeError(f"smoothquant: no int8 MoE kernel for {layer_name!r}: {reason}")
            if moe.activation != MoEActivation.SILU or not moe.is_act_and_mul:
                raise RuntimeError(
                    f"smoothquant: {layer_name!r}: the CPU int8 experts path supports SiLU gate/up experts only "
                    f"(vLLM's int8 MoE kernels: {reason})"
                )
            logger.info("smoothquant: %s uses the CPU int8 per-expert path (vLLM int8 MoE: %s)", layer_name, reason)

    @property
    def is_monolithic(self) -> bool:
        if self.moe_kernel is not None:
            return self.moe_kernel.is_monolithic
        return self.experts_cls is not None and self.experts_cls.is_monolithic()

    def _select_vllm_backend(self) -> str:
        from vllm.model_executor.layers.fused_moe.oracle.int8 import select_int8_moe_backend
        from vllm.model_executor.layers.quantization.utils.quant_utils import (
            kInt8DynamicTokenSym,
            kInt8StaticChannelSym,
        )

        try:
            self.int8_backend, self.experts_cls = select_int8_moe_backend(
                config=self.moe, weight_key=kInt8StaticChannelSym, activation_key=kInt8DynamicTokenSym
            )
        except (NotImplementedError, ValueError) as exc:
            return str(exc)
        logger.info("smoothquant: %s uses vLLM int8 MoE backend %s", self.layer_name, self.int8_backend)
        return ""

    def create_weights(
        self,
        layer: torch.nn.Module,
        num_experts: int,
        hidden_size: int,
        intermediate_size_per_partition: int,
        params_dtype: torch.dtype,
        **extra_weight_attrs: Any,
    ) -> None:
        inter = intermediate_size_per_partition
        self.dummy_load = is_dummy_load()
        shapes = {
            "w13_weight": (num_experts, 2 * inter, hidden_size),
            "w2_weight": (num_experts, hidden_size, inter),
        }
        loader = extra_weight_attrs["weight_loader"]
        for name, shape in shapes.items():
            param = torch.nn.Parameter(torch.empty(shape, dtype=torch.int8), requires_grad=False)
            layer.register_parameter(name, param)
            set_weight_attrs(param, dict(extra_weight_attrs, weight_loader=self._weight_loader(loader)))
        scale_attrs = dict(extra_weight_attrs, quant_method=FusedMoeWeightScaleSupported.CHANNEL.value)
        tp_size = getattr(layer, "tp_size", 1)
        full_rows = {"w1": inter * tp_size, "w3": inter * tp_size, "w2": hidden_size}
        for name, rows in (("w13_weight_scale", 2 * inter), ("w2_weight_scale", hidden_size)):
            param = torch.nn.Parameter(
                torch.full((num_experts, rows, 1), float("nan"), dtype=torch.float32), requires_grad=False
            )
            layer.register_parameter(name, param)
            set_weight_attrs(param, dict(scale_attrs, weight_loader=self._scale_loader(loader, full_rows)))
        layer.w13_input_scale = None
        layer.w2_input_scale = None

    def _weight_loader(self, loader: Any) -> Any:
        def load(param: torch.nn.Parameter, loaded_weight: torch.Tensor, weight_name: str, shard_id: str,
                 expert_id: int, return_success: bool = False) -> Any:
            if loaded_weight.dtype != torch.int8:
                raise CheckpointError(
                    f"{weight_name}: expected an int8 expert weight (quantization_config says smoothquant), "
                    f"found {loaded_weight.dtype}"
                )
            return loader(param, loaded_weight, weight_name, shard_id, expert_id, return_success=return_success)

        return load

    def _scale_loader(self, loader: Any, full_rows: dict[str, int]) -> Any:
        """Checkpoint scales are [N] (per channel) or [1] (per tensor); experts keep [N, 1] per channel."""

        def load(param: torch.nn.Parameter, loaded_weight: torch.Tensor, weight_name: str, shard_id: str,
                 expert_id: int, return_success: bool = False) -> Any:
            loaded = loaded_weight
            check_scale_values(self.layer_name, weight_name, loaded)
            rows = full_rows[shard_id]
            if loaded.numel() == 1:
                loaded = loaded.reshape(1, 1).expand(rows, 1)
            elif loaded.numel() == rows:
                loaded = loaded.reshape(rows, 1)
            else:
                raise CheckpointError(
                    f"{weight_name}: scale of shape {tuple(loaded.shape)} fits neither per-channel [{rows}] nor [1]"
                )
            return loader(
                param, loaded.float().contiguous(), weight_name, shard_id, expert_id, return_success=return_success
            )

        return load

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        if self.dummy_load:
            fill_dummy_int8(layer.w13_weight.data, layer.w13_weight_scale.data)
            fill_dummy_int8(layer.w2_weight.data, layer.w2_weight_scale.data)
        for name in ("w13_weight_scale", "w2_weight_scale"):
            scale = getattr(layer, name).data
            if torch.isnan(scale).any():
                experts = sorted(set(torch.nonzero(torch.isnan(scale))[:, 0].tolist()))
                raise CheckpointError(f"{self.layer_name}: {name} missing from the checkpoint for experts {experts}")
        if self.experts_cls is None:
            return
        from vllm.model_executor.layers.fused_moe.oracle.int8 import (
            convert_to_int8_moe_kernel_format,
            make_int8_moe_kernel,
        )

        w13, w2 = convert_to_int8_moe_kernel_format(
            int8_backend=self.int8_backend, w13=layer.w13_weight, w2=layer.w2_weight, layer=layer,
            w13_scale=layer.w13_weight_scale,
        )
        replace_param(layer, "w13_weight", w13.data if isinstance(w13, torch.nn.Parameter) else w13)
        replace_param(layer, "w2_weight", w2.data if isinstance(w2, torch.nn.Parameter) else w2)
        self.moe_quant_config = self.get_fused_moe_quant_config(layer)
        self.moe_kernel = make_int8_moe_kernel(
            int8_backend=self.int8_backend,
            moe_quant_config=self.moe_quant_config,
            moe_config=self.moe,
            experts_cls=self.experts_cls,
            routing_tables=layer._expert_routing_tables(),
        )
        experts = self.moe_kernel.fused_experts
        if hasattr(experts, "process_weights_after_loading"):  # vLLM >= 0.27 prepacks here
            experts.process_weights_after_loading(layer)

    def get_fused_moe_quant_config(self, layer: torch.nn.Module) -> FusedMoEQuantConfig | None:
        if self.experts_cls is None:
            return None
        from vllm.model_executor.layers.fused_moe.oracle.int8 import make_int8_moe_quant_config

        return make_int8_moe_quant_config(
            int8_backend=self.int8_backend,
            w1_scale=layer.w13_weight_scale,
            w2_scale=layer.w2_weight_scale,
            a1_scale=None,
            a2_scale=None,
            per_act_token_quant=True,
            layer=layer,
        )

    def apply(
        self,
        layer: torch.nn.Module,
        x: torch.Tensor,
        topk_weights: torch.Tensor,
        topk_ids: torch.Tensor,
        shared_experts: Any,
        shared_experts_input: torch.Tensor | None,
    ) -> torch.Tensor:
        if self.moe_kernel is not None:
            return self.moe_kernel.apply(
                x,
                layer.w13_weight,
                layer.w2_weight,
                topk_weights=topk_weights,
                topk_ids=topk_ids,
                activation=layer.activation,
                global_num_experts=layer.global_num_experts,
                expert_map=layer.expert_map,
                apply_router_weight_on_input=layer.apply_router_weight_on_input,
                shared_experts=shared_experts,
                shared_experts_input=shared_experts_input,
            )
        if shared_experts is not None or layer.apply_router_weight_on_input:
            raise NotImplementedError(
                f"smoothquant: {self.layer_name}: the CPU int8 experts path has no shared experts or "
                "router-weight-on-input support"
            )
        return _experts_reference(
            x, layer.w13_weight, layer.w13_weight_scale, layer.w2_weight, layer.w2_weight_scale,
            topk_weights, topk_ids, layer.expert_map,
        )

    def apply_monolithic(
        self,
        layer: torch.nn.Module,
        x: torch.Tensor,
        router_logits: torch.Tensor,
        input_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        assert self.moe_kernel is not None
        extra = {"routing_sink": layer.routing_sink} if hasattr(layer, "routing_sink") else {}
        return self.moe_kernel.apply_monolithic(
            x,
            layer.w13_weight,
            layer.w2_weight,
            router_logits,
            activation=layer.activation,
            global_num_experts=layer.global_num_experts,
            expert_map=layer.expert_map,
            apply_router_weight_on_input=layer.apply_router_weight_on_input,
            num_expert_group=layer.num_expert_group,
            topk_group=layer.topk_group,
            e_score_correction_bias=layer.e_score_correction_bias,
            routed_scaling_factor=layer.routed_scaling_factor,
            **extra,
        )
