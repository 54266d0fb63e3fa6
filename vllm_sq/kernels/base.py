"""The interface every int8 GEMM backend of the plugin implements.

A layer hands its kernel weights in one canonical form (see `Int8Kernel.process_weights`); the kernel
re-lays them out once, at load time, for its own GEMM, and from then on only runs `apply`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch


@dataclass(frozen=True)
class Int8LinearSpec:
    """What a quantized linear layer needs from a kernel (known before weights are loaded)."""

    activation_dynamic: bool
    activation_per_token: bool
    activation_symmetric: bool
    out_dtype: torch.dtype
    out_features: int  # N of this rank's (fused) weight
    in_features: int  # K of this rank's weight

    def describe(self) -> str:
        mode = "dynamic" if self.activation_dynamic else "static"
        gran = "per-token" if self.activation_per_token else "per-tensor"
        sym = "sym" if self.activation_symmetric else "asym"
        return f"A8 {mode} {gran} {sym}, out {str(self.out_dtype).removeprefix('torch.')}"


class Int8Kernel(ABC):
    """An int8 x int8 GEMM with activation quantization, for one linear layer."""

    name: ClassVar[str]

    def __init__(self, spec: Int8LinearSpec) -> None:
        self.spec = spec

    @classmethod
    @abstractmethod
    def can_implement(cls, spec: Int8LinearSpec) -> tuple[bool, str]:
        """(True, "") if this kernel runs `spec` correctly on this machine, else (False, why not)."""

    @abstractmethod
    def process_weights(self, layer: torch.nn.Module) -> None:
        """Re-lay out the layer's canonical parameters for this kernel, once, after loading.

        Canonical form on entry: `layer.weight` int8 [N, K] contiguous, `layer.weight_scale` float32
        [N] or [1], `layer.input_scale` float32 [1] (static activations) or None.
        """

    def configure_compilation(self, vllm_config: Any) -> None:
        """Called while vLLM builds the model, before it sets up torch.compile: a kernel may add graph passes."""

    @abstractmethod
    def apply(self, layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """y = dequant(quant(x) @ W_q^T) + bias, in `x.dtype`, for x of shape [..., K]."""


def replace_param(layer: torch.nn.Module, name: str, value: torch.Tensor | None) -> None:
    """Swap a parameter for a plain frozen one (drops vLLM's loader-specific parameter class)."""
    if name in layer._parameters:
        del layer._parameters[name]
    elif hasattr(layer, name):
        delattr(layer, name)
    if value is None:
        setattr(layer, name, None)
    else:
        layer.register_parameter(name, torch.nn.Parameter(value, requires_grad=False))

