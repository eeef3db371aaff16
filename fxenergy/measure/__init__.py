"""Measuring what fxenergy predicts: energy meters, measurement windows, ``fxenergy measure`` and
``fxenergy collect``.

* :mod:`fxenergy.measure.meters`: RAPL (powercap), NVML and wall-clock meters behind one interface.
* :mod:`fxenergy.measure.window`: repeat a callable in measurement windows (seed 000 App. A.1).
* :mod:`fxenergy.measure.model`: run a real model and set its measured time (and energy) per layer
  beside fxenergy's prediction (``fxenergy measure``).
* :mod:`fxenergy.measure.collect`: seed 000's data collection (``fxenergy collect``), a CSV that
  ``fxenergy fit layerwise`` reads.
"""

from fxenergy.measure.meters import (
    Meter,
    MeterError,
    MeterUnavailable,
    NvmlMeter,
    RaplMeter,
    WallClockMeter,
    describe,
    open_meter,
    rapl_delta_uj,
)
from fxenergy.measure.window import Measurement, MeasurementFailed, Window, measure_calls

__all__ = ["Meter", "MeterError", "MeterUnavailable", "NvmlMeter", "RaplMeter", "WallClockMeter", "describe",
           "open_meter", "rapl_delta_uj", "Measurement", "MeasurementFailed", "Window", "measure_calls"]
