"""fxenergy: predict the energy a PyTorch model will use before it runs, node by node of its FX graph."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fxenergy.errors import CaptureError, FxEnergyError, UserInputError

if TYPE_CHECKING:
    from fxenergy.api import annotate
    from fxenergy.result import Result, Row
    from fxenergy.training.run import estimate_training

__version__ = "0.1.0"

__all__ = ["annotate", "estimate_training", "Result", "Row", "FxEnergyError", "UserInputError", "CaptureError", "__version__"]

# annotate, Result and Row pull in torch: load them on first use, so that `import fxenergy.hardware`
# and `fxenergy hardware list` stay torch-free.
_LAZY = {"annotate": "fxenergy.api", "Result": "fxenergy.result", "Row": "fxenergy.result",
         "estimate_training": "fxenergy.training.run"}


def __getattr__(name: str) -> Any:
    if (module := _LAZY.get(name)) is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
