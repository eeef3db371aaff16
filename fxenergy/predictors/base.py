"""The energy-predictor interface and the registry of backends by name.

The contract a backend implements (stable; new backends need nothing else):

* a class registered with ``@register_predictor("name")`` (``--predictor name``); a backend with
  parameters takes them in its constructor. A fittable backend also has ``fit``/``to_json``/
  ``from_json`` (:mod:`fxenergy.predictors.interface`): :mod:`fxenergy.resolve` then loads its JSON
  artifact (``--params`` or ``<name>-<device>.json``), refuses one fitted for another device unless
  ``--force``, and lists it where an artifact ships for the device. A backend built from an HEF
  parameter set says so with ``parameter_kind = "hef"`` (``hef`` itself needs nothing).
* ``predict(gm, profile) -> EnergyEstimate``: iterate ``gm.graph.nodes`` and read each node's
  records with :func:`fxenergy.records.get_record`: ``TRACE`` (shapes, ATen calls, module path,
  phase), ``COST`` (MACs, FLOPs, bytes), ``WORKING_SET`` and ``DURATION`` (written just before by the
  duration pass, :mod:`fxenergy.passes.durations`, whose models are listed in ``DURATION_MODELS``;
  HEF parameters drive HEF durations, every other backend gets roofline durations). Return joules
  per node name plus a per-run overhead.
* ``gm`` is a :class:`fxenergy.analysis.GraphView` of the analysed graph, one per prediction: it
  behaves as the ``GraphModule`` (``gm.graph.nodes``, ``node.name``/``op``/``target``/``users``,
  ``gm.parameters()``…), reads the analysis records, and a ``put_record`` made during the prediction
  stays in that prediction. The analysis itself is immutable and hardware-free: one capture serves
  every backend and device (``compare_predictors``, ``report --hardware a30,l4``). A plain
  ``GraphModule`` that went through capture → cost → working-set → duration passes works the same
  (conformance tests and scripts use that).
* Never a silent zero: a node the backend cannot cost is costed by a fallback that the estimate's
  ``notes`` name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import torch

from fxenergy.errors import UserInputError

if TYPE_CHECKING:
    from fxenergy.hardware import HardwareProfile

__all__ = ["EnergyEstimate", "Predictor", "register_predictor", "PREDICTORS", "make_predictor"]


@dataclass(frozen=True, slots=True)
class EnergyEstimate:
    """Per-node energy (J, keyed by node name), a per-run overhead (J), and what produced them."""

    node_energy_j: Mapping[str, float]
    overhead_j: float
    predictor: str
    parameter_set: str
    notes: tuple[str, ...] = ()
    # the backend's validated error on this device, when one is stored with its parameters:
    # {"pct": relative error in %, "quantity": what was validated ("time" or "energy"), "basis": on what}
    expected_error: Mapping[str, Any] | None = None


@runtime_checkable
class Predictor(Protocol):
    """An energy backend. ``requires`` names the node records it reads."""

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]

    def predict(self, gm: torch.fx.GraphModule, profile: HardwareProfile) -> EnergyEstimate: ...


PREDICTORS: dict[str, Callable[..., Predictor]] = {}


def register_predictor(name: str) -> Callable[[type], type]:
    """Class decorator: make a backend available as ``--predictor name``."""

    def deco(cls: type) -> type:
        if name in PREDICTORS:
            raise RuntimeError(f"predictor {name!r} registered twice")
        cls.name = name  # type: ignore[attr-defined]  # every backend class gets its registry name
        PREDICTORS[name] = cls
        return cls

    return deco


def make_predictor(name: str, **kwargs: Any) -> Predictor:
    try:
        factory = PREDICTORS[name]
    except KeyError:
        raise UserInputError(f"unknown predictor {name!r}; available: {', '.join(['none', *PREDICTORS])}") from None
    return factory(**kwargs)
