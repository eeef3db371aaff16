"""Whole training runs: energy, time and carbon before training (offline) and from its first epochs (online).

* :func:`estimate_training`: the run-level estimate from the model's graph (steps × step cost,
  evaluation passes, overheads, carbon) — ``fxenergy train-estimate`` on the command line;
* :mod:`fxenergy.training.offline`: seed 002's offline power-based and epoch-energy-based kernel-ridge
  regressors, fitted on the del Rey runs and shipped as JSON;
* :mod:`fxenergy.training.online`: seed 002's online estimators (Eq. 1 and 2), a tracker for plain
  loops, Lightning / transformers callbacks and energy-aware early stopping;
* :mod:`fxenergy.training.carbon`: gCO2e = kWh × intensity × PUE from codecarbon's data.
"""

from __future__ import annotations

from typing import Any

from fxenergy.training.carbon import DEFAULT_PUE, carbon_intensity, grams_co2e

__all__ = ["estimate_training", "TrainingEstimate", "Overheads", "steps_per_epoch", "carbon_intensity",
           "grams_co2e", "DEFAULT_PUE"]

_LAZY = {"estimate_training", "TrainingEstimate", "Overheads", "steps_per_epoch"}  # these pull in torch


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from fxenergy.training import run

    return getattr(run, name)
