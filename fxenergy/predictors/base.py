"""The energy-predictor interface and the registry of backends by name.

A predictor reads the records earlier passes left on the graph (costs, durations) and returns an
:class:`EnergyEstimate`: joules per node plus a per-run overhead, which the result shows as a row of
its own so that the energy column still sums to its total.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from fxenergy.errors import UserInputError

__all__ = ["EnergyEstimate", "Predictor", "register_predictor", "PREDICTORS", "make_predictor"]


@dataclass(frozen=True, slots=True)
class EnergyEstimate:
    """Per-node energy (J, keyed by node name), a per-run overhead (J), and what produced them."""

    node_energy_j: Mapping[str, float]
    overhead_j: float
    predictor: str
    parameter_set: str
    notes: tuple[str, ...] = ()


@runtime_checkable
class Predictor(Protocol):
    """An energy backend. ``requires`` names the node records it reads."""

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]

    def predict(self, gm: torch.fx.GraphModule, profile: Any) -> EnergyEstimate: ...


PREDICTORS: dict[str, Callable[..., Predictor]] = {}


def register_predictor(name: str) -> Callable[[type], type]:
    """Class decorator: make a backend available as ``--predictor name``."""

    def deco(cls: type) -> type:
        if name in PREDICTORS:
            raise RuntimeError(f"predictor {name!r} registered twice")
        cls.name = name
        PREDICTORS[name] = cls
        return cls

    return deco


def make_predictor(name: str, **kwargs: Any) -> Predictor:
    try:
        factory = PREDICTORS[name]
    except KeyError:
        raise UserInputError(f"unknown predictor {name!r}; available: {', '.join(['none', *PREDICTORS])}") from None
    return factory(**kwargs)
