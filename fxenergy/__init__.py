"""fxenergy: predict the energy a PyTorch model will use before it runs, node by node of its FX graph."""

from __future__ import annotations

__version__ = "0.1.0"

from fxenergy.api import annotate  # noqa: E402
from fxenergy.errors import CaptureError, FxEnergyError, UserInputError  # noqa: E402
from fxenergy.result import Result, Row  # noqa: E402
from fxenergy.training.run import estimate_training  # noqa: E402

__all__ = ["annotate", "estimate_training", "Result", "Row", "FxEnergyError", "UserInputError", "CaptureError", "__version__"]
