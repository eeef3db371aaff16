"""The layer kinds ``fxenergy collect`` samples (no torch import: the CLI parser reads them)."""

from __future__ import annotations

__all__ = ["ACTIVATIONS", "KINDS"]

ACTIVATIONS = ("relu", "sigmoid", "tanh", "softmax")
KINDS = ("conv2d", "grouped-conv2d", "maxpool2d", "linear", *ACTIVATIONS, "batchnorm2d", "layernorm", "attention",
         "embedding")
