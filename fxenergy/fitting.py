"""``fxenergy fit``: fit a backend on the user's own measurement table (CSV) and write its JSON artifact.

Table layouts (one header line, one measurement per row):

* ``layerwise`` — ``layer_type`` (Conv2d, Linear, ReLU, …), ``energy_j`` (joules per forward pass
  of that layer) and the layer's features as seed 000 names them (``batch_size``, ``image_size``,
  ``kernel_size``, ``in_channels``, ``out_channels``, ``stride``, ``padding``, ``input_size``,
  ``output_size``, …; ``macs`` is computed when absent).
* ``cache`` — one run per row: ``energy_j`` and the :class:`~fxenergy.predictors.cache.Workload`
  fields (``param_bytes``, ``grad_bytes``, ``activation_bytes``, ``inter_layer_bytes`` as a
  ``;``-separated list of t_l per layer, ``batch_bytes``, ``flops_forward``, ``flops_backward``, and
  optionally ``mode``, ``passes``, ``epochs``, ``train_batches``, ``test_batches``, ``runs``,
  ``dataset_bytes``). The hardware profile places the working sets.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path
from typing import Any

from fxenergy.errors import UserInputError
from fxenergy.resolve import resolve_hardware

__all__ = ["FITTABLE", "read_table", "fit_backend"]

FITTABLE = ("layerwise", "cache")


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def read_table(path: str | os.PathLike[str], target: str = "energy_j") -> list[dict[str, Any]]:
    """Rows of a CSV file, numbers as floats; a missing or empty file, or a ``target`` column that is
    absent or has empty cells (e.g. energy_j of a time-only collection), is a one-line error."""
    path = Path(path).expanduser()
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = [{k: _number(v) for k, v in r.items() if k} for r in csv.DictReader(f)]
    except OSError as e:
        raise UserInputError(f"cannot read measurement table {path}: {e.strerror}") from None
    if not rows:
        raise UserInputError(f"measurement table {path} has no rows")
    unit = {"energy_j": "joules", "duration_s": "seconds"}.get(target, target)
    if target not in rows[0]:
        raise UserInputError(f"measurement table {path}: needs an {target} column ({unit})")
    if empty := sum(1 for r in rows if r[target] == ""):
        hint = (" (no energy meter was readable where it was measured: fit --target duration_s)"
                if target == "energy_j" and "duration_s" in rows[0] else "")
        raise UserInputError(f"measurement table {path}: {empty} of {len(rows)} rows have no {target}{hint}")
    return rows


def _workload_rows(rows: list[dict[str, Any]], origin: str) -> list[dict[str, Any]]:
    from fxenergy.predictors.cache import Workload

    names = {f.name for f in dataclasses.fields(Workload)}
    out = []
    for i, r in enumerate(rows, start=2):  # line 1 is the header
        kw = {k: v for k, v in r.items() if k in names and v != ""}
        t = kw.get("inter_layer_bytes")
        kw["inter_layer_bytes"] = tuple(int(float(x)) for x in str(t).split(";")) if t not in (None, "") else ()
        for k in ("param_bytes", "grad_bytes", "activation_bytes", "batch_bytes", "passes", "epochs",
                  "train_batches", "test_batches", "runs", "dataset_bytes"):
            if k in kw:
                kw[k] = int(kw[k])
        try:
            out.append({"workload": Workload(**kw), "energy_j": float(r["energy_j"])})
        except (TypeError, ValueError) as e:
            raise UserInputError(f"measurement table {origin}, line {i}: {e}") from None
    return out


def fit_backend(backend: str, table: str | os.PathLike[str], *, hardware: str, target: str = "energy_j") -> dict[str, Any]:
    """Fit ``backend`` on the CSV ``table`` for the profile ``hardware`` ("local": this machine); return
    its JSON artifact. ``target`` "duration_s" (layerwise only) fits seconds per pass instead of joules."""
    from fxenergy.predictors.base import PREDICTORS

    if backend not in FITTABLE:
        raise UserInputError(f"backend {backend!r} cannot be fitted from a table; choose one of: {', '.join(FITTABLE)}")
    if target != "energy_j" and backend != "layerwise":
        raise UserInputError(f"--target {target} applies to the layerwise backend only")
    profile, _ = resolve_hardware(hardware)  # the one resolver: names, files, local, calibrations
    if profile is None:
        raise UserInputError("fxenergy fit needs a hardware profile (--hardware NAME|FILE|local)")
    rows = read_table(table, target)
    fitted_on = f"{Path(table).name} ({len(rows)} rows)"
    cls: Any = PREDICTORS[backend]  # a fittable backend (fit/to_json)
    if backend == "cache":
        est = cls(hardware=profile.name, fitted_on=fitted_on).fit(_workload_rows(rows, str(table)))
    else:
        est = cls(hardware=profile.name, fitted_on=fitted_on, target=target).fit(rows)
    return est.to_json()
