"""Offline SmoothQuant calibration: activation statistics, smoothing, INT8 export and evaluation.

The names users of mit-han-lab/smoothquant know are importable from here: `smooth_lm`, `W8A8Linear`,
`quantize_model`, `quantize_opt`, `quantize_llama_like` and the fake quantizers.
"""

from calibration.act_scales import collect_act_scales, load_act_scales, save_act_scales
from calibration.export import export_checkpoint
from calibration.simulate import (
    W8A8Linear,
    fake_quantize_activation_per_token_asymmetric,
    load_simulated_model,
    quantize_activation_per_tensor_absmax,
    quantize_activation_per_token_absmax,
    quantize_llama_like,
    quantize_model,
    quantize_opt,
    quantize_weight_per_channel_absmax,
    quantize_weight_per_tensor_absmax,
    simulated_logits,
)
from calibration.smooth import smooth_lm, smooth_model

__all__ = [
    "W8A8Linear", "collect_act_scales", "export_checkpoint", "fake_quantize_activation_per_token_asymmetric",
    "load_act_scales", "load_simulated_model", "quantize_activation_per_tensor_absmax",
    "quantize_activation_per_token_absmax", "quantize_llama_like", "quantize_model", "quantize_opt",
    "quantize_weight_per_channel_absmax", "quantize_weight_per_tensor_absmax", "save_act_scales",
    "simulated_logits", "smooth_lm", "smooth_model",
]
