"""fxenergy: predict the energy a PyTorch model will use before it runs, node by node of its FX graph.

Importing the package is cheap (no torch): ``annotate``, ``analyse``, ``Result`` and ``Row`` load
their modules on first use, so ``fxenergy --help`` and ``fxenergy models`` start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fxenergy.errors import CaptureError, FxEnergyError, UserInputError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from fxenergy.analysis import Analysis, analyse
    from fxenergy.api import annotate
    from fxenergy.result import Result, Row
    from fxenergy.training.run import estimate_training

__all__ = ["annotate", "estimate_training", "analyse", "Analysis", "Result", "Row", "FxEnergyError", "UserInputError", "CaptureError",
           "__version__"]

_LAZY = {"annotate": "fxenergy.api", "analyse": "fxenergy.analysis", "Analysis": "fxenergy.analysis",
         "Result": "fxenergy.result", "Row": "fxenergy.result",
         "estimate_training": "fxenergy.training.run"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fxenergy' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
