"""Energy backends. Importing this package registers every bundled backend by name."""

from fxenergy.predictors import baselines, cache, hef, layerwise, learned, physical, power  # noqa: F401 - registration on import
from fxenergy.predictors.base import PREDICTORS, EnergyEstimate, make_predictor, register_predictor

__all__ = ["PREDICTORS", "EnergyEstimate", "make_predictor", "register_predictor"]
