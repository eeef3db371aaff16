"""Op families: which hardware-efficiency curve an ATen op follows, and what work it is measured in.

Compute-bound families (``basis == "flops"``) are measured in FLOPs; memory-bound ones in bytes
moved, since a memory-bound op's efficiency follows bytes, not FLOPs (see DESIGN.md). Used by the
duration pass and by the HEF parameter files (:mod:`fxenergy.predictors.hef_law`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from fxenergy.errors import UserInputError

__all__ = ["BASES", "Family", "FAMILIES", "family_of", "work_for"]

BASES = ("flops", "bytes")


@dataclass(frozen=True, slots=True)
class Family:
    """An op family: one HEF curve. ``basis`` is its default work measure; ``ops`` the ATen ops in it."""

    name: str
    basis: str
    ops: tuple[str, ...]
    doc: str


_FAMILY_LIST = (
    Family("matmul", "flops", ("addmm", "mm", "matmul", "linear", "addmv", "mv", "dot", "_addmm_activation"),
           "projections, linear layers, LSTM gates"),
    Family("bmm", "flops", ("bmm", "baddbmm", "_scaled_dot_product_flash_attention",
                            "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
                            "scaled_dot_product_attention"),
           "batched matmul: attention scores Q.K^T and attention output A.V (an SDPA node is one bmm node)"),
    Family("attention_score", "flops", (), "Q.K^T alone (seed 004's Theta_score); no ATen op maps here"),
    Family("attention_output", "flops", (), "A.V alone (seed 004's Theta_mul); no ATen op maps here"),
    Family("convolution", "flops", ("convolution", "_convolution", "conv1d", "conv2d", "conv3d",
                                    "cudnn_convolution", "conv_transpose2d"), "convolutions"),
    Family("normalization", "bytes", ("native_batch_norm", "_native_batch_norm_legit",
                                      "_native_batch_norm_legit_functional", "_native_batch_norm_legit_no_training",
                                      "cudnn_batch_norm", "native_layer_norm", "native_group_norm"),
           "batch/layer/group norm"),
    Family("softmax", "bytes", ("_softmax", "_log_softmax", "_safe_softmax"), "softmax, log-softmax"),
    Family("reduction", "bytes", ("sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "prod", "var",
                                  "var_mean", "std", "std_mean", "norm", "linalg_vector_norm", "logsumexp"),
           "reductions (AdaptiveAvgPool2d to 1x1 lowers to mean)"),
    Family("pooling", "bytes", ("avg_pool2d", "max_pool2d_with_indices", "max_pool2d", "avg_pool1d", "max_pool1d",
                                "avg_pool3d", "max_pool3d_with_indices", "_adaptive_avg_pool2d", "adaptive_max_pool2d",
                                "_adaptive_avg_pool3d", "adaptive_avg_pool1d"), "pooling windows"),
    Family("embedding", "bytes", ("embedding", "index_select", "gather", "index", "scatter", "cat", "stack", "clone",
                                  "_to_copy", "copy", "copy_", "constant_pad_nd", "repeat", "slice_scatter"),
           "gathers and pure data movement"),
    Family("elementwise", "bytes", (), "every other op: pointwise arithmetic, activations, dropout (catch-all)"),
)
FAMILIES: Mapping[str, Family] = MappingProxyType({f.name: f for f in _FAMILY_LIST})
"""Family name -> :class:`Family`. Compute-bound (``flops``) families: matmul, bmm, attention_score,
attention_output, convolution; the rest are memory-bound (``bytes``)."""
_OP_FAMILY = {op: f.name for f in _FAMILY_LIST for op in f.ops}


def family_of(op: str) -> str:
    """The family of an ATen op name as :class:`fxenergy.Row` ``.op`` spells it (``"addmm"``, ...).

    NB: ops not listed in any family fall into the catch-all ``"elementwise"``.
    """
    return _OP_FAMILY.get(op.split(".", 1)[0], "elementwise")


def work_for(basis: str, *, flops: float, elementwise_flops: float, bytes_moved: float) -> float:
    """A node's work on ``basis``: FLOPs (contraction FLOPs if any, else elementwise) or bytes moved."""
    if basis == "flops":
        return flops or elementwise_flops
    if basis == "bytes":
        return bytes_moved
    raise UserInputError(f"unknown HEF basis {basis!r}; use one of {', '.join(BASES)}")
