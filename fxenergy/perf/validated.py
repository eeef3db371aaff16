"""Validated errors read from shipped JSON without importing torch (``fxenergy hardware show`` must start
without it): the learned GPU model's per device, and the CPU duration model's (``cpu_latency_error``).

The JSON's ``params.validated`` block holds ``devices`` (GPUs the model was validated on: each held out of
its own fit, leave-one-GPU-out on the kernel data or leave-one-model-out on the operator logs) and
``default`` (what to expect on a GPU outside the data: the mean of those errors), each as
``{"error_pct", "basis"}``; ``error_pct`` is a time (duration) error in %.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["expected_error", "device_error", "lookup", "CPU_LATENCY_FILE", "cpu_latency_error"]

_PARAMS = Path(__file__).resolve().parents[1] / "predictors" / "params" / "learned-gpu.json"
CPU_LATENCY_FILE = _PARAMS.with_name("cpu-latency-validated.json")
"""The errors of the last ``benchmarks/cpu_latency.py --write-validated`` run and the history of judged runs
(``calibrated_runs``): the CPU time error stated where no energy validation applies, for the calibrated
(``calibrated``) and the spec-sheet (``spec_sheet``) duration models (:data:`TYPICAL_MIN_RUNS`)."""


@lru_cache(maxsize=1)
def _cpu_latency() -> dict:
    """:data:`CPU_LATENCY_FILE` read once per process ({} without it): every CPU prediction states it."""
    return json.loads(CPU_LATENCY_FILE.read_text()) if CPU_LATENCY_FILE.is_file() else {}


def cpu_latency_error(kind: str, profile_name: str) -> dict[str, Any] | None:
    """The expected-error record (``EnergyEstimate.expected_error``: ``pct``, ``quantity``, ``basis``, ``energy``) of
    CPU durations of ``kind`` (``"calibrated"`` or ``"spec_sheet"``) from :data:`CPU_LATENCY_FILE`, None without it.
    It is a *time* error measured on one machine; energy on top rests on the profile's power figures."""
    data = _cpu_latency()
    row = data.get(kind)
    if not isinstance(row, Mapping):
        return None
    what = "after `fxenergy calibrate --quick`" if kind == "calibrated" else "from the spec sheet, uncalibrated"
    medians = [float(r[_MEDIAN_KEY[kind]]) for r in _judged_runs(data, kind)]
    typical = len(medians) >= TYPICAL_MIN_RUNS
    pct = round(statistics.median(medians), 1) if typical else float(row["median_pct"])
    stated = (f"the median of {len(medians)} judged runs' median APEs, {pct:g}%; the last run's: " if typical else "")
    return {"pct": pct, "quantity": "time",
            "basis": f"benchmarks/cpu_latency.py on {data['measured_on']} ({data['cases']} cases, {data['models']} "
                     f"models, {what}, {data['date']}): {stated}median APE {row['median_pct']}%, mean "
                     f"{row['mean_pct']}%, worst {row['worst_pct']}%{_run_spread(data, kind)}; on another CPU "
                     f"than that one ({profile_name} here) it may differ",
            "energy": "energy not validated here: it adds the profile's power figures (TDP, idle) to this time"}


TYPICAL_MIN_RUNS = 3
"""From this many judged runs on, the stated CPU band is the median of their median APEs, not the last run's: on a
machine whose speed moves between a calibration and later runs (levels x0.93-x1.36 over sessions 10-13), one run's
median is one draw, and the last draw is no more likely than another (session 14)."""


_MEDIAN_KEY = {"calibrated": "median_pct", "spec_sheet": "spec_sheet_median_pct"}
"""Where a ``calibrated_runs`` entry keeps the median APE (%) of each kind of durations."""


def _judged_runs(data: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    """The judged runs kept in ``calibrated_runs`` that hold a median APE for ``kind`` of durations, oldest first."""
    key = _MEDIAN_KEY[kind]
    return [r for r in data.get("calibrated_runs", []) if isinstance(r, Mapping) and key in r]


def _run_spread(data: Mapping[str, Any], kind: str) -> str:
    """How the judged runs kept in the file's ``calibrated_runs`` spread (``benchmarks/cpu_latency.py`` keeps one entry
    per ``--write-validated`` run): the same benchmark on the same kind of machine at other times, for the ``kind``
    of durations (``"calibrated"`` or ``"spec_sheet"``). '' under 2 runs."""
    runs = _judged_runs(data, kind)
    if len(runs) < 2:
        return ""
    med = [float(r[_MEDIAN_KEY[kind]]) for r in runs]
    lvl = [float(r["level"]) for r in runs if "level" in r and kind == "calibrated"]
    spread = f"; over {len(runs)} judged runs ({runs[0].get('date', '?')} to {runs[-1].get('date', '?')}, each with " \
             f"the code of its day) the median APE ranged {min(med):g}-{max(med):g}%"
    if lvl:
        spread += f", the run's level (measured / predicted) x{min(lvl):.2f}-x{max(lvl):.2f}: this machine's speed " \
                  "moves between a calibration and later runs"
    return spread


@lru_cache(maxsize=1)
def _validated() -> dict:
    return json.loads(_PARAMS.read_text())["params"].get("validated", {})


def lookup(validated: Mapping[str, Any], device: str, *, default: bool = True) -> tuple[float, str] | None:
    """``(time error in %, what it was validated on)`` for ``device`` from a ``validated`` block: the device's
    own figure, else (``default``) the figure for a GPU outside the data; None when there is neither."""
    v = validated.get("devices", {}).get(device) or (validated.get("default") if default else None)
    if not v:
        return None
    return float(v.get("error_pct", float("nan"))), str(v.get("basis", "not validated"))


def expected_error(device: str) -> tuple[float, str]:
    """``(expected time error in %, what it was validated on)``: the device's own figure, or the default."""
    return lookup(_validated(), device) or (float("nan"), "not validated")


def device_error(device: str) -> tuple[float, str] | None:
    """The time error validated on ``device`` itself (held out of the fit), or None."""
    return lookup(_validated(), device, default=False)
