"""Compatibility with the original SmoothQuant's pre-quantized OPT checkpoints (torch-int `Int8OPT` layout).

- `convert_torch_int(src, dst)`: a torch-int checkpoint directory -> a `smoothquant` checkpoint (vLLM-servable);
  `convert_torch_int_state_dict(config, tensors)` does the same on tensors, for reuse at load time.
- `export_torch_int(model, tokenizer, texts, dst)`: a float OPT -> the torch-int layout (for tests and checks).
- `torch_int_logits(config, state, input_ids)`: reference forward of the torch-int layout on CPU.

See docs/torch_int.md for what is preserved exactly and what differs.
"""

from calibration.torch_int.convert import convert_torch_int, convert_torch_int_state_dict, iter_checkpoint_tensors
from calibration.torch_int.export import export_torch_int
from calibration.torch_int.layout import TorchIntLayoutError, is_torch_int_config
from calibration.torch_int.reference import torch_int_logits

__all__ = [
    "TorchIntLayoutError",
    "convert_torch_int",
    "convert_torch_int_state_dict",
    "export_torch_int",
    "is_torch_int_config",
    "iter_checkpoint_tensors",
    "torch_int_logits",
]
