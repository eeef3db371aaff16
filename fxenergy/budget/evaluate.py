"""Evaluating budgets: build the model, predict its energy, compare with the limits and the baseline."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from fxenergy.budget.model import Budget, BudgetConfig, BudgetOutcome
from fxenergy.errors import FxEnergyError, UserInputError


# ------------------------------------------------------------------------------------ evaluation
@contextmanager
def _importable(directory: Path) -> Iterator[None]:
    """Let ``package.module:callable`` models resolve against the configuration's directory."""
    import importlib

    entry = str(directory.resolve())
    sys.path.insert(0, entry)
    importlib.invalidate_caches()  # the directory may have changed since a finder last listed it
    try:
        yield
    finally:
        with suppress(ValueError):  # the user's code may have removed it already
            sys.path.remove(entry)


def _model_spec(model: str, base_dir: Path) -> str:
    if ".py:" in model:
        file_part, _, attr = model.rpartition(":")
        return f"{(base_dir / file_part).resolve()}:{attr}"
    return model


def evaluate(budget: Budget, config: BudgetConfig, baseline: Mapping[str, Any] | None = None) -> BudgetOutcome:
    """Build the model, annotate it and compare with the limits (and ``baseline``'s entry, if any).

    A model that cannot be built or captured raises UserInputError naming the file and the key.
    """
    import torch

    from fxenergy.api import annotate
    from fxenergy.models import build_model

    base_dir = config.path.parent
    try:
        with _importable(base_dir):
            built = build_model(_model_spec(budget.model, base_dir), batch_size=budget.batch_size,
                                seq_len=budget.seq_len, image_size=budget.image_size, dtype=getattr(torch, budget.dtype))
    except FxEnergyError as e:
        raise UserInputError(f"{config.where(budget.key + '.model')}: {_one_line(e)}") from None
    try:
        result = annotate(built.model, built.args, example_kwargs=built.kwargs, mode=budget.mode,
                          optimizer=budget.optimizer, hardware=budget.hardware, predictor=budget.predictor,
                          params=budget.params, force=budget.force, name=budget.name)
    except FxEnergyError as e:
        raise UserInputError(f"{config.where(budget.key)} ({budget.name!r}): {_one_line(e)}") from None
    t = result.totals
    energy = _round(float(t.energy_j or 0.0))
    layers = {g.key: _round(g.totals.energy_j or 0.0) for g in result.group("layer")}
    totals = {"energy_j": _round(energy), "flops": t.flops, "macs": t.macs, "elementwise_flops": t.elementwise_flops,
              "bytes_moved": t.bytes_moved, "duration_s": _round(t.duration_s or 0.0)}
    entry = (baseline or {}).get(budget.name)
    outcome = BudgetOutcome(budget, energy, t.flops, t.macs, dict(result.info), layers, totals,
                            baseline_energy_j=entry["totals"]["energy_j"] if entry else None,
                            baseline_layers=dict(entry["layers"]) if entry else None,
                            layer_types={g.key: g.module_type for g in result.group("layer")})
    failures = []
    if energy > budget.max_energy_j:
        failures.append(f"energy {energy:.4g} J > limit {budget.max_energy_j:g} J")
    if budget.max_flops is not None and t.flops > budget.max_flops:
        failures.append(f"FLOPs {t.flops:.4g} > limit {budget.max_flops:.4g}")
    inc = outcome.increase_pct
    if budget.max_increase_pct is not None and inc is not None and inc > budget.max_increase_pct:
        failures.append(f"energy grew {inc:.1f}% > {budget.max_increase_pct:g}% over baseline")
    return _replace_outcome(outcome, failures=tuple(failures))


def _replace_outcome(o: BudgetOutcome, **changes: Any) -> BudgetOutcome:
    from dataclasses import replace

    return replace(o, **changes)


def evaluate_all(config: BudgetConfig, baseline: Mapping[str, Any] | None = None) -> list[BudgetOutcome]:
    return [evaluate(b, config, baseline) for b in config.budgets]


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def _round(x: float) -> float:
    """Nine significant digits: stable across platforms' last-ulp differences in sums."""
    return float(f"{x:.9g}")


# ------------------------------------------------------------------------------------ baseline
