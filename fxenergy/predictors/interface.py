"""The fittable-predictor protocol (scikit-learn manners), its JSON artifacts, and third-party backends.

A fittable backend:

* holds hyper-parameters only in its constructor (explicit keyword arguments);
* learns with ``fit(dataset) -> self`` (learned state in attributes ending with ``_``);
* predicts with ``predict(gm, profile) -> EnergyEstimate``; before ``fit`` (or ``from_json``) this
  raises :class:`NotFittedError`;
* saves and loads its learned state as JSON, never pickle: ``to_json() -> dict`` and the classmethod
  ``from_json(dict)``. The artifact is ``{"backend", "schema", "fxenergy_version", "hardware",
  "params", "fitted_on"}``; loading refuses a schema or backend it does not know;
* gives the conformance suite a tiny example with the classmethod ``conformance_example() ->
  (dataset, gm, profile)``.

Third-party backends register through the entry-point group ``fxenergy.predictors``: each entry
point names a class; :func:`load_entry_point_predictors` imports them and adds them to
:data:`fxenergy.predictors.base.PREDICTORS` under the entry point's name.

>>> from fxenergy.predictors.interface import load_artifact
>>> art = load_artifact("cache", "cache-xeon-gold-6154")
>>> art["schema"], art["hardware"]
('fxenergy.predictor/1', 'xeon-gold-6154')
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import torch

from fxenergy.errors import UserInputError
from fxenergy.predictors.base import PREDICTORS, EnergyEstimate

if TYPE_CHECKING:
    from fxenergy.hardware.schema import HardwareProfile

__all__ = [
    "SCHEMA",
    "ENTRY_POINT_GROUP",
    "NotFittedError",
    "FittablePredictor",
    "make_artifact",
    "check_artifact",
    "load_artifact",
    "params_dir",
    "fittable_backends",
    "load_entry_point_predictors",
]

SCHEMA = "fxenergy.predictor/1"
KNOWN_SCHEMAS = (SCHEMA,)
ENTRY_POINT_GROUP = "fxenergy.predictors"


class NotFittedError(UserInputError):
    """A fittable predictor was used before ``fit`` or ``from_json``."""


@runtime_checkable
class FittablePredictor(Protocol):
    """A backend that learns its parameters from measurements (see the module docstring)."""

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]

    def fit(self, dataset: Any) -> FittablePredictor: ...

    def predict(self, gm: torch.fx.GraphModule, profile: HardwareProfile) -> EnergyEstimate: ...

    def to_json(self) -> dict[str, Any]: ...

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FittablePredictor: ...


def check_fitted(obj: Any, attr: str) -> None:
    """Raise :class:`NotFittedError` unless ``obj.<attr>`` is set (sklearn's ``check_is_fitted``)."""
    if getattr(obj, attr, None) is None:
        raise NotFittedError(
            f"this {type(obj).__name__} is not fitted yet: call fit(dataset) or load shipped parameters "
            f"with {type(obj).__name__}.from_json(load_artifact(...))"
        )


def make_artifact(backend: str, hardware: str | None, params: Mapping[str, Any], fitted_on: Any) -> dict[str, Any]:
    """The JSON document every fittable backend writes."""
    from fxenergy import __version__

    return {
        "backend": backend,
        "schema": SCHEMA,
        "fxenergy_version": __version__,
        "hardware": hardware,
        "params": dict(params),
        "fitted_on": fitted_on,
    }


def check_artifact(data: Mapping[str, Any], backend: str) -> Mapping[str, Any]:
    """Refuse an artifact of an unknown schema or of another backend; return it unchanged."""
    if not isinstance(data, Mapping):
        raise UserInputError(f"a {backend} artifact must be a JSON object, got {type(data).__name__}")
    schema = data.get("schema")
    if schema not in KNOWN_SCHEMAS:
        raise UserInputError(
            f"unknown predictor artifact schema {schema!r} (this fxenergy reads {', '.join(KNOWN_SCHEMAS)}); "
            "regenerate the file with this version's fitting script"
        )
    if data.get("backend") != backend:
        raise UserInputError(f"artifact is for backend {data.get('backend')!r}, not {backend!r}")
    missing = [k for k in ("hardware", "params", "fitted_on") if k not in data]
    if missing:
        raise UserInputError(f"{backend} artifact lacks {', '.join(missing)}")
    return data


def params_dir() -> Path:
    """Folder of the shipped parameter files."""
    return Path(__file__).with_name("params")


def load_artifact(backend: str, name_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a shipped artifact by name (``"layerwise-a30"``) or a JSON file path, and check it."""
    path = Path(name_or_path)
    if not path.suffix:
        path = params_dir() / f"{name_or_path}.json"
    if not path.is_file():
        shipped = sorted(p.stem for p in params_dir().glob(f"{backend}-*.json"))
        raise UserInputError(f"no {backend} parameter file {str(name_or_path)!r}; shipped: {', '.join(shipped) or 'none'}")
    data = json.loads(path.read_text())
    check_artifact(data, backend)
    return data


def fittable_backends() -> dict[str, Any]:
    """Registered backends that follow :class:`FittablePredictor` (have fit/to_json/from_json)."""
    load_entry_point_predictors()
    return {name: cls for name, cls in PREDICTORS.items()
            if all(callable(getattr(cls, m, None)) for m in ("fit", "to_json", "from_json", "predict"))}


_LOADED_ENTRY_POINTS: set[str] = set()


@functools.cache
def _group_entry_points() -> tuple[metadata.EntryPoint, ...]:
    # Reading every installed distribution's metadata takes ~7 ms, and one report resolves backends ~15 times.
    return tuple(metadata.entry_points(group=ENTRY_POINT_GROUP))


def load_entry_point_predictors() -> list[str]:
    """Import third-party backends of the ``fxenergy.predictors`` entry-point group; return new names.

    A name already registered (by fxenergy or an earlier load) is left as it is. Installed distributions
    are read once per process (a backend installed after that is seen by the next process).
    """
    added = []
    for ep in _group_entry_points():
        if ep.name in PREDICTORS or ep.name in _LOADED_ENTRY_POINTS:
            continue
        cls = ep.load()
        _LOADED_ENTRY_POINTS.add(ep.name)
        if ep.name not in PREDICTORS:
            cls.name = ep.name
            PREDICTORS[ep.name] = cls
        added.append(ep.name)
    return added
