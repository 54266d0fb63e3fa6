"""Post-grad graph pass: the op that produces a quantized activation also quantizes it.

Under torch.compile, vllm_sq's CUDA linear layers quantize their input with an opaque op (`vllm_sq.per_token_quant`
or `vllm_sq.static_quant`, see vllm_sq/kernels/cuda.py). Where that input comes from vLLM's RMSNorm (the vLLM IR
ops `rms_norm` / `fused_add_rms_norm`, not yet lowered when this pass runs), from SiLU-and-mul or from
torch.nn.LayerNorm (both traced natively, recognized through the decomposition Inductor itself produces), and
nothing else reads the producer's output, the pair becomes one CUDA op that writes the activation once, as int8:

    quant(rms_norm(x, w, eps))                  -> rms_norm_quant(x, w, eps, scale)
    quant(fused_add_rms_norm(x, r, w, eps)[0])  -> fused_add_rms_norm_quant(x, r', w, eps, scale), r' = clone(r)
    quant(silu(x[:, :d]) * x[:, d:])            -> silu_and_mul_quant(x, scale)
    quant(layer_norm(x, w, b, eps))             -> layer_norm_quant(x, w, b, eps, scale)

`scale` is None for dynamic per-token quantization and the layer's static scale otherwise. The fused kernels round
the producer's output to its dtype before quantizing, as the unfused pair stores it. The updated residual is
written in place into a clone, as vLLM's lowering of its own in-place norms does; vLLM's clone elimination then
drops the clone where the residual input is donated.

Anything else (another producer, a producer output with a second reader, inputs the fused op's checks reject) is
left unfused: correct, only slower. Installed by the CUDA kernel (`install`) into vLLM's post-grad pass manager.
"""

from __future__ import annotations

import functools
import hashlib
import operator
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx
from vllm.compilation.passes.inductor_pass import InductorPass
from vllm.logger import init_logger

from vllm_sq.ops import _library  # noqa: F401  (defines torch.ops.vllm_sq on every machine)

logger = init_logger("vllm.smoothquant.fusion")

_SQ = torch.ops.vllm_sq
_PER_TOKEN = _SQ.per_token_quant.default
_STATIC = _SQ.static_quant.default
# Fusions made in this process, by fused op (what a test or a log line can ask a worker).
FUSED_TOTAL: Counter[str] = Counter()
# Shape-preserving views that may sit between a producer and the quantization (the layer's reshape to 2-D).
_VIEWS = (torch.ops.aten.view.default, torch.ops.aten.reshape.default, torch.ops.aten._unsafe_view.default)


def _ir_op(name: str) -> Any:
    """The default overload of a vLLM IR op, or None where this vLLM has no IR ops."""
    try:
        import vllm.ir.ops  # noqa: F401  (registers torch.ops.vllm_ir)
    except ImportError:
        return None
    packet = getattr(torch.ops.vllm_ir, name, None)
    return None if packet is None else packet.default


@dataclass(frozen=True)
class _Fusion:
    """A producer found behind a quantization: the fused op that replaces both, and what it replaces."""

    op: torch._ops.OpOverload
    args: tuple[Any, ...]  # the fused op's arguments before `scale`
    anchor: fx.Node  # the fused op goes right before this node, which comes after all of its inputs
    nodes: tuple[fx.Node, ...]  # the producer's nodes, erased once nothing reads them
    residual: fx.Node | None = None  # fused_add: the residual input (cloned, then updated in place)
    residual_out: fx.Node | None = None  # fused_add: the producer's updated-residual output


def _val(arg: Any) -> Any:
    return arg.meta.get("val") if isinstance(arg, fx.Node) else arg


def _norm_args(node: fx.Node, n_tensors: int) -> bool:
    """IR norm call with a weight, a float eps and no variance-size override (what the fused kernels compute)."""
    args = node.args
    if node.kwargs or len(args) not in (n_tensors + 1, n_tensors + 2):
        return False
    if len(args) == n_tensors + 2 and args[-1] is not None:
        return False
    return all(isinstance(a, fx.Node) for a in args[:n_tensors]) and isinstance(args[n_tensors], float)


def _rms_norm(y: fx.Node) -> _Fusion | None:
    if y.target is not _ir_op("rms_norm") or not _norm_args(y, 2):
        return None
    return _Fusion(_SQ.rms_norm_quant.default, tuple(y.args[:3]), anchor=y, nodes=(y,))


def _fused_add_rms_norm(y: fx.Node) -> _Fusion | None:
    if y.target is not operator.getitem or y.args[1] != 0:
        return None
    norm = y.args[0]
    if not isinstance(norm, fx.Node) or norm.target is not _ir_op("fused_add_rms_norm") or not _norm_args(norm, 3):
        return None
    outs = list(norm.users)
    if any(u.target is not operator.getitem for u in outs):
        return None
    residual_outs = [u for u in outs if u.args[1] == 1]
    if len(residual_outs) > 1 or len(outs) - len(residual_outs) != 1:
        return None
    residual_out = residual_outs[0] if residual_outs else None
    return _Fusion(_SQ.fused_add_rms_norm_quant.default, tuple(norm.args[:4]), anchor=norm,
                   nodes=(y, *residual_outs, norm), residual=norm.args[1], residual_out=residual_out)


def _silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    """vLLM's SiluAndMul.forward_native."""
    d = x.shape[-1] // 2
    return F.silu(x[..., :d]) * x[..., d:]


@functools.cache
def _silu_and_mul_pattern() -> Any:
    """The post-grad form of `_silu_and_mul`, traced with Inductor's decompositions (int/dtype literals ignored)."""
    from torch._inductor.pattern_matcher import fwd_only, gen_pattern

    return gen_pattern(_silu_and_mul, [torch.empty(4, 32, dtype=torch.bfloat16)], fwd_only)


def _known(cond: Any) -> bool:
    """True only if `cond` holds for every value of the graph's symbolic sizes (plain bools pass through)."""
    from torch.fx.experimental.symbolic_shapes import statically_known_true

    return bool(statically_known_true(cond))


def _silu_and_mul_split(y: fx.Node, x: fx.Node, nodes: list[fx.Node]) -> bool:
    """The match's two slices split x [M, 2d] on its last dim in half, SiLU taking x[:, 0:d] and the product's
    other factor (y's second operand) x[:, d:]: the literals the pattern ignores, checked."""
    x_val, y_val = _val(x), _val(y)
    if x_val is None or y_val is None or x_val.dim() != 2:
        return False
    d = y_val.shape[-1]
    if not _known(x_val.shape[-1] == 2 * d):
        return False
    slices = [n for n in nodes if n.target is torch.ops.aten.slice.Tensor]
    up = y.args[1]
    if len(slices) != 2 or up not in slices:
        return False
    for s in slices:
        src, dim, start, end, *step = s.args
        start, end = _val(start), _val(end)
        if src is not x or dim not in (1, -1) or step not in ([], [1]):
            return False
        if s is up and not (_known(start == d) and _known(end >= 2 * d)):
            return False
        if s is not up and not (_known(start == 0) and _known(end == d)):
            return False
    return True


def _exclusive_match(pattern: Any, output_target: Any, y: fx.Node) -> tuple[dict[str, Any], list[fx.Node]] | None:
    """(the match's keyword captures, its nodes other than y) if `pattern`, whose output op is `output_target`,
    matches at y and nothing outside the match reads its intermediate nodes."""
    if y.target is not output_target:
        return None
    match = pattern.match(y)
    if not match:
        return None
    nodes = [n for n in match.nodes if n is not y]
    inside = set(match.nodes)
    if any(u not in inside for n in nodes for u in n.users):
        return None
    return match.kwargs, nodes


def _silu_and_mul_fusion(y: fx.Node) -> _Fusion | None:
    found = _exclusive_match(_silu_and_mul_pattern(), torch.ops.aten.mul.Tensor, y)
    if found is None:
        return None
    captures, nodes = found
    x = captures.get("x")
    if not isinstance(x, fx.Node) or not _silu_and_mul_split(y, x, nodes):
        return None
    return _Fusion(_SQ.silu_and_mul_quant.default, (x,), anchor=y, nodes=(y, *nodes))


def _layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    """torch.nn.LayerNorm over the last dim (OPT's norms in vLLM)."""
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


@functools.cache
def _layer_norm_pattern() -> Any:
    """The post-grad form of `_layer_norm`; eps is captured (a keyword of the match), other literals ignored."""
    from torch._inductor.pattern_matcher import fwd_only, gen_pattern

    example = [torch.empty(4, 32, dtype=torch.bfloat16), torch.empty(32, dtype=torch.bfloat16),
               torch.empty(32, dtype=torch.bfloat16)]
    return gen_pattern(_layer_norm, example, fwd_only, scalar_workaround={"eps": 1e-5})


def _layer_norm_fusion(y: fx.Node) -> _Fusion | None:
    found = _exclusive_match(_layer_norm_pattern(), torch.ops.prims.convert_element_type.default, y)
    if found is None:
        return None
    captures, nodes = found
    x, w, b, eps = (captures.get(k) for k in ("x", "w", "b", "eps"))
    stats = [n for n in nodes if n.target is torch.ops.aten.var_mean.correction]
    # The literals the pattern ignores: a biased variance over the last dim only, as layer_norm_quant computes.
    if not all(isinstance(a, fx.Node) for a in (x, w, b)) or not isinstance(eps, float) or not stats or any(
            n.kwargs.get("correction") != 0 or list(n.args[1]) not in ([1], [-1]) for n in stats):
        return None
    if _val(x) is None or _val(x).dim() != 2:
        return None
    return _Fusion(_SQ.layer_norm_quant.default, (x, w, b, eps), anchor=y, nodes=(y, *nodes))


# Producer recognizers, tried in order on the node a quantization reads.
RECOGNIZERS = (_rms_norm, _fused_add_rms_norm, _silu_and_mul_fusion, _layer_norm_fusion)


def _through_views(node: fx.Node) -> tuple[fx.Node, list[fx.Node]]:
    """The node behind a chain of single-reader, shape-preserving views, and the views."""
    views = []
    while (node.target in _VIEWS and isinstance(node.args[0], fx.Node) and len(node.users) == 1
           and _val(node) is not None and _val(node.args[0]) is not None
           and tuple(_val(node).shape) == tuple(_val(node.args[0]).shape)):
        views.append(node)
        node = node.args[0]
    return node, views


def _fake_outputs(fusion: _Fusion, scale: Any) -> tuple[Any, Any] | None:
    """(fake output of the fused op, fake residual clone) via its fake implementation, or None if its checks
    reject these inputs (the pair is then left unfused)."""
    from torch._guards import detect_fake_mode

    vals = [_val(a) for a in fusion.args]
    scale_val = _val(scale)
    mode = detect_fake_mode([v for v in (*vals, scale_val) if isinstance(v, torch.Tensor)])
    if mode is None:
        return None
    with mode:
        residual = vals[1].clone() if fusion.residual is not None else None
        if residual is not None:
            vals[1] = residual
        try:
            return fusion.op(*vals, scale_val), residual
        except (ValueError, TypeError) as exc:
            logger.debug("smoothquant fusion: %s rejects %s: %s", fusion.op, fusion.anchor, exc)
            return None


def _erase_unused(graph: fx.Graph, nodes: list[fx.Node]) -> None:
    pending = list(nodes)
    while pending:
        dead = [n for n in pending if not n.users]
        if not dead:
            return
        for n in dead:
            graph.erase_node(n)
            pending.remove(n)


class ProducerQuantFusionPass(InductorPass):
    """Replaces norm / SiLU-and-mul + vllm_sq quantization with the fused vllm_sq op (see the module docstring)."""

    def __init__(self) -> None:
        self.fused: Counter[str] = Counter()  # fusions made by the last call, by fused op

    def __call__(self, graph: fx.Graph) -> None:
        self.fused = Counter()
        order = {n: i for i, n in enumerate(graph.nodes)}
        for quant in [n for n in graph.nodes if n.op == "call_function" and n.target in (_PER_TOKEN, _STATIC)]:
            y, views = _through_views(quant.args[0])
            if len(y.users) != 1:
                continue
            fusion = next((f for f in (r(y) for r in RECOGNIZERS) if f is not None), None)
            if fusion is None:
                continue
            scale = quant.args[1] if quant.target is _STATIC else None
            if isinstance(scale, fx.Node) and order[scale] > order[fusion.anchor]:
                continue
            fake = _fake_outputs(fusion, scale)
            if fake is None:
                continue
            self._rewrite(graph, quant, views, fusion, scale, *fake)
            self.fused[fusion.op._opname] += 1
        if self.fused and not FUSED_TOTAL:  # once per process: vLLM compiles many graphs
            logger.info("smoothquant: the compile pass fuses norm / SiLU-and-mul with the int8 quantization "
                        "(first graph: %s)", dict(self.fused))
        FUSED_TOTAL.update(self.fused)

    @staticmethod
    def _rewrite(graph: fx.Graph, quant: fx.Node, views: list[fx.Node], fusion: _Fusion, scale: Any,
                 fake_out: Any, fake_residual: Any) -> None:
        args = list(fusion.args)
        with graph.inserting_before(fusion.anchor):
            if fusion.residual is not None:
                clone = graph.call_function(torch.ops.aten.clone.default, (fusion.residual,))
                clone.meta["val"] = fake_residual
                args[1] = clone
            fused = graph.call_function(fusion.op, (*args, scale))
            fused.meta["val"] = fake_out
            if quant.target is _STATIC:  # static_quant returns the codes alone
                codes = graph.call_function(operator.getitem, (fused, 0))
                codes.meta["val"] = fake_out[0]
                quant.replace_all_uses_with(codes)
            else:  # per_token_quant returns (codes, scales), as the fused op does
                quant.replace_all_uses_with(fused)
        if fusion.residual_out is not None:
            fusion.residual_out.replace_all_uses_with(clone)
        _erase_unused(graph, [quant, *views, *fusion.nodes])

    def uuid(self) -> str:
        """Changes with this module's source (the recognizers are module functions), for vLLM's compile cache."""
        return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def install(vllm_config: Any) -> None:
    """Adds the pass to vLLM's post-grad passes (before vLLM builds its compiler backend, i.e. at model build)."""
    from vllm.platforms import current_platform

    passes = vllm_config.compilation_config.inductor_compile_config
    key = current_platform.pass_key
    present = passes.get(key)
    if isinstance(present, ProducerQuantFusionPass):
        return
    if present is not None:
        logger.warning("smoothquant: compilation_config.inductor_compile_config[%r] already holds %r; "
                       "the norm / SiLU-and-mul + quantization fusion is not installed", key, present)
        return
    passes[key] = ProducerQuantFusionPass()
