"""Cost pass: MACs, FLOPs and bytes moved for every node, from a registry of ATen op formulas.

Conventions (stated once, used everywhere):

* ``macs`` — multiply-accumulates of contraction ops: convolutions, matrix products, attention.
  Under the **default** convention they are exactly ``torch.utils.flop_counter``'s count / 2 (whose
  formulas we call, not copy): no bias term. ``flops = 2 * macs``.
* ``elementwise_flops`` — arithmetic of every other op: one per output element for pointwise ops
  (NB: transcendental functions count 1 too; their real cost shows in durations, not here), one per
  input element for reductions, and the fvcore conventions for normalisation (batch norm eval 2/elt
  with affine; training and layer/group norm 5/elt with affine, 4 without), softmax 5/elt, pooling
  one per window element. Backward ops of these families count 2× their forward.
* The **seed000** convention (Getzner et al., Table 3; ptflops's) adds one MAC per output for a
  bias of convolutions and linear layers, and counts MaxPool as ``k² · out / 2`` and ReLU as
  ``numel / 2`` MACs. It exists because the layer-wise regression data was measured with it.
* ``bytes_read`` / ``bytes_written`` — every op call reads its tensor inputs and writes its outputs
  once (NB: an unfused-kernel model; fused kernels move less). Views are free. Gathers (embedding,
  index) read only the rows they fetch. ``param_bytes_read`` is the part of ``bytes_read`` that came
  from parameters, buffers or optimizer state.

An op with no formula is never counted as zero: the node lists it in ``NodeCost.unmodeled``, and
its bytes are still counted. ``None`` in the registry means "deliberately free" (views, asserts).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch.utils import _pytree as pytree
from torch.utils.flop_counter import flop_registry

from fxenergy.errors import UserInputError
from fxenergy.records import COST, TRACE, NodeCost, OpCall, TensorSpec, get_record, put_record

__all__ = [
    "Convention",
    "CONVENTIONS",
    "OpArith",
    "register_cost",
    "register_free",
    "lookup",
    "op_arith",
    "op_bytes",
    "CostPass",
    "get_convention",
]

aten = torch.ops.aten


@dataclass(frozen=True, slots=True)
class Convention:
    """A named MAC-counting convention (see the module docstring)."""

    name: str
    bias_macs: bool
    pool_relu_macs: bool


CONVENTIONS = {
    "default": Convention("default", bias_macs=False, pool_relu_macs=False),
    "seed000": Convention("seed000", bias_macs=True, pool_relu_macs=True),
}


def get_convention(name: str | Convention) -> Convention:
    if isinstance(name, Convention):
        return name
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise UserInputError(f"unknown MAC convention {name!r}; choose one of: {', '.join(CONVENTIONS)}") from None


@dataclass(frozen=True, slots=True)
class OpArith:
    macs: int = 0
    elementwise_flops: int = 0


CostFn = Callable[[OpCall, Convention], OpArith]
BytesFn = Callable[[OpCall], tuple[int, int, int]]  # (bytes_read, bytes_written, param_bytes_read)

_COSTS: dict[object, CostFn | None] = {}
_BYTES: dict[object, BytesFn] = {}


def _register(table: dict, targets: Iterable[object], value: object) -> None:
    for t in targets:
        if t in table:
            raise RuntimeError(f"cost of {t} registered twice")
        table[t] = value


def register_cost(*targets: object) -> Callable[[CostFn], CostFn]:
    """Decorator: ``fn(call, convention) -> OpArith`` is the formula for ``targets`` (ATen ops)."""

    def deco(fn: CostFn) -> CostFn:
        _register(_COSTS, targets, fn)
        return fn

    return deco


def register_free(*targets: object) -> None:
    """Declare ``targets`` deliberately free: no arithmetic, no memory traffic (views, asserts)."""
    _register(_COSTS, targets, None)


def _register_bytes(*targets: object) -> Callable[[BytesFn], BytesFn]:
    def deco(fn: BytesFn) -> BytesFn:
        _register(_BYTES, targets, fn)
        return fn

    return deco


# Formulas of ops that a library registers at run time (so no op object exists when fxenergy is
# imported), keyed by schema name ``namespace::op``.
_COSTS_BY_NAME: dict[str, CostFn] = {}


def lookup(op: torch._ops.OpOverload) -> tuple[bool, CostFn | None]:
    """``(known, formula)`` for an ATen overload; the overload wins over its packet, then the schema name."""
    for key in (op, getattr(op, "overloadpacket", None)):
        if key in _COSTS:
            return True, _COSTS[key]
    schema = getattr(op, "_schema", None)
    fn = _COSTS_BY_NAME.get(schema.name) if schema is not None else None
    return (True, fn) if fn is not None else (False, None)


def op_arith(call: OpCall, convention: Convention) -> OpArith | None:
    """Arithmetic of one call, or ``None`` when the op has no formula (unmodeled)."""
    known, fn = lookup(call.op)
    if not known:
        return None
    return OpArith() if fn is None else fn(call, convention)


# --------------------------------------------------------------------------------------------------
# shape helpers


def _tensors(tree: object) -> list[TensorSpec]:
    return [x for x in pytree.tree_leaves(tree) if isinstance(x, TensorSpec)]


def _out_numel(call: OpCall) -> int:
    return sum(t.numel for t in _tensors(call.out))


def _first_out_numel(call: OpCall) -> int:
    outs = _tensors(call.out)
    return outs[0].numel if outs else 0


def _in_numel(call: OpCall) -> int:
    return call.args[0].numel if isinstance(call.args[0], TensorSpec) else _out_numel(call)


def _shapes(tree: object) -> object:
    return pytree.tree_map_only(TensorSpec, lambda t: torch.Size(t.shape), tree)


# --------------------------------------------------------------------------------------------------
# contraction ops: torch.utils.flop_counter's own formulas


def _from_flop_counter(raw: Callable[..., int]) -> CostFn:
    def fn(call: OpCall, convention: Convention) -> OpArith:
        flops = raw(*_shapes(call.args), out_shape=_shapes(call.out), **_shapes(dict(call.kwargs)))
        macs = int(flops) // 2
        if convention.bias_macs:
            macs += _bias_outputs(call)
        return OpArith(macs=macs)

    return fn


def _bias_outputs(call: OpCall) -> int:
    """One MAC per output element when the call adds a bias (seed-000 convention)."""
    name = call.op.overloadpacket
    has_bias = (name is aten.addmm and isinstance(call.args[0], TensorSpec)) or (
        name in (aten.convolution, aten._convolution) and len(call.args) > 2 and isinstance(call.args[2], TensorSpec)
    )
    return _first_out_numel(call) if has_bias else 0


for _packet, _fn in flop_registry.items():
    register_cost(_packet)(_from_flop_counter(getattr(_fn, "__wrapped__", _fn)))


def _grouped_mm(call: OpCall, convention: Convention) -> OpArith:
    """Mixture-of-experts grouped matmul: ``input (S, K)`` rows each times its expert's ``weight[e] (K, N)``.

    Whatever the routing, the S routed rows cost ``S · K · N`` MACs in total (exact on meta tensors,
    where the per-expert split is unknown). transformers' ``grouped_mm_fallback``.
    """
    x, w = call.args[0], call.args[1]
    if not (isinstance(x, TensorSpec) and isinstance(w, TensorSpec) and len(x.shape) == 2 and len(w.shape) == 3):
        raise ValueError("grouped mm expects input (S, K) and weight (E, K, N)")
    return OpArith(macs=x.shape[0] * x.shape[1] * w.shape[2])


_COSTS_BY_NAME["transformers::grouped_mm_fallback"] = _grouped_mm


# --------------------------------------------------------------------------------------------------
# families of non-contraction ops


def pointwise(flops_per_element: int = 1) -> CostFn:
    """Ops doing ``flops_per_element`` arithmetic operations per output element."""

    def fn(call: OpCall, convention: Convention) -> OpArith:
        return OpArith(elementwise_flops=flops_per_element * _first_out_numel(call))

    return fn


def reduction(flops_per_element: int = 1) -> CostFn:
    """Ops doing ``flops_per_element`` operations per *input* element (sum, mean, amax, …)."""

    def fn(call: OpCall, convention: Convention) -> OpArith:
        return OpArith(elementwise_flops=flops_per_element * _in_numel(call))

    return fn


_POINTWISE_1 = [
    aten.add, aten.add_, aten.sub, aten.sub_, aten.rsub, aten.mul, aten.mul_, aten.div, aten.div_,
    aten.neg, aten.abs, aten.reciprocal, aten.sqrt, aten.rsqrt, aten.exp, aten.exp2, aten.expm1, aten.log,
    aten.log1p, aten.log2, aten.pow, aten.pow_, aten.sin, aten.cos, aten.tanh, aten.tanh_, aten.sigmoid,
    aten.sigmoid_, aten.erf, aten.gelu, aten.gelu_, aten.silu, aten.silu_, aten.mish, aten.elu, aten.elu_,
    aten.hardtanh, aten.hardtanh_, aten.hardswish, aten.hardswish_, aten.hardsigmoid, aten.hardsigmoid_,
    aten.leaky_relu, aten.leaky_relu_, aten.softplus, aten.clamp, aten.clamp_, aten.clamp_min,
    aten.clamp_min_, aten.clamp_max, aten.maximum, aten.minimum, aten.where, aten.eq, aten.ne, aten.lt,
    aten.le, aten.gt, aten.ge, aten.logical_not, aten.logical_and, aten.logical_or, aten.bitwise_and,
    aten.bitwise_or, aten.bitwise_not, aten.__and__, aten.__or__, aten.masked_fill, aten.masked_fill_,
    aten.floor, aten.ceil, aten.round, aten.trunc, aten.sign, aten.lerp, aten.lerp_, aten.fmod,
    aten.remainder, aten.floor_divide, aten.bernoulli, aten.bernoulli_, aten.uniform_, aten.normal_,
    aten.rand_like, aten.randn_like, aten.isinf, aten.isnan, aten.relu6, aten.prelu, aten.glu,
    aten.nan_to_num, aten.logit, aten.triu, aten.tril, aten.cumsum, aten.cumprod, aten.diff,
    aten.threshold, aten.leaky_relu_backward, aten.hardtanh_backward, aten.threshold_backward,
    aten.sigmoid_backward, aten.tanh_backward, aten.silu_backward, aten.hardswish_backward,
    aten.hardsigmoid_backward, aten.elu_backward, aten.native_dropout, aten.native_dropout_backward,
]
register_cost(*_POINTWISE_1)(pointwise(1))
register_cost(aten.addcmul, aten.addcmul_, aten.addcdiv, aten.addcdiv_, aten.gelu_backward)(pointwise(2))


@register_cost(aten.relu, aten.relu_)
def _relu(call: OpCall, convention: Convention) -> OpArith:
    n = _first_out_numel(call)
    return OpArith(macs=n // 2 if convention.pool_relu_macs else 0, elementwise_flops=n)


register_cost(
    aten.sum, aten.mean, aten.amax, aten.amin, aten.max, aten.min, aten.argmax, aten.argmin, aten.prod,
    aten.any, aten.all, aten.norm, aten.linalg_vector_norm, aten.logsumexp,
)(reduction(1))
register_cost(aten.var, aten.var_mean, aten.std, aten.std_mean)(reduction(3))
register_cost(aten._softmax, aten._log_softmax, aten._safe_softmax)(reduction(5))
register_cost(aten._softmax_backward_data, aten._log_softmax_backward_data)(reduction(3))


def _norm_affine(call: OpCall, weight_index: int) -> bool:
    return len(call.args) > weight_index and isinstance(call.args[weight_index], TensorSpec)


@register_cost(aten.native_batch_norm, aten._native_batch_norm_legit, aten._native_batch_norm_legit_functional,
               aten._native_batch_norm_legit_no_training, aten.cudnn_batch_norm, aten.miopen_batch_norm)
def _batch_norm(call: OpCall, convention: Convention) -> OpArith:
    affine = _norm_affine(call, 1)
    training = call.op.overloadpacket is not aten._native_batch_norm_legit_no_training and bool(
        call.args[5] if len(call.args) > 5 else False
    )
    per_elt = (5 if affine else 4) if training else (2 if affine else 1)
    return OpArith(elementwise_flops=per_elt * _in_numel(call))


@register_cost(aten.native_layer_norm, aten.native_group_norm)
def _layer_norm(call: OpCall, convention: Convention) -> OpArith:
    affine = _norm_affine(call, 2 if call.op.overloadpacket is aten.native_layer_norm else 1)
    return OpArith(elementwise_flops=(5 if affine else 4) * _in_numel(call))


@register_cost(aten.native_batch_norm_backward, aten.native_layer_norm_backward, aten.native_group_norm_backward,
               aten.cudnn_batch_norm_backward)
def _norm_backward(call: OpCall, convention: Convention) -> OpArith:
    return OpArith(elementwise_flops=10 * _in_numel(call))


_POOL_DIMS = {
    aten.max_pool1d: 1, aten.avg_pool1d: 1, aten.max_pool2d_with_indices: 2, aten.avg_pool2d: 2,
    aten.max_pool3d_with_indices: 3, aten.avg_pool3d: 3, aten.max_pool2d_with_indices_backward: 2,
    aten.avg_pool2d_backward: 2, aten.max_pool3d_with_indices_backward: 3, aten.avg_pool3d_backward: 3,
}
_MAX_POOLS = (aten.max_pool1d, aten.max_pool2d_with_indices, aten.max_pool3d_with_indices)


def _window(call: OpCall, kernel_index: int) -> int:
    """Elements in one pooling window; a one-number kernel size means a square (cube) window."""
    k = call.args[kernel_index]
    k = list(k) if isinstance(k, Sequence) else [k]
    if len(k) == 1:
        k = k * _POOL_DIMS[call.op.overloadpacket]
    return math.prod(int(x) for x in k)


@register_cost(*(op for op in _POOL_DIMS if "backward" not in str(op)))
def _pool(call: OpCall, convention: Convention) -> OpArith:
    flops = _window(call, 1) * _first_out_numel(call)
    is_max = call.op.overloadpacket in _MAX_POOLS
    return OpArith(macs=flops // 2 if (convention.pool_relu_macs and is_max) else 0, elementwise_flops=flops)


@register_cost(*(op for op in _POOL_DIMS if "backward" in str(op)))
def _pool_backward(call: OpCall, convention: Convention) -> OpArith:
    return OpArith(elementwise_flops=2 * _window(call, 2) * call.args[0].numel)


register_cost(aten._adaptive_avg_pool2d, aten._adaptive_avg_pool3d, aten.adaptive_max_pool2d,
              aten.adaptive_avg_pool1d, aten.adaptive_max_pool1d)(reduction(1))
register_cost(aten._adaptive_avg_pool2d_backward, aten._adaptive_avg_pool3d_backward,
              aten.adaptive_max_pool2d_backward)(pointwise(2))
register_cost(aten.upsample_nearest2d, aten.upsample_nearest1d, aten.upsample_nearest3d, aten._unsafe_index)(pointwise(0))
register_cost(aten.upsample_bilinear2d, aten._upsample_bilinear2d_aa, aten.upsample_bicubic2d)(pointwise(4))

# Pure data movement: zero arithmetic, but real bytes.
register_cost(
    aten.embedding, aten.embedding_dense_backward, aten.clone, aten._to_copy, aten.copy, aten.copy_, aten.cat,
    aten.stack, aten.index, aten.index_select, aten.gather, aten.scatter, aten.scatter_add, aten.index_put,
    aten.index_put_, aten.index_add, aten.constant_pad_nd, aten.repeat, aten.flip, aten.roll, aten.fill,
    aten.fill_, aten.zero_, aten.zeros, aten.zeros_like, aten.ones, aten.ones_like, aten.full, aten.full_like,
    aten.new_zeros, aten.new_ones, aten.new_full, aten.arange, aten.scalar_tensor, aten.slice_scatter,
    aten.select_scatter, aten.masked_scatter, aten.reflection_pad2d, aten.replication_pad2d,
    aten.channel_shuffle, aten.pixel_shuffle, aten.lift_fresh_copy, aten.col2im, aten.im2col,
    aten.split_with_sizes_copy, aten.unbind_copy, aten.view_copy, aten.expand_copy, aten.permute_copy,
)(pointwise(0))

register_free(
    aten.view, aten._unsafe_view, aten.reshape, aten._reshape_alias, aten.alias, aten.t, aten.transpose,
    aten.permute, aten.expand, aten.expand_as, aten.squeeze, aten.unsqueeze, aten.slice, aten.select,
    aten.split, aten.split_with_sizes, aten.unbind, aten.chunk, aten.as_strided, aten.detach, aten.detach_,
    aten.diagonal, aten.narrow, aten.unfold, aten.view_as_real, aten.view_as_complex, aten.numpy_T,
    aten._assert_tensor_metadata, aten._assert_async, aten.sym_size, aten.sym_stride, aten.sym_numel,
    aten.lift_fresh, aten.empty, aten.empty_like, aten.empty_strided, aten.new_empty, aten.new_empty_strided,
    aten.resolve_conj, aten.resolve_neg, aten._functional_assert_async, aten.set_, aten.resize_,
    aten.contiguous, aten.dropout, aten.feature_dropout, aten.alpha_dropout, aten.unflatten, aten.flatten,
    aten.movedim, aten.swapaxes, aten.mT, aten.matrix_H, aten.as_strided_, aten.squeeze_, aten.unsqueeze_,
    aten.transpose_, aten.t_, operator.getitem,
)


# --------------------------------------------------------------------------------------------------
# bytes


def _default_bytes(call: OpCall) -> tuple[int, int, int]:
    inputs = _tensors((call.args, call.kwargs))
    params = sum(call.args[i].nbytes for i in call.param_arg_indices)
    return sum(t.nbytes for t in inputs), sum(t.nbytes for t in _tensors(call.out)), params


def _out_bytes(call: OpCall) -> int:
    return sum(t.nbytes for t in _tensors(call.out))


@_register_bytes(aten.embedding, aten.index, aten.index_select, aten.gather, aten._unsafe_index)
def _gather_bytes(call: OpCall) -> tuple[int, int, int]:
    """A gather reads the indices and only the rows it returns, not the whole table."""
    out = _out_bytes(call)
    indices = sum(t.nbytes for t in _tensors((call.args[1:], call.kwargs)))
    return indices + out, out, out if call.param_arg_indices else 0


@_register_bytes(aten.zeros, aten.zeros_like, aten.ones, aten.ones_like, aten.full, aten.full_like, aten.new_zeros,
                 aten.new_ones, aten.new_full, aten.arange, aten.scalar_tensor, aten.fill, aten.fill_, aten.zero_,
                 aten.bernoulli_, aten.uniform_, aten.normal_, aten.rand_like, aten.randn_like)
def _write_only_bytes(call: OpCall) -> tuple[int, int, int]:
    return 0, _out_bytes(call), 0


@_register_bytes(aten.copy_)
def _copy_bytes(call: OpCall) -> tuple[int, int, int]:
    src = call.args[1]
    return (src.nbytes if isinstance(src, TensorSpec) else 0), _out_bytes(call), 0


def op_bytes(call: OpCall) -> tuple[int, int, int]:
    """``(bytes_read, bytes_written, param_bytes_read)`` of one call; free ops move nothing."""
    known, fn = lookup(call.op)
    if known and fn is None:
        return 0, 0, 0
    for key in (call.op, call.op.overloadpacket):
        if key in _BYTES:
            return _BYTES[key](call)
    return _default_bytes(call)


# --------------------------------------------------------------------------------------------------
# the pass


class CostPass:
    """Adds a :class:`~fxenergy.records.NodeCost` to every traced node. Requires: ``trace``."""

    requires = (TRACE,)
    provides = COST

    def __init__(self, convention: str | Convention = "default"):
        self.convention = get_convention(convention)

    def __call__(self, gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
        for node in gm.graph.nodes:
            if node.op == "output":
                continue
            trace = get_record(node, TRACE, required_by=type(self).__name__)
            put_record(node, COST, self.node_cost(node, trace.calls))
        return gm

    def node_cost(self, node: torch.fx.Node, calls: Sequence[OpCall]) -> NodeCost:
        macs = elementwise = read = written = param_read = 0
        unmodeled: list[str] = []
        best, best_key = None, (-1, -1, -1)
        for call in calls:
            arith = op_arith(call, self.convention)
            r, w, p = op_bytes(call)
            read, written, param_read = read + r, written + w, param_read + p
            if arith is None:
                unmodeled.append(call.name)
                continue
            macs += arith.macs
            elementwise += arith.elementwise_flops
            key = (arith.macs, arith.elementwise_flops, r + w)
            if (r + w or arith.macs or arith.elementwise_flops) and key > best_key:
                best, best_key = call.name, key
        op = best or (unmodeled[0] if unmodeled else _target_name(node))
        return NodeCost(macs, 2 * macs, elementwise, read, written, param_read, op, tuple(unmodeled))


def _target_name(node: torch.fx.Node) -> str:
    t = node.target
    if isinstance(t, torch._ops.OpOverload):
        return t._schema.name.split("::", 1)[-1]
    return getattr(t, "__name__", str(t))
