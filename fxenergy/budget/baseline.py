"""The baseline file: the last accepted predictions (totals and per-layer energy) per budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fxenergy._files import write_atomic
from fxenergy.budget.evaluate import _one_line
from fxenergy.budget.model import BASELINE_SCHEMA, BudgetOutcome
from fxenergy.errors import UserInputError


def load_baseline(path: Path) -> dict[str, Any] | None:
    """The baseline's per-budget entries (``{name: {"totals", "layers", ...}}``), None when absent."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UserInputError(f"{path.name}: not a readable baseline JSON file ({_one_line(e)}); "
                             "regenerate it with `fxenergy check --update-baseline`") from None
    if not isinstance(data, dict) or data.get("schema") != BASELINE_SCHEMA or not isinstance(data.get("budgets"), dict):
        raise UserInputError(f"{path.name}: schema: expected {BASELINE_SCHEMA!r}; regenerate it with "
                             "`fxenergy check --update-baseline`")
    for name, entry in data["budgets"].items():
        ok = (isinstance(entry, dict) and isinstance(entry.get("layers"), dict)
              and isinstance(entry.get("totals"), dict) and isinstance(entry["totals"].get("energy_j"), (int, float)))
        if not ok:
            raise UserInputError(f"{path.name}: budgets.{name}: needs totals.energy_j and layers; regenerate it "
                                 "with `fxenergy check --update-baseline`")
    return data["budgets"]


def baseline_dict(outcomes: list[BudgetOutcome]) -> dict[str, Any]:
    """The baseline document for ``outcomes``: per budget, what was predicted, totals and layer energies."""
    budgets = {}
    for o in outcomes:
        b = o.budget
        budgets[b.name] = {
            "model": b.model,
            "mode": b.mode,
            "inputs": o.info.get("inputs"),
            "hardware": o.info.get("hardware"),
            "predictor": o.info.get("predictor"),
            "parameter_set": o.info.get("parameter_set"),
            "totals": o.totals,
            "layers": o.layers,
        }
    return {"schema": BASELINE_SCHEMA, "budgets": budgets}


def write_baseline(path: Path, outcomes: list[BudgetOutcome]) -> None:
    """Write the baseline JSON atomically (temporary file + rename), with sorted keys."""
    write_atomic(path, json.dumps(baseline_dict(outcomes), indent=2, sort_keys=True) + "\n")
