"""Energy budgets: configuration (``[tool.fxenergy]`` or ``fxenergy.toml``), evaluation and baselines.

A budget names a model and an example input and caps its predicted energy (J per forward, or per
training step), optionally its FLOPs (``flops`` = 2 × MACs; elementwise FLOPs not included) and
its growth against a recorded baseline (percent of the baseline energy)::

    # pyproject.toml                              # fxenergy.toml: the same keys, without "tool.fxenergy"
    [tool.fxenergy]
    baseline = "fxenergy-baseline.json"           # optional; this is the default
    [[tool.fxenergy.budget]]
    name = "classifier"
    model = "models/net.py:build"                 # or "resnet18", or "package.module:callable"
    batch_size = 8
    max_energy_j = 0.5
    max_increase_pct = 5

Every configuration error is one line naming the file and the key, e.g.
``pyproject.toml: tool.fxenergy.budget[1].max_energy_j: must be a positive number, got -3``.
Budgets are indexed from 0, in file order. Relative paths (model files, the baseline, hardware or
parameter JSON files) are relative to the configuration file's directory.

The package is split by concern: :mod:`~fxenergy.budget.model` (data types, constants),
:mod:`~fxenergy.budget.config` (reading and validating), :mod:`~fxenergy.budget.evaluate`
(prediction against the limits) and :mod:`~fxenergy.budget.baseline` (the baseline file).
"""

from __future__ import annotations

from fxenergy.budget.baseline import baseline_dict, load_baseline, write_baseline
from fxenergy.budget.config import find_config, load_config, parse_config
from fxenergy.budget.evaluate import evaluate, evaluate_all
from fxenergy.budget.model import (
    BASELINE_SCHEMA,
    CONFIG_FILES,
    DEFAULT_BASELINE,
    DEFAULT_HARDWARE,
    Budget,
    BudgetConfig,
    BudgetOutcome,
    LayerDiff,
)

__all__ = [
    "Budget",
    "BudgetConfig",
    "BudgetOutcome",
    "LayerDiff",
    "CONFIG_FILES",
    "DEFAULT_BASELINE",
    "DEFAULT_HARDWARE",
    "BASELINE_SCHEMA",
    "find_config",
    "load_config",
    "parse_config",
    "evaluate",
    "evaluate_all",
    "load_baseline",
    "baseline_dict",
    "write_baseline",
]
