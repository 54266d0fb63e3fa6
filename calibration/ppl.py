"""Perplexity and output-error metrics of float vs. simulated-quantized models, to choose alpha before deploying."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from calibration.act_scales import model_device
from calibration.simulate import quantize_model
from calibration.smooth import smooth_model


@torch.no_grad()
def perplexity(model: nn.Module, blocks: torch.Tensor, batch_size: int = 8) -> float:
    """exp(mean next-token negative log-likelihood) over all positions of `blocks` `[n, seq_len]`."""
    device = model_device(model)
    nll, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        ids = blocks[start:start + batch_size].to(device)
        logits = model(input_ids=ids, use_cache=False).logits.float()
        loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                                           reduction="sum")
        nll += float(loss)
        count += ids[:, 1:].numel()
    return math.exp(nll / count)


@dataclass
class Outputs:
    hidden: torch.Tensor  # final hidden states (after the final norm where the model applies one)
    logits: torch.Tensor


@torch.no_grad()
def model_outputs(model: nn.Module, blocks: torch.Tensor, batch_size: int = 8) -> Outputs:
    device = model_device(model)
    hs, ls = [], []
    for start in range(0, len(blocks), batch_size):
        out = model(input_ids=blocks[start:start + batch_size].to(device), use_cache=False, output_hidden_states=True)
        hs.append(out.hidden_states[-1].float().cpu())
        ls.append(out.logits.float().cpu())
    return Outputs(torch.cat(hs), torch.cat(ls))


def perplexity_from_logits(logits: torch.Tensor, blocks: torch.Tensor) -> float:
    """Perplexity of `blocks` given the model's logits for them (saves a second forward pass)."""
    loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                       blocks[:, 1:].reshape(-1).to(logits.device))
    return math.exp(float(loss))


def relative_error(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float((x - ref).norm() / ref.norm())


def logit_kl(logits: torch.Tensor, ref: torch.Tensor) -> float:
    """Mean per-token KL(ref || quantized) of the next-token distributions."""
    ref_logp = torch.log_softmax(ref.float(), dim=-1).flatten(0, -2)
    logp = torch.log_softmax(logits.float(), dim=-1).flatten(0, -2)
    return float(nn.functional.kl_div(logp, ref_logp, log_target=True, reduction="batchmean"))


def simulated_copy(model: nn.Module, act_scales: Mapping[str, torch.Tensor] | None, alpha, *,
                   weight_quant: str = "per_channel", act_quant: str = "per_token", static: bool = False
                   ) -> nn.Module:
    """A copy of `model`, smoothed with `alpha` (None: not smoothed) and fake-quantized W8A8."""
    from calibration.quantize import static_input_scale

    m = copy.deepcopy(model)
    factors = smooth_model(m, act_scales, alpha) if alpha is not None else {}
    input_scales = None
    if static:
        from calibration.registry import quantized_linears, resolve_groups
        by_linear = {lin: factors[g.source] for g in resolve_groups(m) if g.source in factors for lin in g.linears}
        input_scales = {n: static_input_scale(act_scales[n], by_linear.get(n)) for n in quantized_linears(m)}
    return quantize_model(m, weight_quant, act_quant, input_scales=input_scales)


def compare_perplexity(model: nn.Module, act_scales: Mapping[str, torch.Tensor], blocks: torch.Tensor,
                       alpha: float | Mapping[str, float] = 0.5, *, weight_quant: str = "per_channel",
                       act_quant: str = "per_token", batch_size: int = 8) -> dict[str, float]:
    """Perplexity of the float model, naive W8A8 and SmoothQuant W8A8 (simulated) on `blocks`."""
    return {
        "float": perplexity(model, blocks, batch_size),
        "naive W8A8": perplexity(simulated_copy(model, None, None, weight_quant=weight_quant, act_quant=act_quant),
                                 blocks, batch_size),
        "SmoothQuant W8A8": perplexity(simulated_copy(model, act_scales, alpha, weight_quant=weight_quant,
                                                      act_quant=act_quant), blocks, batch_size),
    }
