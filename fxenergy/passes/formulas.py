"""Cost formulas and byte rules: pure functions of one recorded ATen call (:class:`~fxenergy.records.OpCall`).

Which op uses which formula is decided in one place, the op registry :mod:`fxenergy.passes.ops`; the
MAC/FLOP and byte conventions are stated there. This module only computes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch.utils import _pytree as pytree

from fxenergy.errors import UserInputError
from fxenergy.records import OpCall, TensorSpec

aten = torch.ops.aten

@dataclass(frozen=True, slots=True)
class Convention:
    """A named MAC-counting convention (stated in :mod:`fxenergy.passes.ops`)."""

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


def from_flop_counter(raw: Callable[..., int]) -> CostFn:
    def fn(call: OpCall, convention: Convention) -> OpArith:
        args, kwargs = cast(tuple, _shapes(call.args)), cast(dict, _shapes(dict(call.kwargs)))
        flops = raw(*args, out_shape=_shapes(call.out), **kwargs)
        macs = int(flops) // 2
        if convention.bias_macs:
            macs += _bias_outputs(call)
        return OpArith(macs=macs)

    return fn


def grouped_conv_backward(raw: Callable[..., int]) -> CostFn:
    """``torch.utils.flop_counter``'s ``convolution_backward`` formula with the weight gradient of a grouped
    convolution counted once. flop_counter computes that term as a dense convolution of the transposed input with
    the transposed output gradient, which ignores ``groups``: it counts ``groups`` times the multiplies each of the
    ``C_out · C_in/groups · k_h · k_w`` weights accumulates over ``N · H_out · W_out`` positions (a depthwise 5x5
    layer of EfficientNet-B5 at batch 32: 645 GFLOPs instead of 1.2). The input-gradient term and every ungrouped
    convolution are flop_counter's count unchanged."""
    base = from_flop_counter(raw)

    def fn(call: OpCall, convention: Convention) -> OpArith:
        whole = base(call, convention)
        args = call.args
        groups = int(args[9]) if len(args) > 10 and isinstance(args[9], int) else 1
        if groups <= 1 or not args[10][1]:
            return whole
        wgrad = base(dataclasses.replace(call, args=(*args[:10], [False, True, False], *args[11:])), convention)
        return dataclasses.replace(whole, macs=whole.macs - wgrad.macs + wgrad.macs // groups)

    return fn


def _bias_outputs(call: OpCall) -> int:
    """One MAC per output element when the call adds a bias (seed-000 convention)."""
    name = call.op.overloadpacket
    has_bias = (name is aten.addmm and isinstance(call.args[0], TensorSpec)) or (
        name in (aten.convolution, aten._convolution) and len(call.args) > 2 and isinstance(call.args[2], TensorSpec)
    )
    return _first_out_numel(call) if has_bias else 0


def grouped_mm(call: OpCall, convention: Convention) -> OpArith:
    """Mixture-of-experts grouped matmul: ``input (S, K)`` rows each times its expert's ``weight[e] (K, N)``.

    Whatever the routing, the S routed rows cost ``S · K · N`` MACs in total (exact on meta tensors,
    where the per-expert split is unknown). ``aten._grouped_mm`` (``offs`` ends each expert's rows) and
    transformers' ``grouped_mm_fallback``.
    """
    x, w = call.args[0], call.args[1]
    if not (isinstance(x, TensorSpec) and isinstance(w, TensorSpec) and len(x.shape) == 2 and len(w.shape) == 3):
        raise ValueError("grouped mm expects input (S, K) and weight (E, K, N)")
    return OpArith(macs=x.shape[0] * x.shape[1] * w.shape[2])


def sort(call: OpCall, convention: Convention) -> OpArith:
    """``aten.sort``: ``numel · ceil(log2 d)`` comparisons, ``d`` the length of the sorted dimension (a
    comparison sort's count; the arithmetic of a radix sort is of the same order)."""
    x = call.args[0]
    if not isinstance(x, TensorSpec):
        return OpArith()
    dim = call.args[1] if len(call.args) > 1 and isinstance(call.args[1], int) else call.kwargs.get("dim", -1)
    d = int(x.shape[dim]) if x.shape else 1
    passes = math.ceil(math.log2(d)) if d > 1 else 0
    return OpArith(elementwise_flops=math.prod(x.shape) * passes)




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


def relu(call: OpCall, convention: Convention) -> OpArith:
    """One FLOP per element; under ``seed000`` also ``numel / 2`` MACs (Getzner et al. Table 3: VGG11's
    7,434,240 ReLU outputs are listed as 3,717,120 MACs). See :mod:`fxenergy.passes.ops` for how this
    differs, on purpose, from the layer-wise backend's ReLU feature."""
    n = _first_out_numel(call)
    return OpArith(macs=n // 2 if convention.pool_relu_macs else 0, elementwise_flops=n)


def _norm_affine(call: OpCall, weight_index: int) -> bool:
    return len(call.args) > weight_index and isinstance(call.args[weight_index], TensorSpec)


def batch_norm(call: OpCall, convention: Convention) -> OpArith:
    affine = _norm_affine(call, 1)
    training = call.op.overloadpacket is not aten._native_batch_norm_legit_no_training and bool(
        call.args[5] if len(call.args) > 5 else False
    )
    per_elt = (5 if affine else 4) if training else (2 if affine else 1)
    return OpArith(elementwise_flops=per_elt * _in_numel(call))


def layer_norm(call: OpCall, convention: Convention) -> OpArith:
    affine = _norm_affine(call, 2 if call.op.overloadpacket is aten.native_layer_norm else 1)
    return OpArith(elementwise_flops=(5 if affine else 4) * _in_numel(call))


def norm_backward(call: OpCall, convention: Convention) -> OpArith:
    return OpArith(elementwise_flops=10 * _in_numel(call))


POOL_DIMS = {
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
        k = k * POOL_DIMS[call.op.overloadpacket]
    return math.prod(int(x) for x in k)


def pool(call: OpCall, convention: Convention) -> OpArith:
    flops = _window(call, 1) * _first_out_numel(call)
    is_max = call.op.overloadpacket in _MAX_POOLS
    return OpArith(macs=flops // 2 if (convention.pool_relu_macs and is_max) else 0, elementwise_flops=flops)


def pool_backward(call: OpCall, convention: Convention) -> OpArith:
    return OpArith(elementwise_flops=2 * _window(call, 2) * call.args[0].numel)


# --------------------------------------------------------------------------------------------------
# bytes: (bytes_read, bytes_written, param_bytes_read) of one call


def default_bytes(call: OpCall) -> tuple[int, int, int]:
    inputs = _tensors((call.args, call.kwargs))
    params = sum(call.args[i].nbytes for i in call.param_arg_indices)
    return sum(t.nbytes for t in inputs), sum(t.nbytes for t in _tensors(call.out)), params


def _out_bytes(call: OpCall) -> int:
    return sum(t.nbytes for t in _tensors(call.out))


def gather_bytes(call: OpCall) -> tuple[int, int, int]:
    """A gather reads the indices and only the rows it returns, not the whole table."""
    out = _out_bytes(call)
    indices = sum(t.nbytes for t in _tensors((call.args[1:], call.kwargs)))
    return indices + out, out, out if call.param_arg_indices else 0


def write_only_bytes(call: OpCall) -> tuple[int, int, int]:
    return 0, _out_bytes(call), 0


def copy_bytes(call: OpCall) -> tuple[int, int, int]:
    src = call.args[1]
    return (src.nbytes if isinstance(src, TensorSpec) else 0), _out_bytes(call), 0


def no_bytes(call: OpCall) -> tuple[int, int, int]:
    """A deliberately free op (a view, an assert) moves nothing."""
    return 0, 0, 0


def matvec(call: OpCall, convention: Convention) -> OpArith:
    """``mv``/``addmv``: (M, N) x (N,) is M*N MACs; ``dot``: N MACs (torch's FlopCounterMode has no formula)."""
    a = [x for x in call.args if isinstance(x, TensorSpec)]
    name = call.op.overloadpacket
    if name is aten.dot:
        return OpArith(macs=a[0].numel)
    mat = a[1] if name is aten.addmv else a[0]
    return OpArith(macs=mat.numel, elementwise_flops=_first_out_numel(call) if name is aten.addmv else 0)


def addmm_activation(call: OpCall, convention: Convention) -> OpArith:
    """``_addmm_activation(bias, m1, m2)``: addmm's MACs plus one activation op per output element."""
    m1, m2 = call.args[1], call.args[2]
    out = _first_out_numel(call)
    macs = m1.shape[0] * m1.shape[1] * m2.shape[1] + (out if convention.bias_macs else 0)
    return OpArith(macs=macs, elementwise_flops=out)
