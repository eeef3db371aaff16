"""Budget data types and constants: a budget, a parsed configuration, an evaluated outcome."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fxenergy.options import DEFAULT_HARDWARE, DTYPES, MODES, OPTIMIZERS  # noqa: F401 - re-exported

CONFIG_FILES = ("fxenergy.toml", "pyproject.toml")  # searched in this order
DEFAULT_BASELINE = "fxenergy-baseline.json"
BASELINE_SCHEMA = "fxenergy.baseline/1"
_TOP_KEYS = ("baseline", "budget")
_REQUIRED = ("name", "model", "max_energy_j")


@dataclass(frozen=True, slots=True)
class Budget:
    """One ``[[budget]]`` entry. Limits: joules per run, FLOPs (2 × MACs), percent of the baseline."""

    name: str
    model: str
    max_energy_j: float
    batch_size: int = 1
    seq_len: int = 128
    image_size: int | None = None
    dtype: str = "float32"
    hardware: str = DEFAULT_HARDWARE
    predictor: str | None = None
    params: str | None = None
    force: bool = False  #: use a parameter set fitted for another device (as ``report --force``)
    mode: str = "inference"
    optimizer: str = "adamw"
    max_flops: float | None = None
    max_increase_pct: float | None = None
    key: str = ""  #: where it was defined, e.g. "tool.fxenergy.budget[0]" (for error messages)


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    """A parsed configuration file: where it is, its baseline path and its budgets."""

    path: Path
    prefix: str  #: "tool.fxenergy" for pyproject.toml, "" for fxenergy.toml
    baseline: Path
    budgets: tuple[Budget, ...]

    def where(self, key: str) -> str:
        """``"pyproject.toml: tool.fxenergy.<key>"`` — the start of an error line."""
        return f"{self.path.name}: {self.prefix + '.' if self.prefix else ''}{key}"


@dataclass(frozen=True, slots=True)
class LayerDiff:
    """Energy (J) of one layer now and in the baseline (0 where the layer is new or gone)."""

    layer: str
    energy_j: float
    baseline_energy_j: float

    @property
    def diff_j(self) -> float:
        return self.energy_j - self.baseline_energy_j


@dataclass(frozen=True, slots=True)
class BudgetOutcome:
    """A budget evaluated: predicted totals, the verdict, and per-layer energies (J)."""

    budget: Budget
    energy_j: float
    flops: int
    macs: int
    info: dict[str, Any]
    layers: dict[str, float]  #: layer key → energy (J), in graph order
    totals: dict[str, Any]
    baseline_energy_j: float | None = None
    baseline_layers: dict[str, float] | None = None
    failures: tuple[str, ...] = field(default=())
    layer_types: dict[str, str] = field(default_factory=dict)  #: layer key → module type (display only)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def headroom_pct(self) -> float:
        """Percent of the energy limit left (negative when over)."""
        return 100.0 * (self.budget.max_energy_j - self.energy_j) / self.budget.max_energy_j

    @property
    def increase_pct(self) -> float | None:
        """Energy change against the baseline, percent of the baseline (None without a baseline)."""
        if self.baseline_energy_j is None:
            return None
        if self.baseline_energy_j == 0:
            return 0.0 if self.energy_j == 0 else math.inf
        return 100.0 * (self.energy_j - self.baseline_energy_j) / self.baseline_energy_j

    def layer_diffs(self, top: int = 5) -> list[LayerDiff]:
        """The ``top`` layers that grew most against the baseline (or, without one, the largest)."""
        base = self.baseline_layers or {}
        keys = list(dict.fromkeys([*self.layers, *base]))
        diffs = [LayerDiff(k, self.layers.get(k, 0.0), base.get(k, 0.0)) for k in keys]
        diffs = [d for d in diffs if d.diff_j > 0]
        diffs.sort(key=lambda d: (-d.diff_j, d.layer))
        return diffs[:top]
