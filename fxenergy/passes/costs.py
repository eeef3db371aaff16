"""Cost pass: MACs, FLOPs and bytes moved for every node, read from the op registry.

Which formula and byte rule each ATen op gets, and the MAC/FLOP and byte conventions, live in one
table: :mod:`fxenergy.passes.ops` (its docstring states the conventions, including the seed-000
ReLU rule). The formulas themselves are in :mod:`fxenergy.passes.formulas`.

An op with no formula is never counted as zero: the node lists it in ``NodeCost.unmodeled``, and
its bytes are still counted (the default rule). A free op (a view) moves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fxenergy.passes.formulas import CONVENTIONS, Convention, OpArith, default_bytes, get_convention
from fxenergy.passes.ops import lookup, op_info, register_cost, register_free
from fxenergy.records import COST, TRACE, NodeCost, OpCall, get_record, put_record

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


def op_arith(call: OpCall, convention: Convention) -> OpArith | None:
    """Arithmetic of one call, or ``None`` when the op has no formula (unmodeled)."""
    e = op_info(call.op)
    if e is None:
        return None
    return OpArith() if e.cost is None else e.cost(call, convention)


def op_bytes(call: OpCall) -> tuple[int, int, int]:
    """``(bytes_read, bytes_written, param_bytes_read)`` of one call; free ops move nothing."""
    e = op_info(call.op)
    return default_bytes(call) if e is None else e.bytes_rule(call)


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
