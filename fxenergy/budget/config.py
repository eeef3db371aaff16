"""Reading and validating budget configurations (``[tool.fxenergy]`` or ``fxenergy.toml``)."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fxenergy.budget.model import (
    _REQUIRED,
    _TOP_KEYS,
    DEFAULT_BASELINE,
    DEFAULT_HARDWARE,
    DTYPES,
    MODES,
    OPTIMIZERS,
    Budget,
    BudgetConfig,
)
from fxenergy.errors import FxEnergyError, UserInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


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
