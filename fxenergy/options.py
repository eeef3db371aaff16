"""Option names shared by the CLI and the modules that act on them, importable without torch.

The CLI builds its parser from these tuples so that ``fxenergy --help`` never imports torch; the
modules that implement each option check against the same tuples (a test asserts they agree with
the registries they mirror, e.g. :data:`fxenergy.passes.costs.CONVENTIONS`).
"""

from __future__ import annotations

__all__ = ["MODES", "OPTIMIZERS", "METHODS", "GROUP_BY", "FORMATS", "CONVENTIONS", "DTYPES", "DEFAULT_HARDWARE"]

MODES = ("inference", "training")
# "sgd" is torch.optim.SGD's defaults (no momentum: one in-place add per parameter), what `fxenergy measure` runs
# and what the A30 training rows of gpu-operators-nicolai measured; "sgd-momentum" is SGD with momentum 0.9
OPTIMIZERS = ("adamw", "sgd", "sgd-momentum")
METHODS = ("auto", "symbolic_trace", "record", "export")
GROUP_BY = ("layer", "module", "op", "phase", "node")
FORMATS = ("table", "json", "csv", "markdown", "html")
CONVENTIONS = ("default", "seed000")
DTYPES = ("float32", "float16", "bfloat16")
DEFAULT_HARDWARE = "a100-80gb-pcie"  # the device seed 004's data and our fitted HEF curves describe
