"""The calibration file (schema ``fxenergy.calibration/1``): the Calibration record, writing and reading it."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fxenergy._files import check_document, read_json, write_atomic
from fxenergy.calibrate.timing import Measurement
from fxenergy.errors import UserInputError
from fxenergy.hardware import HardwareProfile
from fxenergy.predictors.hef_law import HEFParameters

__all__ = ["SCHEMA", "ENERGY_SOURCES", "Calibration", "save_calibration", "load_calibration", "is_calibration_file",
           "load_cpu_perf"]

SCHEMA = "fxenergy.calibration/1"
ENERGY_SOURCES = ("rapl", "nvml", "profile")
_KEYS = ("schema", "profile", "hef", "measurements", "energy_source", "created", "fxenergy_version", "power", "notes",
         "cpu_perf", "threads", "skipped", "learned", "speed_trace")

# --------------------------------------------------------------------------------------------------
# the calibration


@dataclass(frozen=True, slots=True)
class Calibration:
    """What :func:`run_calibration` returns and :func:`save_calibration` writes."""

    profile: HardwareProfile
    params: HEFParameters
    measurements: tuple[Measurement, ...]
    energy_source: str
    created: str
    fxenergy_version: str
    power: tuple[Mapping[str, Any], ...] | None = None
    notes: tuple[str, ...] = ()
    cpu_perf: Any = None  # fxenergy.perf.cpu.CpuPerfParams (CPU calibrations), with package power figures
    cpu_power: Mapping[str, Any] | None = None  # {"idle_w", "core_w", "source"} where RAPL measured them
    threads: Mapping[str, Any] | None = None  # torch threads, cgroup CPU quota, affinity the run had
    skipped: tuple[str, ...] = ()  # what a quick calibration left out
    learned: Mapping[str, Any] | None = None  # GPU: the learned model's correction (fxenergy.calibrate.gpu)
    speed_trace: tuple[Mapping[str, float], ...] = ()  # CPU: speed canaries {"t_s", "gflops", "gbs"} through the run

    def to_dict(self) -> dict[str, Any]:
        cpu = None if self.cpu_perf is None else {**self.cpu_perf.to_dict(), "power": dict(self.cpu_power or {})}
        return {
            "schema": SCHEMA, "profile": self.profile.to_dict(), "hef": self.params.to_dict(),
            "measurements": [m.to_dict() for m in self.measurements], "energy_source": self.energy_source,
            "created": self.created, "fxenergy_version": self.fxenergy_version,
            "power": [dict(r) for r in self.power] if self.power is not None else None, "notes": list(self.notes),
            "cpu_perf": cpu, "threads": dict(self.threads) if self.threads else None, "skipped": list(self.skipped),
        } | ({"learned": dict(self.learned)} if self.learned else {}) \
            | ({"speed_trace": [dict(p) for p in self.speed_trace]} if self.speed_trace else {})



def save_calibration(cal: Calibration, path: str | os.PathLike[str]) -> Path:
    """Write ``cal`` as one JSON file, atomically (temp file in the same folder, then ``os.replace``)."""
    return write_atomic(path, json.dumps(cal.to_dict(), indent=1, ensure_ascii=False, default=_jsonable) + "\n")


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return dict(x)
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _read_json(path: Path) -> Any:
    return read_json(path, "calibration file")


def load_calibration(path: str | os.PathLike[str]) -> tuple[HardwareProfile, HEFParameters]:
    """The hardware profile and HEF parameter set of a file written by :func:`save_calibration`.

    Refuses, with a one-line :class:`~fxenergy.errors.UserInputError` naming the file and the key, an
    unknown schema, an unknown or missing key, or a profile or parameter set that does not validate.
    """
    path = Path(path).expanduser()
    data = _read_json(path)

    def fail(key: str, problem: str) -> UserInputError:
        return UserInputError(f"calibration file {path}: {key}: {problem}")

    check_document(data, f"calibration file {path}", schema=SCHEMA, allowed=_KEYS,
                   required=("profile", "hef", "energy_source"))
    if data["energy_source"] not in ENERGY_SOURCES:
        raise fail("energy_source", f"{data['energy_source']!r} is not one of {', '.join(ENERGY_SOURCES)}")
    profile = HardwareProfile.from_dict(data["profile"], origin=f"{path} (profile)")
    params = HEFParameters.from_dict(data["hef"], origin=f"{path} (hef)")
    if params.device != profile.name:
        raise fail("hef.device", f"{params.device!r} is not the profile's name {profile.name!r}")
    return profile, params


def load_cpu_perf(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """``(CpuPerfParams or None, package power figures)`` of a calibration file; ``(None, {})`` for a
    file written before kernel-class curves existed (the physical backend then uses the spec sheet)."""
    from fxenergy.perf.cpu import CpuPerfParams

    path = Path(path).expanduser()
    load_calibration(path)  # the same checks as the profile and HEF set
    cpu = _read_json(path).get("cpu_perf")
    if not cpu:
        return None, {}
    power = dict(cpu.get("power") or {})
    return CpuPerfParams.from_dict({k: v for k, v in cpu.items() if k != "power"}, origin=f"calibration file {path}"), power


def is_calibration_file(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a readable JSON object whose ``schema`` is a calibration's (any version)."""
    try:
        with open(Path(path).expanduser(), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and str(data.get("schema", "")).startswith("fxenergy.calibration/")


