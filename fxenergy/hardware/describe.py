"""Text for ``fxenergy hardware list`` and ``fxenergy hardware show``: figures, sources, estimates,
and the validated error of the fitted backends that ship one.

A fitted backend states how well it holds on a device with a ``"validated"`` block in its shipped
JSON (``fxenergy/perf/*.json`` or ``fxenergy/predictors/params/*.json``), in any of these shapes::

    "validated": {"a30": {"quantity": "energy", "median_pct": 8.1, "mean_pct": 9.7, "worst_pct": 31.0,
                          "on": "leave-one-model-out, gpu-operators-nicolai A30 (36 runs)"}, ...}
    "validated": [{"hardware": "a30", "quantity": "duration", "median_pct": 6.0, ...}, ...]
    "validated": {"quantity": "energy", "median_pct": 8.1, ...}   # for the file's own "hardware"

Percentages are absolute percentage errors. ``quantity``, ``mean_pct``, ``worst_pct`` and ``on``
are optional; ``median_pct`` is required. Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from fxenergy._files import read_package_json
from fxenergy.hardware.registry import list_profiles, load_profile
from fxenergy.hardware.schema import DTYPES, HardwareProfile

__all__ = ["ValidatedError", "validated_errors", "fitted_backends", "render_list", "render_show"]

_PARAM_DIRS = ("perf", "predictors/params")
ESTIMATE_MARK = "~"


@dataclass(frozen=True, slots=True)
class ValidatedError:
    """A backend's measured error on one device (absolute percentage errors)."""

    backend: str
    hardware: str
    median_pct: float
    quantity: str | None = None
    mean_pct: float | None = None
    worst_pct: float | None = None
    on: str | None = None
    file: str = ""

    def text(self) -> str:
        parts = [f"median {self.median_pct:.1f}%"]
        parts += [f"{k} {v:.1f}%" for k, v in (("mean", self.mean_pct), ("worst", self.worst_pct)) if v is not None]
        what = f"{self.quantity} " if self.quantity else ""
        on = f"; {self.on}" if self.on else ""
        return f"{self.backend}: {what}{', '.join(parts)}{on} ({self.file})"


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _entries(doc: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(hardware name, entry) pairs of a document's "validated" block, whatever its shape."""
    block = doc.get("validated")
    default = doc.get("hardware") or doc.get("device")
    if isinstance(block, list):
        for entry in block:
            if isinstance(entry, Mapping) and isinstance(entry.get("hardware", default), str):
                yield entry.get("hardware", default), entry
    elif isinstance(block, Mapping):
        if "median_pct" in block and isinstance(default, str):
            yield default, block
        else:
            for name, entry in block.items():
                if isinstance(entry, Mapping):
                    yield name, entry


@cache
def _shipped() -> tuple[tuple[str, dict[str, Any]], ...]:
    """(relative path, document) of every shipped backend JSON file that parses."""
    root = resources.files("fxenergy")
    out = []
    for folder in _PARAM_DIRS:
        d = root.joinpath(folder)
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir(), key=lambda p: p.name):
            if f.name.endswith(".json"):
                try:
                    doc = read_package_json("fxenergy", folder, f.name)
                except (OSError, ValueError):
                    continue  # the backend that owns a broken file reports it; the listing goes on
                if isinstance(doc, dict):
                    out.append((f"fxenergy/{folder}/{f.name}", doc))
    return tuple(out)


def validated_errors(name: str) -> list[ValidatedError]:
    """Every shipped "validated" entry for the profile ``name``."""
    found = []
    for path, doc in _shipped():
        backend = str(doc.get("backend") or doc.get("name") or path.rsplit("/", 1)[-1].removesuffix(".json"))
        for hw, entry in _entries(doc):
            median = _number(entry.get("median_pct"))
            if hw == name and median is not None:
                found.append(ValidatedError(
                    backend=backend, hardware=hw, median_pct=median,
                    quantity=entry.get("quantity") if isinstance(entry.get("quantity"), str) else None,
                    mean_pct=_number(entry.get("mean_pct")), worst_pct=_number(entry.get("worst_pct")),
                    on=entry.get("on") if isinstance(entry.get("on"), str) else None, file=path))
    return found


def fitted_backends(name: str) -> list[str]:
    """Backends whose shipped parameters were fitted on measurements of the profile ``name``."""
    out = []
    for path, doc in _shipped():
        if name in (doc.get("hardware"), doc.get("device")):
            backend = str(doc.get("backend") or path.rsplit("/", 1)[-1].split("-", 1)[0])
            if backend not in out:
                out.append(backend)
    return out


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"),
                           (1e-6, "u"), (1e-9, "n")):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def _binary(n: float) -> str:
    for factor, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= factor:
            return f"{n / factor:.4g} {unit}"
    return f"{n:.0f} B"


def _spec_only(p: HardwareProfile) -> bool:
    return "spec-only" in p.display_name


def _learned(p: HardwareProfile) -> tuple[float, str] | None:
    """The learned GPU model's (default GPU backend) time error validated on this GPU itself, or None."""
    if not p.is_gpu:
        return None
    from fxenergy.perf.validated import device_error

    return device_error(p.name)


def _learned_line(p: HardwareProfile) -> str:
    """What the default GPU backend's error is on this GPU: validated on it, or expected on a GPU outside its data."""
    from fxenergy.perf.validated import expected_error

    if own := _learned(p):
        return f"learned GPU model (default backend): time error ±{own[0]:.0f}%, validated on this GPU: {own[1]}"
    err, basis = expected_error(p.name)
    return (f"learned GPU model (default backend): not validated on this GPU; expected time error ±{err:.0f}% "
            f"({basis})")


def _status(p: HardwareProfile) -> str:
    errors = [f"{e.backend} {e.median_pct:.0f}%" for e in validated_errors(p.name)]
    if own := _learned(p):
        errors.insert(0, f"learned {own[0]:.0f}%")
    if errors:
        return "validated " + ", ".join(errors)
    if _spec_only(p):
        return "spec-only"
    if backends := fitted_backends(p.name):
        return "fitted: " + ", ".join(backends)
    return "spec"


def render_list() -> str:
    """One line per bundled profile: name, kind, vendor, architecture, headline figures, data."""
    head = ("name", "kind", "vendor", "arch", "fp32", "memory", "bandwidth", "TDP", "est.", "data")
    rows = [head]
    for name in list_profiles():
        p = load_profile(name)
        rows.append((
            name, p.kind, p.vendor, p.architecture or "-", _si(p.peak_flops["fp32"], "FLOP/s"),
            _binary(p.memory_bytes), _si(p.memory_bandwidth_bytes_per_s, "B/s"),
            f"{p.tdp_w:g} W" if p.tdp_w else "-", str(len(p.estimated)), _status(p),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    lines.append("")
    lines.append("est.: number of figures that are estimates (derived or not published); data: validated = a"
                 " backend's measured error ships for it; fitted = a backend was fitted on measurements of it;"
                 " spec = spec-sheet figures only; spec-only = spec sheet, and no measurement of this vendor's"
                 " devices behind any fxenergy model. `fxenergy hardware show NAME` gives every figure's source.")
    return "\n".join(line.rstrip() for line in lines)


def _figures(p: HardwareProfile) -> list[tuple[str, str, str]]:
    """(field key, label, value) of every figure the profile has, in display order."""
    out = [(f"peak_flops.{k}", f"peak {k}", _si(p.peak_flops[k], "OP/s" if k == "int8" else "FLOP/s"))
           for k in DTYPES if k in p.peak_flops]
    out.append(("memory_bandwidth_bytes_per_s", "memory bandwidth", _si(p.memory_bandwidth_bytes_per_s, "B/s")))
    out.append(("memory_bytes", "memory", _binary(p.memory_bytes)))
    for c in p.caches:
        out.append(("caches", f"{c.level} cache", f"{_binary(c.size_bytes)} per {c.shared_by} x {c.instances}"))
    units = "cores" if p.kind == "cpu" else "SMs" if p.vendor == "NVIDIA" else "SMs (compute units)"
    out.append(("compute_units", units, str(p.compute_units)))
    optional = (
        ("fp32_cores", "fp32 lanes", lambda v: str(v)),
        ("simd_width_bits", "SIMD width", lambda v: f"{v} bit"),
        ("fma_units_per_core", "FMA units per core", lambda v: str(v)),
        ("threads_per_core", "threads per core", lambda v: str(v)),
        ("sockets", "sockets", lambda v: str(v)),
    )
    for field, label, fmt in optional:
        if (v := getattr(p, field)) is not None:
            out.append((field, label, fmt(v)))
    out.append(("clock_hz", "clock (boost / max turbo)", _si(p.clock_hz, "Hz")))
    for field, label in (("base_clock_hz", "base clock"), ("sustained_clock_hz", "sustained clock")):
        v = getattr(p, field)
        out.append((field, label, _si(v, "Hz") if v is not None else "-"))
    out.append(("tdp_w", "TDP / power limit", f"{p.tdp_w:g} W" if p.tdp_w is not None else "-"))
    out.append(("idle_w", "idle power", f"{p.idle_w:g} W" if p.idle_w is not None else "-"))
    out.append(("kernel_launch_overhead_s", "per-op launch overhead", _si(p.kernel_launch_overhead_s, "s")))
    return out


def render_show(p: HardwareProfile) -> str:
    """Every figure of ``p`` with its source, estimates marked, and the validated-error slot."""
    lines = [f"{p.name}: {p.display_name}",
             f"kind {p.kind}, vendor {p.vendor}, architecture {p.architecture or 'not given'}", ""]
    figures = _figures(p)
    lw = max(len(label) for _, label, _ in figures)
    vw = max(len(value) for _, _, value in figures)
    for key, label, value in figures:
        mark = ESTIMATE_MARK if p.is_estimated(key) else " "
        source = p.source_of(key) or "no source given"
        lines.append(f"  {label.ljust(lw)}  {value.rjust(vw)} {mark}  {source}")
    lines.append("")
    lines.append(f"{ESTIMATE_MARK} estimated: derived or not published; the source says how it was obtained."
                 " '-' : not known (the source says why).")
    errors = validated_errors(p.name)
    if errors:
        lines.append("validated error:")
        lines += [f"  {e.text()}" for e in errors]
    elif not _learned(p):
        fitted = fitted_backends(p.name)
        note = f" (backends fitted on its measurements: {', '.join(fitted)}; none ships a validated error)" if fitted \
            else " (no fxenergy backend was fitted or validated on this device)"
        lines.append("validated error: not validated" + note)
    if p.is_gpu:
        lines.append(_learned_line(p))
    elif not errors:
        lines.append(_cpu_latency_line(p))
    return "\n".join(line.rstrip() for line in lines)


def _cpu_latency_line(p: HardwareProfile) -> str:
    """The CPU duration model's time error where it was measured (benchmarks/cpu_latency.py), not on this CPU."""
    from fxenergy.perf.validated import cpu_latency_error

    spec, cal = cpu_latency_error("spec_sheet", p.name), cpu_latency_error("calibrated", p.name)
    if spec is None or cal is None:
        return "CPU durations (physical backend): no latency validation shipped"
    return (f"CPU durations (physical backend): expected time error ±{spec['pct']:.0f}% from the spec sheet, "
            f"±{cal['pct']:.0f}% after `fxenergy calibrate --quick`; measured by {cal['basis'].split(' (')[0]}, "
            "which may not be this CPU; energy adds the power figures above")
