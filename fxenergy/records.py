"""The frozen records fxenergy stores under ``node.meta["fxenergy"]``, and their key names.

Each pass adds exactly one record to each node it touches, under its own key, and never replaces a
record another pass wrote. ``node.meta["fxenergy"]`` is a plain dict ``{key: record}``.

Units are part of the field names: ``*_bytes`` are bytes, ``*_s`` seconds, ``*_j`` joules.
MAC/FLOP convention: ``macs`` counts multiply-accumulates of contraction ops (convolutions, matrix
products, attention) and ``flops = 2 * macs``; arithmetic of all other ops (pointwise, normalisation,
softmax, pooling, reductions) is counted separately as ``elementwise_flops``. See
:mod:`fxenergy.passes.costs` for the conventions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch

__all__ = [
    "META_KEY",
    "TRACE",
    "COST",
    "WORKING_SET",
    "DURATION",
    "ENERGY",
    "TensorSpec",
    "OpCall",
    "NodeTrace",
    "NodeCost",
    "NodeWorkingSet",
    "NodeDuration",
    "NodeEnergy",
    "get_record",
    "node_dtype",
    "put_record",
]

META_KEY = "fxenergy"

# Record keys, one per pass. The only place these strings are spelled.
TRACE = "trace"  # capture: shapes, dtypes, module path, dispatched ATen calls
COST = "cost"  # passes.costs: MACs, FLOPs, bytes
WORKING_SET = "working_set"  # passes.working_sets: seed 003 inter-layer working set
DURATION = "duration"  # passes.durations (hardware-dependent)
ENERGY = "energy"  # predictors


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Shape and dtype of one tensor: all that cost formulas may look at."""

    shape: tuple[int, ...]
    dtype: torch.dtype

    @classmethod
    def of(cls, t: torch.Tensor) -> TensorSpec:
        return cls(tuple(int(s) for s in t.shape), t.dtype)

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


@dataclass(frozen=True, slots=True)
class OpCall:
    """One ATen operator call seen at dispatch while a node ran on meta tensors.

    ``args``/``kwargs``/``out`` mirror the call with every tensor replaced by a :class:`TensorSpec`.
    ``param_arg_indices`` lists positions in ``args`` that were model parameters or buffers.
    """

    op: torch._ops.OpOverload
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    out: Any
    param_arg_indices: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        """Short op name, e.g. ``"addmm"`` or ``"convolution"``."""
        return self.op._schema.name.split("::", 1)[-1]


@dataclass(frozen=True, slots=True)
class NodeTrace:
    """What capture learned about one node: where it lives and what it dispatched.

    ``phase`` is ``"forward"``, ``"backward"`` or ``"optimizer"``. ``module_path`` is the dotted path
    of the innermost ``nn.Module`` the node ran in (``""`` for the root), ``module_type`` its class name.
    """

    module_path: str
    module_type: str
    phase: str
    calls: tuple[OpCall, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True, slots=True)
class NodeCost:
    """Arithmetic and memory traffic of one node (sums over its op calls).

    ``bytes_read`` includes ``param_bytes_read`` (weights and buffers read by the node).
    ``unmodeled`` names op calls that have no cost formula: their FLOPs are unknown (not zero) and
    their bytes are still counted from the tensors they touch.
    """

    macs: int
    flops: int
    elementwise_flops: int
    bytes_read: int
    bytes_written: int
    param_bytes_read: int
    op: str
    unmodeled: tuple[str, ...] = ()

    @property
    def free(self) -> bool:
        """True when the node does no arithmetic and moves no bytes (views, getitem, asserts)."""
        return not (self.macs or self.elementwise_flops or self.bytes_read or self.bytes_written or self.unmodeled)


@dataclass(frozen=True, slots=True)
class NodeWorkingSet:
    """Seed 003 inter-layer working set ``t_l`` of one node: activations in plus activations out."""

    activation_in_bytes: int
    activation_out_bytes: int

    @property
    def inter_layer_bytes(self) -> int:
        return self.activation_in_bytes + self.activation_out_bytes


@dataclass(frozen=True, slots=True)
class NodeDuration:
    """Predicted execution time of one node on one hardware profile."""

    duration_s: float
    model: str  # "roofline" | "hef" | ...
    family: str  # op family used for the efficiency curve


@dataclass(frozen=True, slots=True)
class NodeEnergy:
    """Predicted energy of one node by one predictor backend."""

    energy_j: float
    predictor: str


def get_record(node: torch.fx.Node, key: str, *, required_by: str | None = None) -> Any:
    """Return the record ``key`` of ``node``; with ``required_by``, a missing record is an error."""
    rec = node.meta.get(META_KEY, {}).get(key)
    if rec is None and required_by is not None:
        from fxenergy.errors import AnalysisError

        raise AnalysisError(
            f"{required_by} needs the '{key}' record on node {node.name!r}, which no earlier pass wrote; "
            f"run the pass that produces '{key}' first"
        )
    return rec


def put_record(node: torch.fx.Node, key: str, record: Any) -> None:
    """Store ``record`` under ``key``; a second write to the same key is a bug and raises."""
    bucket = node.meta.setdefault(META_KEY, {})
    if isinstance(bucket, MappingProxyType):
        raise TypeError(f"node {node.name!r} belongs to an immutable Analysis (its records are frozen); write "
                        "per-prediction records on fxenergy.analysis.GraphView(gm) instead")
    if key in bucket:
        raise RuntimeError(f"record {key!r} already set on node {node.name!r}; passes must not overwrite")
    bucket[key] = record


def node_dtype(trace: NodeTrace) -> torch.dtype:
    """The floating dtype a node computes in: that of its first floating tensor argument."""
    from torch.utils import _pytree as pytree

    for call in trace.calls:
        for x in pytree.tree_leaves((call.args, call.out)):
            if isinstance(x, TensorSpec) and x.dtype.is_floating_point:
                return x.dtype
    return torch.float32
