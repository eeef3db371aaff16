"""Op families: the hardware-efficiency curves, and what work each is measured in.

Compute-bound families (``basis == "flops"``) are measured in FLOPs; memory-bound ones in bytes
moved, since a memory-bound op's efficiency follows bytes, not FLOPs (see DESIGN.md). Used by the
duration pass and by the HEF parameter files (:mod:`fxenergy.predictors.hef_law`). Which ATen op
follows which family is a column of the op registry (:func:`fxenergy.passes.ops.family_of`). This
module imports no torch (the HEF parameter files are read without it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from fxenergy.errors import UserInputError

__all__ = ["BASES", "Family", "FAMILIES", "work_for"]

BASES = ("flops", "bytes")


@dataclass(frozen=True, slots=True)
class Family:
    """An op family: one HEF curve. ``basis`` is its default work measure (its ops: the op registry)."""

    name: str
    basis: str
    doc: str


_FAMILY_LIST = (
    Family("matmul", "flops", "projections, linear layers, LSTM gates"),
    Family("bmm", "flops", "batched matmul: attention scores Q.K^T and attention output A.V (an SDPA node is one bmm node)"),
    Family("attention_score", "flops", "Q.K^T alone (seed 004's Theta_score); no ATen op maps here"),
    Family("attention_output", "flops", "A.V alone (seed 004's Theta_mul); no ATen op maps here"),
    Family("convolution", "flops", "convolutions"),
    Family("normalization", "bytes", "batch/layer/group norm"),
    Family("softmax", "bytes", "softmax, log-softmax"),
    Family("reduction", "bytes", "reductions (AdaptiveAvgPool2d to 1x1 lowers to mean)"),
    Family("pooling", "bytes", "pooling windows"),
    Family("embedding", "bytes", "gathers and pure data movement"),
    Family("elementwise", "bytes", "every other op: pointwise arithmetic, activations, dropout (catch-all)"),
)
FAMILIES: Mapping[str, Family] = MappingProxyType({f.name: f for f in _FAMILY_LIST})
"""Family name -> :class:`Family`. Compute-bound (``flops``) families: matmul, bmm, attention_score,
attention_output, convolution; the rest are memory-bound (``bytes``)."""


def work_for(basis: str, *, flops: float, elementwise_flops: float, bytes_moved: float) -> float:
    """A node's work on ``basis``: FLOPs (contraction FLOPs if any, else elementwise) or bytes moved."""
    if basis == "flops":
        return flops or elementwise_flops
    if basis == "bytes":
        return bytes_moved
    raise UserInputError(f"unknown HEF basis {basis!r}; use one of {', '.join(BASES)}")
