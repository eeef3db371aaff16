"""HEF energy predictor (seed 004 Eq. 2): ``e ≈ h + Σ h_Θ · t_Θ``.

Durations ``t_Θ`` come from the duration pass run with the same parameter set (Eq. 3/4). Each node's
energy is its family's elasticity ``h_Θ`` (J per second of that family, i.e. watts) times its
duration; ``h`` is a per-run constant, shown as its own row. A family the parameter set has no
elasticity for, or a set without energy coefficients, is costed with the profile's power model
(:mod:`fxenergy.predictors.power`), and the estimate's notes name those families.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from fxenergy.passes.durations import node_dtype
from fxenergy.predictors.base import EnergyEstimate, register_predictor
from fxenergy.predictors.hef_law import HEFParameters
from fxenergy.predictors.power import PowerModel, node_energies
from fxenergy.records import COST, DURATION, TRACE

if TYPE_CHECKING:
    from fxenergy.hardware.schema import HardwareProfile

__all__ = ["HEFPredictor"]


@register_predictor("hef")
class HEFPredictor:
    requires: ClassVar[tuple[str, ...]] = (TRACE, COST, DURATION)

    def __init__(self, params: HEFParameters):
        self.params = params

    def predict(self, gm: torch.fx.GraphModule, profile: HardwareProfile) -> EnergyEstimate:
        power = PowerModel(profile)
        coeffs = self.params.energy
        elasticity = dict(coeffs.elasticity_j_per_s) if coeffs else {}
        fallback: set[str] = set()

        def energy(node, trace, cost, dur) -> float:  # noqa: ANN001
            if dur.family in elasticity and dur.model == "hef":
                return elasticity[dur.family] * dur.duration_s
            fallback.add(dur.family)
            return power.energy_j(cost, node_dtype(trace), dur.duration_s)

        energies = node_energies(gm, energy)
        notes = list(power.notes()) if fallback else []
        if fallback:
            notes.append(f"no HEF energy coefficient for {', '.join(sorted(fallback))}: costed with the "
                         f"{profile.name} power model")
        return EnergyEstimate(energies, coeffs.h_j if coeffs else 0.0, "hef", self.params.name, tuple(notes))
