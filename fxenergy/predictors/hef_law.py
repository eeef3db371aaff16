"""Seed 004's hardware-efficiency power law (HEF), its op families and its parameter files.

The law (seed 004, Eq. 1, 3, 4): an op of work ``c`` runs at a fraction ``eta(c)`` of the device's
peak, ``eta(c) = eta_max * (1 - exp(-k * c**alpha))``, so it lasts ``t = c / (peak * eta(c))``.
Here ``eta`` is a FRACTION (0..1; the paper prints percent) and ``c`` is measured in the curve's
``unit``: ``"TFLOP"`` (1e12 FLOP, the paper's) for compute-bound families, whose peak is FLOP/s,
and ``"GB"`` (1e9 bytes moved) for memory-bound ones, whose peak is bytes/s. Energy (Eq. 2):
``e = h_j + sum_i h_family(i) * t_i``, elasticities in J/s (W).

Work of a node (:func:`work_for`): ``flops`` basis uses the contraction FLOPs (``flops = 2*macs``)
when the node has any, else its ``elementwise_flops``; ``bytes`` basis uses
``bytes_read + bytes_written``, as :mod:`fxenergy.passes.costs` counts them.

>>> law = PowerLaw(eta_max=0.5, k=1.0, alpha=1.0, unit="TFLOP")
>>> round(law.efficiency(1e12), 4)  # 0.5 * (1 - e**-1)
0.3161
>>> p = load_hef_parameters("hef-seed004-a100")
>>> round(p.duration_s("matmul", 1.074e11) * 1e3, 3)  # ms: Table 7 projections at Table 8 FLOPs
1.29
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from fxenergy._files import check_document, read_json
from fxenergy.errors import UserInputError
from fxenergy.passes.families import BASES, FAMILIES, Family, work_for

__all__ = [
    "SCHEMA",
    "UNITS",
    "BASES",
    "Family",
    "FAMILIES",
    "work_for",
    "PowerLaw",
    "fit_power_law",
    "choose_method",
    "FamilyLaw",
    "HEFEnergy",
    "HEFParameters",
    "load_hef_parameters",
    "list_hef_parameters",
]

SCHEMA = "fxenergy.hef-params/1"
UNITS: Mapping[str, float] = MappingProxyType(
    {"FLOP": 1.0, "GFLOP": 1e9, "TFLOP": 1e12, "B": 1.0, "MB": 1e6, "GB": 1e9}
)
"""Scale of each unit ``c`` may be measured in: raw work = c * UNITS[unit] (FLOP or bytes)."""
_UNIT_BASIS = {"FLOP": "flops", "GFLOP": "flops", "TFLOP": "flops", "B": "bytes", "MB": "bytes", "GB": "bytes"}


@dataclass(frozen=True, slots=True)
class PowerLaw:
    """``eta(c) = eta_max * (1 - exp(-k * c**alpha))``, ``eta`` a fraction of peak, ``c`` in ``unit``.

    Methods take raw work (FLOP, or bytes for GB/MB/B curves) and numpy arrays or scalars.
    Zero work gives zero duration.
    """

    eta_max: float
    k: float
    alpha: float
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise UserInputError(f"PowerLaw unit {self.unit!r} unknown; use one of {', '.join(UNITS)}")
        for name, lo, hi in (("eta_max", 0.0, 10.0), ("k", 0.0, math.inf), ("alpha", 0.0, 5.0)):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and lo < v <= hi):
                raise UserInputError(f"PowerLaw {name} must be in ({lo}, {hi}], got {v!r}")

    @property
    def basis(self) -> str:
        """``"flops"`` or ``"bytes"``, from the unit."""
        return _UNIT_BASIS[self.unit]

    def efficiency(self, work: Any) -> Any:
        """Fraction of peak (0..eta_max) reached by an op of ``work`` raw FLOP (or bytes)."""
        c = np.asarray(work, dtype=float) / UNITS[self.unit]
        eta = self.eta_max * -np.expm1(-self.k * c**self.alpha)
        return eta if eta.ndim else float(eta)

    def duration_s(self, work: Any, peak: float) -> Any:
        """Seconds for ``work`` at ``peak`` (FLOP/s, or bytes/s): ``work / (peak * eta(work))``."""
        w = np.asarray(work, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(w > 0, w / (peak * np.asarray(self.efficiency(w))), 0.0)
        return t if t.ndim else float(t)

    def to_dict(self) -> dict[str, Any]:
        return {"eta_max": self.eta_max, "k": self.k, "alpha": self.alpha, "unit": self.unit}


def _log_eta(x: np.ndarray, eta_max: float, log_k: float, alpha: float) -> np.ndarray:
    """log eta(x), stable where k*x**alpha is tiny (x in the curve's unit)."""
    z_log = log_k + alpha * np.log(x)
    z = np.exp(np.minimum(z_log, 700.0))
    return math.log(eta_max) + np.where(z_log < -18.0, z_log, np.log(-np.expm1(-z)))


def fit_power_law(
    work: Any, duration_s: Any, peak: float, *, unit: str = "TFLOP", method: str = "auto", loss: str = "soft_l1"
) -> PowerLaw:
    """Fit ``eta_max, k, alpha`` to measured (work, duration) pairs with ``scipy.optimize.curve_fit``.

    ``method="log"`` minimises residuals of ``log t``: relative duration errors, every op weighing
    the same. ``method="eta"`` minimises residuals of ``eta = c / (peak * t)``, as seed 004 did,
    which lets the large ops (high eta) dominate. Neither wins everywhere: on the curves of
    ``scripts/fit_hef.py`` "log" has the lower held-out duration error on Nicolai's convolutions,
    norms and linears (RTX 2080 Ti convs 17% vs 25%, A30 norms 13% vs 21%), "eta" on A100 attention
    output (3.8% vs 5.5%) and the element-wise ops (RTX 2080 Ti ReLU 1.2% vs 3.0%; on the FLOP
    basis the eta fit of the A100 LSTM element-wise ops misses by 41-54%, the log fit by 5%).
    So ``method="auto"`` (default) picks one per curve by :func:`choose_method`, a 3-fold
    cross-validation inside the given (training) data, never looking at held-out rows. ``loss="soft_l1"`` (robust; scale 0.1 in log units, or 10% of
    the median eta) tames the data's warm-up outliers; ``"linear"`` is plain least squares.
    Bounds: eta_max in [1e-6, 4], k > 0, alpha in [0.05, 1]: alpha <= 1 keeps duration
    non-decreasing in work (with alpha > 1, t -> infinity as c -> 0: tiny ops would be predicted
    slower than large ones; seed 004's Table 2 sits on the same bound). Three starts (alpha 0.3,
    0.6, 0.9), the lowest cost wins. Deterministic.

    >>> c = np.array([1e9, 1e10, 1e11, 1e12])
    >>> law = PowerLaw(0.6, 8.0, 0.7, "TFLOP")
    >>> fit = fit_power_law(c, law.duration_s(c, 156e12), 156e12)
    >>> round(fit.eta_max, 3), round(fit.k, 2), round(fit.alpha, 3)
    (0.6, 8.0, 0.7)
    """
    from scipy.optimize import curve_fit

    if unit not in UNITS:
        raise UserInputError(f"unit {unit!r} unknown; use one of {', '.join(UNITS)}")
    if method not in ("auto", "log", "eta"):
        raise UserInputError(f"method must be 'auto', 'log' or 'eta', got {method!r}")
    w, t = np.asarray(work, dtype=float), np.asarray(duration_s, dtype=float)
    keep = (w > 0) & (t > 0) & np.isfinite(w) & np.isfinite(t)
    if keep.sum() < 4:
        raise UserInputError(f"fit_power_law needs at least 4 positive (work, duration) pairs, got {keep.sum()}")
    if method == "auto":
        method = choose_method(w[keep], t[keep], peak, unit=unit, loss=loss)
    x, t = w[keep] / UNITS[unit], t[keep]
    eta_obs = w[keep] / (peak * t)
    if method == "log":
        def model(x, eta_max, log_k, alpha):
            return np.log(x * UNITS[unit] / peak) - _log_eta(x, eta_max, log_k, alpha)
        y, f_scale = np.log(t), 0.1
    else:
        def model(x, eta_max, log_k, alpha):
            return np.exp(_log_eta(x, eta_max, log_k, alpha))
        y, f_scale = eta_obs, 0.1 * float(np.median(eta_obs))
    best = None
    x_mid = float(np.median(x))
    for alpha0 in (0.3, 0.6, 0.9):
        eta0 = float(np.clip(np.max(eta_obs) * 1.05, 1e-5, 3.9))
        p0 = (eta0, math.log(math.log(2.0)) - alpha0 * math.log(x_mid), alpha0)
        try:
            p, _ = curve_fit(model, x, y, p0=p0, bounds=((1e-6, -60.0, 0.05), (4.0, 60.0, 1.0)), method="trf",
                             loss=loss, f_scale=f_scale, max_nfev=20000)
        except RuntimeError:
            continue
        r = model(x, *p) - y
        cost = float(np.sum(np.log1p((r / f_scale) ** 2))) if loss != "linear" else float(np.sum(r**2))
        if best is None or cost < best[0]:
            best = (cost, p)
    if best is None:
        raise UserInputError("fit_power_law did not converge from any start")
    eta_max, log_k, alpha = (float(v) for v in best[1])
    return PowerLaw(eta_max=eta_max, k=math.exp(log_k), alpha=alpha, unit=unit)


def choose_method(
    work: Any, duration_s: Any, peak: float, *, unit: str = "TFLOP", loss: str = "soft_l1", folds: int = 3
) -> str:
    """``"log"`` or ``"eta"``: the fit method with the lower median relative duration error over a
    ``folds``-fold cross-validation of these rows (fixed fold assignment; ties go to ``"log"``)."""
    w, t = np.asarray(work, dtype=float), np.asarray(duration_s, dtype=float)
    fold = np.random.default_rng(0).permutation(len(w)) % folds
    if len(w) < 4 * folds:
        return "log"
    errors = {}
    for method in ("log", "eta"):
        rel = []
        for i in range(folds):
            law = fit_power_law(w[fold != i], t[fold != i], peak, unit=unit, method=method, loss=loss)
            rel.append(np.abs(np.asarray(law.duration_s(w[fold == i], peak)) / t[fold == i] - 1.0))
        errors[method] = float(np.median(np.concatenate(rel)))
    return "eta" if errors["eta"] < errors["log"] else "log"


class FamilyLaw(NamedTuple):
    """The curve of one family in a parameter set, and the work it is measured in."""

    law: PowerLaw
    basis: str


@dataclass(frozen=True, slots=True)
class HEFEnergy:
    """Energy coefficients. Eq. 2: ``e = h_j + sum(elasticity_j_per_s[family] * t)`` (J, s, W).

    Optional finer model (fitted files with per-op power): ``e_op = t * (static_power_w +
    dynamic_j_per_s[family] * eta(c) / eta_max)`` — static board power plus a dynamic part that
    grows with utilisation (note ``t * eta(c) / eta_max = c / (peak * eta_max)``). Both models
    describe the same measured board energy; use one, not their sum.
    """

    h_j: float
    elasticity_j_per_s: Mapping[str, float]
    static_power_w: float | None = None
    dynamic_j_per_s: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "elasticity_j_per_s", MappingProxyType(dict(self.elasticity_j_per_s)))
        if self.dynamic_j_per_s is not None:
            object.__setattr__(self, "dynamic_j_per_s", MappingProxyType(dict(self.dynamic_j_per_s)))

    def to_dict(self) -> dict[str, Any]:
        return {"h_j": self.h_j, "elasticity_j_per_s": dict(self.elasticity_j_per_s),
                "static_power_w": self.static_power_w,
                "dynamic_j_per_s": None if self.dynamic_j_per_s is None else dict(self.dynamic_j_per_s)}


_KEYS = ("schema", "name", "source", "device", "peak_flops", "peak_bytes_per_s", "families", "energy", "fitted_on",
         "notes", "paper")


@dataclass(frozen=True, slots=True)
class HEFParameters:
    """A named set of HEF curves for one device (``device`` is a hardware profile name).

    ``peak_flops`` (FLOP/s) and ``peak_bytes_per_s`` are the peaks the curves were fitted against:
    use them, not another figure, to turn efficiency into duration. ``paper`` keeps a seed's
    published tables verbatim (percent, the paper's units); ``fitted_on`` describes the data,
    split and held-out errors of a fit.
    """

    name: str
    source: str
    device: str
    peak_flops: float
    peak_bytes_per_s: float
    families: Mapping[str, FamilyLaw]
    energy: HEFEnergy | None = None
    fitted_on: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    paper: Mapping[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "families", MappingProxyType(dict(self.families)))
        object.__setattr__(self, "notes", tuple(self.notes))

    def peak_for(self, basis: str) -> float:
        """The peak a curve of ``basis`` is relative to (FLOP/s or bytes/s)."""
        work_for(basis, flops=0, elementwise_flops=0, bytes_moved=0)  # validates basis
        return self.peak_flops if basis == "flops" else self.peak_bytes_per_s

    def duration_s(self, family: str, work: Any) -> Any:
        """Seconds for ``work`` (raw FLOP or bytes, per the family's basis) of ``family``."""
        if family not in self.families:
            raise UserInputError(f"HEF parameters {self.name!r} have no curve for family {family!r}; "
                                 f"they have {', '.join(self.families)}")
        law, basis = self.families[family]
        return law.duration_s(work, self.peak_for(basis))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the file layout (``schema`` first)."""
        return {
            "schema": SCHEMA, "name": self.name, "source": self.source, "device": self.device,
            "peak_flops": self.peak_flops, "peak_bytes_per_s": self.peak_bytes_per_s,
            "families": {f: {**fl.law.to_dict(), "basis": fl.basis} for f, fl in self.families.items()},
            "energy": self.energy.to_dict() if self.energy else None,
            "fitted_on": _plain(self.fitted_on), "notes": list(self.notes), "paper": _plain(self.paper),
        }

    @classmethod
    def from_dict(cls, data: Any, *, origin: str = "<dict>") -> HEFParameters:
        """Validate and build; a one-line :class:`UserInputError` names ``origin`` and the bad key."""

        def fail(key: str, problem: str) -> UserInputError:
            return UserInputError(f"HEF parameter file {origin}: {key}: {problem}")

        check_document(data, f"HEF parameter file {origin}", schema=SCHEMA, allowed=_KEYS,
                       required=("name", "source", "device", "peak_flops", "peak_bytes_per_s", "families"))
        for key in ("peak_flops", "peak_bytes_per_s"):
            v = data[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
                raise fail(key, f"expected a positive number, got {v!r}")
        families = {}
        for fam, spec in (data["families"] or {}).items():
            if fam not in FAMILIES:
                raise fail(f"families.{fam}", f"unknown family (known: {', '.join(FAMILIES)})")
            try:
                law = PowerLaw(**{k: spec[k] for k in ("eta_max", "k", "alpha", "unit")})
            except (KeyError, TypeError) as e:
                raise fail(f"families.{fam}", f"needs eta_max, k, alpha, unit and basis ({e})") from None
            except UserInputError as e:
                raise fail(f"families.{fam}", str(e)) from None
            if spec.get("basis") != law.basis:
                raise fail(f"families.{fam}.basis", f"{spec.get('basis')!r} does not match unit {law.unit!r}")
            families[fam] = FamilyLaw(law, law.basis)
        energy = data.get("energy")
        if energy is not None:
            try:
                dyn = energy.get("dynamic_j_per_s")
                energy = HEFEnergy(float(energy["h_j"]), {k: float(v) for k, v in energy["elasticity_j_per_s"].items()},
                                   energy.get("static_power_w"), None if dyn is None else {k: float(v) for k, v in dyn.items()})
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise fail("energy", f"needs h_j and elasticity_j_per_s ({e})") from None
            if bad := sorted((set(energy.elasticity_j_per_s) | set(energy.dynamic_j_per_s or ())) - set(FAMILIES)):
                raise fail(f"energy.{bad[0]}", "unknown family")
        return cls(
            name=str(data["name"]), source=str(data["source"]), device=str(data["device"]),
            peak_flops=float(data["peak_flops"]), peak_bytes_per_s=float(data["peak_bytes_per_s"]),
            families=families, energy=energy, fitted_on=data.get("fitted_on"), notes=tuple(data.get("notes") or ()),
            paper=data.get("paper"),
        )


def _plain(x: Any) -> Any:
    """Mappings (also read-only ones) and tuples as plain dicts and lists, for json."""
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _params_dir() -> Any:
    return resources.files(__package__).joinpath("params")


def list_hef_parameters() -> list[str]:
    """Names of the bundled parameter sets (``fxenergy/predictors/params/hef-*.json``)."""
    return sorted(p.name[:-5] for p in _params_dir().iterdir() if p.name.startswith("hef-") and p.name.endswith(".json"))


@cache
def _load_bundled(name: str) -> HEFParameters:
    return HEFParameters.from_dict(read_json(_params_dir().joinpath(f"{name}.json"), "HEF parameter file"),
                                   origin=f"{name}.json")


def load_hef_parameters(name_or_path: str | os.PathLike[str]) -> HEFParameters:
    """A bundled parameter set by name (see :func:`list_hef_parameters`) or a ``.json`` file path.

    >>> load_hef_parameters("hef-seed004-rtx2080ti").device
    'rtx-2080-ti'
    """
    text = os.fspath(name_or_path)
    if text.endswith(".json") or os.sep in text or "/" in text:
        path = Path(text).expanduser()
        return HEFParameters.from_dict(read_json(path, "HEF parameter file"), origin=str(path))
    names = list_hef_parameters()
    if text in names:
        return _load_bundled(text)
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UserInputError(f"unknown HEF parameter set {text!r}{hint} (bundled: {', '.join(names)})")
