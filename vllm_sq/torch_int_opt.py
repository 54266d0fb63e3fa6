"""Serve the original SmoothQuant OPT checkpoints (torch-int `Int8OPT` layout) directly.

Such a directory (e.g. mit-han-lab/opt-*-smoothquant) names the architecture `Int8OPTForCausalLM` and has no
`quantization_config`. This model class is vLLM's OPT, fed through `calibration.torch_int`'s streaming
converter, which maps the torch-int tensors (int8 weights with `a`/`b` output scales, int8 biases) to this
project's format with the same numerics; `SmoothQuantConfig.maybe_update_config` supplies the matching
quantization_config. Serve with `vllm serve <dir> --quantization smoothquant`.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from vllm.model_executor.models.opt import OPTForCausalLM


class Int8OPTForCausalLM(OPTForCausalLM):
    """vLLM's OPT reading a torch-int Int8OPT checkpoint through the converter."""

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        from calibration.torch_int.convert import convert_torch_int_state_dict

        _, converted = convert_torch_int_state_dict(self.config, weights)
        return super().load_weights(converted)
