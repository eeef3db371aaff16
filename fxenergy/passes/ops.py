"""The op registry: one table, one row per ATen op, with everything fxenergy knows about it.

Each :class:`OpEntry` carries the op's **cost formula** (MACs and elementwise FLOPs, from
:mod:`fxenergy.passes.formulas`; ``None`` when the op is deliberately free), its **byte rule**, its
**duration family** (the HEF curve of :mod:`fxenergy.passes.families` it follows) and its **layer
type** in seed 000's layer-wise regression (``None`` for ops that are no such layer). The cost pass
(:mod:`fxenergy.passes.costs`), the duration pass and the HEF and CPU backends (:func:`family_of`) and
the layer-wise backend (:func:`layer_type_of`) all read this table; nothing else maps ops.

Rows are keyed by the op's name as rows print it: ``"addmm"`` for ``aten::addmm`` (every overload of
an op shares its row), ``"namespace::name"`` for ops of other libraries (registered at run time, so
keyed by name), ``"getitem"`` for :func:`operator.getitem`. An op with no row is *unmodeled*: never
counted as zero, its node lists it, and it falls in the catch-all ``"elementwise"`` family.

Conventions (stated once, used everywhere):

* ``macs`` — multiply-accumulates of contraction ops: convolutions, matrix products, attention.
  Under the **default** convention they are exactly ``torch.utils.flop_counter``'s count / 2 (whose
  formulas we call, not copy): no bias term. ``flops = 2 * macs``. One exception: the weight gradient of a
  *grouped* convolution (``convolution_backward`` with ``groups > 1``), which flop_counter counts ``groups``
  times over; it is counted once (:func:`fxenergy.passes.formulas.grouped_conv_backward`).
* ``elementwise_flops`` — arithmetic of every other op: one per output element for pointwise ops
  (NB: transcendental functions count 1 too; their real cost shows in durations, not here), one per
  input element for reductions, and the fvcore conventions for normalisation (batch norm eval 2/elt
  with affine; training and layer/group norm 5/elt with affine, 4 without), softmax 5/elt, pooling
  one per window element. Backward ops of these families count 2x their forward.
* The **seed000** convention (Getzner et al., Table 3; ptflops's) adds one MAC per output for a
  bias of convolutions and linear layers, and counts MaxPool as ``k² · out / 2`` and ReLU as
  ``numel / 2`` MACs (``--convention seed000``).
* ``bytes_read`` / ``bytes_written`` — every op call reads its tensor inputs and writes its outputs
  once (NB: an unfused-kernel model; fused kernels move less). Views are free. Gathers (embedding,
  index) read only the rows they fetch. ``param_bytes_read`` is the part of ``bytes_read`` that came
  from parameters, buffers or optimizer state.

**The seed-000 ReLU rule, reconciled with Table 3.** Table 3 of seed 000 gives ReLU
``(w_in·h_in·c_in·B)/2`` MACs: VGG11 at 224² has 7,434,240 ReLU output elements
(64·224² + 128·112² + 2·256·56² + 2·512·28² + 2·512·14² + 2·4096) and the table lists 3,717,120. The
cost formula here follows it (``numel / 2`` under ``seed000``; ``tests/test_costs.py`` checks VGG11
exactly). The released measurements (``cpu-layers-getzner/relu.csv``) do *not*: their ``macs`` column
is ``batch_size · input_size`` on all 988 rows, one per element (MaxPool's is Table 3's ``/2``; Sigmoid,
Tanh and Softmax store 0). The layer-wise regressors are fitted on, and must be fed, that data's
definition, so :func:`fxenergy.predictors.layerwise.seed000_macs` keeps one per element: it is a
regression *feature* (the data's ``macs``), not a MAC count to compare with Table 3
(``tests/test_op_registry.py`` checks both against the data).

>>> import torch
>>> e = op_info(torch.ops.aten.addmm.default)
>>> e.family, e.layer_type, e.cost is not None, e.bytes_rule.__name__
('matmul', 'Linear', True, 'default_bytes')
>>> op_info(torch.ops.aten.view.default).cost is None    # deliberately free
True
>>> family_of("relu_"), layer_type_of("relu_"), family_of("_fft_r2c")   # _fft_r2c: unmodeled, catch-all
('elementwise', 'ReLU', 'elementwise')
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, cast

import torch
from torch.utils.flop_counter import flop_registry

from fxenergy.passes import formulas as f
from fxenergy.passes.families import FAMILIES
from fxenergy.passes.formulas import BytesFn, CostFn, pointwise, reduction

__all__ = ["OpEntry", "OPS", "op_name", "op_info", "lookup", "family_of", "layer_type_of", "register_cost",
           "register_free", "LAYER_TYPES"]

aten = torch.ops.aten


@dataclass(frozen=True, slots=True)
class OpEntry:
    """What fxenergy knows about one ATen op (all four fields always set; see the module docstring).

    ``cost``: ``fn(call, convention) -> OpArith``, or ``None`` for a deliberately free op (a view);
    ``bytes_rule``: ``fn(call) -> (bytes_read, bytes_written, param_bytes_read)``; ``family``: a key of
    :data:`fxenergy.passes.families.FAMILIES`; ``layer_type``: a seed-000 layer type or ``None``.
    """

    name: str
    cost: CostFn | None
    bytes_rule: BytesFn
    family: str = "elementwise"
    layer_type: str | None = None

    @property
    def free(self) -> bool:
        return self.cost is None


_TABLE: dict[str, OpEntry] = {}
OPS: Mapping[str, OpEntry] = MappingProxyType(_TABLE)
"""The registry: op name -> :class:`OpEntry` (read-only view)."""
_BY_OBJECT: dict[object, OpEntry | None] = {}  # resolved op objects (overloads, packets), a cache


def op_name(op: object) -> str:
    """The registry key of an op object: an overload, its packet, a higher-order op or a Python function."""
    schema = getattr(op, "_schema", None)
    qualified = schema.name if schema is not None else getattr(op, "_qualified_op_name", None)
    if qualified is None:
        name = op.name() if isinstance(op, torch._ops.HigherOrderOperator) else getattr(op, "__name__", str(op))
        return str(name)
    ns, _, short = str(qualified).partition("::")
    return short if ns == "aten" else str(qualified)


def _add(targets: Iterable[object], cost: CostFn | None, bytes_rule: BytesFn | None = None) -> None:
    for t in targets:
        name = t if isinstance(t, str) else op_name(t)
        if name in _TABLE:
            raise RuntimeError(f"cost of {name} registered twice")
        _TABLE[name] = OpEntry(name, cost, bytes_rule or (f.default_bytes if cost is not None else f.no_bytes))
    _BY_OBJECT.clear()


def _set(field: str, value: object, names: Iterable[str]) -> None:
    """Set one field of existing rows: every name must already have a cost (or be declared free)."""
    for n in names:
        if n not in _TABLE:
            raise RuntimeError(f"{field} declared for {n}, which has no cost row")
        _TABLE[n] = replace(_TABLE[n], **cast(dict[str, Any], {field: value}))


def register_cost(*targets: object) -> Callable[[CostFn], CostFn]:
    """Decorator: ``fn(call, convention) -> OpArith`` is the formula for ``targets`` (ATen ops or names)."""

    def deco(fn: CostFn) -> CostFn:
        _add(targets, fn)
        return fn

    return deco


def register_free(*targets: object) -> None:
    """Declare ``targets`` deliberately free: no arithmetic, no memory traffic (views, asserts)."""
    _add(targets, None)


# --------------------------------------------------------------------------------------------------
# cost formulas

# contraction ops: torch.utils.flop_counter's own formulas
# (but a grouped convolution's weight gradient counted once per group, not once per group per group: see
# formulas.grouped_conv_backward)
for _packet, _fn in flop_registry.items():
    _raw = getattr(_fn, "__wrapped__", _fn)
    _add([_packet], f.grouped_conv_backward(_raw) if _packet is aten.convolution_backward else f.from_flop_counter(_raw))
_add(["transformers::grouped_mm_fallback", "_grouped_mm"], f.grouped_mm)  # mixture-of-experts layers
_add([aten.mv, aten.addmv, aten.dot], f.matvec)
_add([aten._addmm_activation], f.addmm_activation)

_add([
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
], pointwise(1))
_add([aten.addcmul, aten.addcmul_, aten.addcdiv, aten.addcdiv_, aten.gelu_backward], pointwise(2))
_add([aten.relu, aten.relu_], f.relu)
_add([aten.sum, aten.mean, aten.amax, aten.amin, aten.max, aten.min, aten.argmax, aten.argmin, aten.prod,
      aten.any, aten.all, aten.norm, aten.linalg_vector_norm, aten.logsumexp], reduction(1))
_add([aten.var, aten.var_mean, aten.std, aten.std_mean], reduction(3))
_add([aten.topk, aten.histc], reduction(1))  # a pass over the input (MoE routers: top-k experts, tokens per expert)
_add([aten.sort], f.sort)
_add([aten._softmax, aten._log_softmax, aten._safe_softmax], reduction(5))
_add([aten._softmax_backward_data, aten._log_softmax_backward_data], reduction(3))
_add([aten.native_batch_norm, aten._native_batch_norm_legit, aten._native_batch_norm_legit_functional,
      aten._native_batch_norm_legit_no_training, aten.cudnn_batch_norm, aten.miopen_batch_norm], f.batch_norm)
_add([aten.native_layer_norm, aten.native_group_norm], f.layer_norm)
_add([aten.native_batch_norm_backward, aten.native_layer_norm_backward, aten.native_group_norm_backward,
      aten.cudnn_batch_norm_backward], f.norm_backward)
_add([op for op in f.POOL_DIMS if "backward" not in str(op)], f.pool)
_add([op for op in f.POOL_DIMS if "backward" in str(op)], f.pool_backward)
_add([aten._adaptive_avg_pool2d, aten._adaptive_avg_pool3d, aten.adaptive_max_pool2d, aten.adaptive_avg_pool1d,
      aten.adaptive_max_pool1d], reduction(1))
_add([aten._adaptive_avg_pool2d_backward, aten._adaptive_avg_pool3d_backward, aten.adaptive_max_pool2d_backward],
     pointwise(2))
_add([aten.upsample_nearest2d, aten.upsample_nearest1d, aten.upsample_nearest3d, aten._unsafe_index], pointwise(0))
_add([aten.upsample_bilinear2d, aten._upsample_bilinear2d_aa, aten.upsample_bicubic2d], pointwise(4))

# Pure data movement: zero arithmetic, but real bytes.
_add([
    aten.embedding, aten.embedding_dense_backward, aten.clone, aten._to_copy, aten.copy, aten.copy_, aten.cat,
    aten.stack, aten.index, aten.index_select, aten.gather, aten.scatter, aten.scatter_add, aten.index_put,
    aten.index_put_, aten.index_add, aten.constant_pad_nd, aten.repeat, aten.flip, aten.roll, aten.fill,
    aten.fill_, aten.zero_, aten.zeros, aten.zeros_like, aten.ones, aten.ones_like, aten.full, aten.full_like,
    aten.new_zeros, aten.new_ones, aten.new_full, aten.arange, aten.scalar_tensor, aten.slice_scatter,
    aten.select_scatter, aten.masked_scatter, aten.reflection_pad2d, aten.replication_pad2d,
    aten.channel_shuffle, aten.pixel_shuffle, aten.lift_fresh_copy, aten.col2im, aten.im2col,
    aten.split_with_sizes_copy, aten.unbind_copy, aten.view_copy, aten.expand_copy, aten.permute_copy,
], pointwise(0))

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
# byte rules (every other row reads its inputs and writes its outputs: formulas.default_bytes)

_set("bytes_rule", f.gather_bytes, ["embedding", "index", "index_select", "gather", "_unsafe_index"])
_set("bytes_rule", f.write_only_bytes, [
    "zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "new_zeros", "new_ones", "new_full", "arange",
    "scalar_tensor", "fill", "fill_", "zero_", "bernoulli_", "uniform_", "normal_", "rand_like", "randn_like"])
_set("bytes_rule", f.copy_bytes, ["copy_"])

# --------------------------------------------------------------------------------------------------
# duration families (HEF curves; every other row is in the catch-all "elementwise")

_FAMILY_OPS: dict[str, tuple[str, ...]] = {
    "matmul": ("addmm", "mm", "addmv", "mv", "dot", "_addmm_activation", "_grouped_mm",
               "transformers::grouped_mm_fallback"),
    "bmm": ("bmm", "baddbmm", "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
            "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_flash_attention_for_cpu"),
    "convolution": ("convolution", "_convolution", "cudnn_convolution"),
    "normalization": ("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_functional",
                      "_native_batch_norm_legit_no_training", "cudnn_batch_norm", "native_layer_norm",
                      "native_group_norm"),
    "softmax": ("_softmax", "_log_softmax", "_safe_softmax"),
    "reduction": ("sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "prod", "var", "var_mean", "std",
                  "std_mean", "norm", "linalg_vector_norm", "logsumexp", "topk", "histc", "sort"),
    "pooling": ("avg_pool2d", "max_pool2d_with_indices", "avg_pool1d", "max_pool1d", "avg_pool3d",
                "max_pool3d_with_indices", "_adaptive_avg_pool2d", "adaptive_max_pool2d", "_adaptive_avg_pool3d",
                "adaptive_avg_pool1d"),
    "embedding": ("embedding", "index_select", "gather", "index", "scatter", "cat", "stack", "clone", "_to_copy",
                  "copy", "copy_", "constant_pad_nd", "repeat", "slice_scatter"),
}
for _family, _names in _FAMILY_OPS.items():
    _set("family", _family, _names)

# --------------------------------------------------------------------------------------------------
# seed 000's layer types (the regressors of the layer-wise backend)

_LAYER_OPS: dict[str, tuple[str, ...]] = {
    "Conv2d": ("convolution",),
    "MaxPool2d": ("max_pool2d_with_indices",),
    "AvgPool2d": ("avg_pool2d",),
    "Linear": ("addmm", "mm"),
    "ReLU": ("relu", "relu_"),
    "Sigmoid": ("sigmoid",),
    "Tanh": ("tanh",),
    "Softmax": ("_softmax",),
    "BatchNorm2d": ("_native_batch_norm_legit_no_training", "native_batch_norm", "_native_batch_norm_legit",
                    "cudnn_batch_norm"),
    "AdaptiveAvgPool2d": ("_adaptive_avg_pool2d",),
}
for _layer, _names in _LAYER_OPS.items():
    _set("layer_type", _layer, _names)

LAYER_TYPES: Mapping[str, str] = MappingProxyType({e.name: e.layer_type for e in _TABLE.values() if e.layer_type})
"""Op name -> seed-000 layer type, the rows of :data:`OPS` that have one."""

for _e in _TABLE.values():  # every family named by a row is a known HEF family
    assert _e.family in FAMILIES, _e


# --------------------------------------------------------------------------------------------------
# reading the table


def op_info(op: object) -> OpEntry | None:
    """The row of an op object (overload, packet, higher-order op), or ``None`` when it is unmodeled."""
    try:
        return _BY_OBJECT[op]
    except KeyError:
        entry = _BY_OBJECT[op] = _TABLE.get(op_name(op))
        return entry
    except TypeError:  # unhashable: resolve without caching
        return _TABLE.get(op_name(op))


def lookup(op: object) -> tuple[bool, CostFn | None]:
    """``(known, formula)`` of an op object; ``(True, None)`` for a deliberately free op."""
    e = op_info(op)
    return (False, None) if e is None else (True, e.cost)


def family_of(op: str) -> str:
    """The duration family of an op name as :class:`fxenergy.Row` ``.op`` spells it (``"addmm"``, ...).

    NB: ops without a family row (and unmodeled ops) fall into the catch-all ``"elementwise"``.
    """
    e = _TABLE.get(op) or _TABLE.get(op.split(".", 1)[0])
    return e.family if e is not None else "elementwise"


def layer_type_of(op: str) -> str | None:
    """The seed-000 layer type of an op name, or ``None`` when the op is no such layer."""
    e = _TABLE.get(op)
    return e.layer_type if e is not None else None
