"""The physically grounded default: roofline utilisation mapped onto power between idle and TDP.

For a node of duration ``t`` whose roofline-bound time (at peak compute or peak bandwidth, whichever
binds) is ``t_bound``, utilisation is ``u = min(1, t_bound / t)`` and power is
``P = P_idle + (P_tdp − P_idle) · u``; energy is ``P · t``. Idle power comes from the profile; where the
profile has none, 25% of TDP is assumed, and the estimate's notes say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from fxenergy.errors import UserInputError
from fxenergy.passes.durations import node_dtype
from fxenergy.predictors.base import EnergyEstimate, register_predictor
from fxenergy.records import COST, DURATION, TRACE, NodeCost, get_record

if TYPE_CHECKING:
    from fxenergy.hardware.schema import HardwareProfile

__all__ = ["PowerModel", "RooflinePowerPredictor", "IDLE_FRACTION_ASSUMED"]

IDLE_FRACTION_ASSUMED = 0.25


class PowerModel:
    """Node power from utilisation, for one hardware profile."""

    def __init__(self, profile: HardwareProfile):
        self.profile = profile
        if profile.tdp_w is None:
            raise UserInputError(
                f"hardware profile {profile.name!r} has no TDP, which energy needs; run `fxenergy calibrate` "
                "(it measures or estimates one) or pass a profile with tdp_w"
            )
        self.tdp_w = float(profile.tdp_w)
        self.idle_assumed = profile.idle_w is None
        self.idle_w = self.tdp_w * IDLE_FRACTION_ASSUMED if profile.idle_w is None else float(profile.idle_w)

    def bound_time_s(self, cost: NodeCost, dtype: torch.dtype) -> float:
        p = self.profile
        compute = cost.flops / p.peak_flops_for(dtype) + cost.elementwise_flops / p.peak_flops_for(
            torch.float32, tensor_cores=False)
        return max(compute, (cost.bytes_read + cost.bytes_written) / p.memory_bandwidth_bytes_per_s)

    def energy_j(self, cost: NodeCost, dtype: torch.dtype, duration_s: float) -> float:
        if duration_s <= 0:
            return 0.0
        u = min(1.0, self.bound_time_s(cost, dtype) / duration_s)
        return (self.idle_w + (self.tdp_w - self.idle_w) * u) * duration_s

    def notes(self) -> tuple[str, ...]:
        out = []
        if self.profile.is_estimated("tdp_w"):
            out.append(f"{self.profile.name}: TDP {self.tdp_w:.0f} W is an estimate ({self.profile.source_of('tdp_w')})")
        if self.idle_assumed:
            out.append(f"{self.profile.name}: idle power not in the profile; {IDLE_FRACTION_ASSUMED:.0%} of TDP "
                       f"({self.idle_w:.0f} W) assumed")
        return tuple(out)


def node_energies(gm: torch.fx.GraphModule, energy_of) -> dict[str, float]:  # noqa: ANN001
    """``{node name: energy_of(node, trace, cost, duration)}`` over nodes that have a duration."""
    out = {}
    for node in gm.graph.nodes:
        dur = get_record(node, DURATION)
        if dur is not None:
            out[node.name] = float(energy_of(node, get_record(node, TRACE), get_record(node, COST), dur))
    return out


@register_predictor("roofline")
class RooflinePowerPredictor:
    """Default energy backend for any profile: roofline utilisation × (idle … TDP) power."""

    requires: ClassVar[tuple[str, ...]] = (TRACE, COST, DURATION)

    def predict(self, gm: torch.fx.GraphModule, profile: HardwareProfile) -> EnergyEstimate:
        power = PowerModel(profile)
        energies = node_energies(gm, lambda n, tr, c, d: power.energy_j(c, node_dtype(tr), d.duration_s))
        return EnergyEstimate(energies, 0.0, "roofline", f"{profile.name} profile (idle..TDP power)", power.notes())
