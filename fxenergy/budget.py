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
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fxenergy._files import write_atomic
from fxenergy.errors import FxEnergyError, UserInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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

CONFIG_FILES = ("fxenergy.toml", "pyproject.toml")  # searched in this order
DEFAULT_BASELINE = "fxenergy-baseline.json"
DEFAULT_HARDWARE = "a100-80gb-pcie"
BASELINE_SCHEMA = "fxenergy.baseline/1"
DTYPES = ("float32", "float16", "bfloat16")
MODES = ("inference", "training")
OPTIMIZERS = ("adamw", "sgd")
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


# ------------------------------------------------------------------------------------ configuration
def find_config(directory: str | os.PathLike[str] = ".") -> Path:
    """``fxenergy.toml`` in ``directory``, else ``pyproject.toml`` if it has a ``[tool.fxenergy]`` table."""
    d = Path(directory)
    standalone = d / "fxenergy.toml"
    if standalone.is_file():
        return standalone
    pyproject = d / "pyproject.toml"
    if pyproject.is_file() and "fxenergy" in _read_toml(pyproject).get("tool", {}):
        return pyproject
    raise UserInputError(
        f"no budget configuration in {d.resolve()}: add fxenergy.toml or a [tool.fxenergy] table to "
        "pyproject.toml (see docs/budgets.md), or pass --config FILE"
    )


def load_config(path: str | os.PathLike[str], *, check_names: bool = True) -> BudgetConfig:
    """Read and validate a configuration file (``pyproject.toml`` or a standalone one)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserInputError(f"budget configuration {p} not found")
    p = p.resolve()
    data = _read_toml(p)
    if p.name == "pyproject.toml":
        tool = data.get("tool", {})
        if "fxenergy" not in tool:
            raise UserInputError(f"{p.name}: no [tool.fxenergy] table; see docs/budgets.md")
        return parse_config(tool["fxenergy"], p, prefix="tool.fxenergy", check_names=check_names)
    return parse_config(data, p, prefix="", check_names=check_names)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UserInputError(f"{path.name}: not valid TOML ({' '.join(str(e).split())})") from None
    except OSError as e:
        raise UserInputError(f"{path.name}: cannot be read ({e.strerror})") from None


class _Where:
    def __init__(self, path: Path, prefix: str) -> None:
        self.path, self.prefix = path, prefix

    def error(self, key: str, message: str) -> UserInputError:
        full = f"{self.prefix}.{key}" if self.prefix and key else (self.prefix or key)
        return UserInputError(f"{self.path.name}: {full}: {' '.join(message.split())}")


def parse_config(
    data: Mapping[str, Any], path: str | os.PathLike[str], *, prefix: str = "tool.fxenergy", check_names: bool = True
) -> BudgetConfig:
    """Validate the ``[tool.fxenergy]`` table (or a standalone file's top level) into a BudgetConfig.

    ``check_names`` also checks hardware, predictor and parameter-set names against what is bundled.
    """
    p = Path(path)
    w = _Where(p, prefix)
    if not isinstance(data, Mapping):
        raise w.error("", f"must be a table, got {_tname(data)}")
    for k in data:
        if k not in _TOP_KEYS:
            raise w.error(str(k), f"unknown key; expected one of: {', '.join(_TOP_KEYS)}")
    baseline = data.get("baseline", DEFAULT_BASELINE)
    if not isinstance(baseline, str) or not baseline.strip():
        raise w.error("baseline", f"must be a file name (a non-empty string), got {baseline!r}")
    entries = data.get("budget")
    if entries is None:
        raise w.error("budget", "missing; add at least one [[budget]] entry (name, model, max_energy_j)")
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise w.error("budget", f"must be an array of tables ([[budget]] entries), got {_tname(entries)}")
    if not entries:
        raise w.error("budget", "is empty; add at least one [[budget]] entry")
    budgets = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        b = _parse_budget(entry, f"budget[{i}]", w, check_names=check_names)
        if b.name in seen:
            raise w.error(f"budget[{i}].name", f"duplicate name {b.name!r} (also budget[{seen[b.name]}])")
        seen[b.name] = i
        budgets.append(b)
    return BudgetConfig(p, prefix, (p.parent / baseline).resolve() if not Path(baseline).is_absolute() else Path(baseline),
                        tuple(budgets))


def _tname(v: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(v), type(v).__name__)


def _parse_budget(entry: Mapping[str, Any], key: str, w: _Where, *, check_names: bool) -> Budget:
    fields_ = set(Budget.__dataclass_fields__) - {"key"}
    for k in entry:
        if k not in fields_:
            raise w.error(f"{key}.{k}", f"unknown key; expected one of: {', '.join(sorted(fields_))}")
    for k in _REQUIRED:
        if k not in entry:
            raise w.error(f"{key}.{k}", "missing (required)")

    def get(k: str, check: Any, default: Any = None) -> Any:
        if k not in entry:
            return default
        return check(entry[k], f"{key}.{k}")

    def string(v: Any, k: str) -> str:
        if not isinstance(v, str) or not v.strip():
            raise w.error(k, f"must be a non-empty string, got {v!r}")
        return v

    def choice(options: tuple[str, ...]) -> Any:
        def check(v: Any, k: str) -> str:
            if v not in options:
                raise w.error(k, f"must be one of {', '.join(options)}, got {v!r}")
            return v

        return check

    def boolean(v: Any, k: str) -> bool:
        if not isinstance(v, bool):
            raise w.error(k, f"must be true or false, got {v!r}")
        return v

    def pos_int(v: Any, k: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise w.error(k, f"must be a positive integer, got {v!r}")
        return v

    def number(minimum: float, strict: bool) -> Any:
        def check(v: Any, k: str) -> float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or (v <= minimum if strict else v < minimum):
                what = "a positive number" if strict else f"a number >= {minimum:g}"
                raise w.error(k, f"must be {what}, got {v!r}")
            return v

        return check

    b = Budget(
        name=get("name", string),
        model=get("model", string),
        max_energy_j=get("max_energy_j", number(0, True)),
        batch_size=get("batch_size", pos_int, 1),
        seq_len=get("seq_len", pos_int, 128),
        image_size=get("image_size", pos_int),
        dtype=get("dtype", choice(DTYPES), "float32"),
        hardware=get("hardware", string, DEFAULT_HARDWARE),
        predictor=get("predictor", string),
        params=get("params", string),
        force=get("force", boolean, False),
        mode=get("mode", choice(MODES), "inference"),
        optimizer=get("optimizer", choice(OPTIMIZERS), "adamw"),
        max_flops=get("max_flops", number(0, True)),
        max_increase_pct=get("max_increase_pct", number(0, False)),
        key=key,
    )
    base_dir = w.path.parent
    if _is_path(b.hardware):
        b = _replace(b, hardware=str((base_dir / b.hardware).resolve()))
    if b.params is not None and _is_path(b.params):
        b = _replace(b, params=str((base_dir / b.params).resolve()))
    if check_names:
        _check_names(b, key, w)
    return b


def _is_path(text: str) -> bool:
    return text.lower().endswith(".json") or "/" in text or os.sep in text


def _replace(b: Budget, **changes: Any) -> Budget:
    from dataclasses import replace

    return replace(b, **changes)


def _check_names(b: Budget, key: str, w: _Where) -> None:
    """Resolve hardware, predictor and parameter set as `report` would (one resolver for all)."""
    from fxenergy.resolve import resolve, resolve_hardware

    try:
        resolve_hardware(b.hardware)
    except FxEnergyError as e:
        raise w.error(f"{key}.hardware", str(e)) from None
    if b.params is not None and _is_path(b.params) and not Path(b.params).is_file():
        raise w.error(f"{key}.params", f"file {b.params} not found")
    try:
        resolve(b.hardware, b.predictor, b.params, force=b.force)
    except FxEnergyError as e:
        raise w.error(f"{key}.{'params' if b.params is not None else 'predictor'}", str(e)) from None


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
