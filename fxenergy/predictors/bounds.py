"""Physical bounds every estimate must respect, whatever backend produced it.

* every node's energy and duration finite and non-negative; the totals finite and positive;
* total duration >= the roofline bound (all FLOPs at the device's peak, a Winograd-eligible convolution's
  at its fewest multiplies, see :class:`~fxenergy.passes.lower_bound.LowerBound`; bytes at DRAM bandwidth for
  nodes whose working set exceeds the largest cache, free otherwise: a cache may serve the rest);
* total energy >= total duration x idle power (a device draws its idle power while it runs);
* mean power (node energies / total duration) <= the device's power limit. NB: a backend's per-run
  constant (seed 004's ``h``, seed 003's per-pass constants) is energy not spread over the nodes'
  time, so it is left out of the mean power; it still counts in the other bounds.

A backend that breaks one is reported as such (:class:`PhysicalBoundsError`), not printed as a number.

>>> check_totals(energy_j=1.0, duration_s=2.0, bound_s=0.5, idle_w=1.0, limit_w=10.0)
['energy 1 J < duration 2 s x idle 1 W = 2 J']
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from fxenergy.errors import UserInputError
from fxenergy.passes.lower_bound import LowerBound
from fxenergy.records import COST, DURATION, TRACE, get_record

if TYPE_CHECKING:
    from fxenergy.hardware.schema import HardwareProfile

__all__ = ["PhysicalBoundsError", "check_totals", "check_estimate", "device_bounds", "roofline_bound_s"]

_REL_TOL = 1e-6


class PhysicalBoundsError(UserInputError):
    """An estimate broke a physical bound; the message names the backend and the bound."""


def check_totals(*, energy_j: float, duration_s: float, bound_s: float, idle_w: float, limit_w: float,
                 node_energy_j: float | None = None) -> list[str]:
    """The bounds violated by run totals (empty when all hold); ``node_energy_j`` (default: all of
    ``energy_j``) is the share the mean power is computed from."""
    bad = []
    if not (math.isfinite(energy_j) and energy_j > 0):
        bad.append(f"total energy {energy_j!r} J is not finite and positive")
    if not (math.isfinite(duration_s) and duration_s > 0):
        bad.append(f"total duration {duration_s!r} s is not finite and positive")
    if bad:
        return bad
    if duration_s < bound_s * (1 - _REL_TOL):
        bad.append(f"duration {duration_s:.3g} s < roofline bound {bound_s:.3g} s")
    if energy_j < duration_s * idle_w * (1 - _REL_TOL):
        bad.append(f"energy {energy_j:.3g} J < duration {duration_s:.3g} s x idle {idle_w:.3g} W = "
                   f"{duration_s * idle_w:.3g} J")
    power = (energy_j if node_energy_j is None else node_energy_j) / duration_s
    if power > limit_w * (1 + _REL_TOL):
        bad.append(f"mean power {power:.4g} W > the device's limit {limit_w:.4g} W")
    return bad


def roofline_bound_s(gm: torch.fx.GraphModule, profile: HardwareProfile) -> float:
    """Sum over nodes with a duration of the lower bound described in the module docstring."""
    bound = LowerBound(profile)
    total = 0.0
    for node in gm.graph.nodes:
        if get_record(node, DURATION) is None:
            continue
        total += bound(get_record(node, COST), get_record(node, TRACE))
    return total


def device_bounds(profile: HardwareProfile, backend: Any = None) -> tuple[float, float]:
    """``(idle W, limit W)``: the backend's own figures where it has a power model, else the profile's
    (idle: its figure or 25% of TDP; limit: TDP)."""
    if backend is not None and hasattr(backend, "bounds"):
        return backend.bounds(profile)
    from fxenergy.perf.cpu import W_PER_CORE_GUESS
    from fxenergy.predictors.power import IDLE_FRACTION_ASSUMED

    tdp = profile.tdp_w if profile.tdp_w is not None else W_PER_CORE_GUESS * profile.compute_units
    idle = profile.idle_w if profile.idle_w is not None else IDLE_FRACTION_ASSUMED * tdp
    return float(idle), float(tdp)


def check_estimate(gm: torch.fx.GraphModule, estimate: Any, profile: HardwareProfile, backend: Any = None) -> list[str]:
    """Every violated bound of ``estimate`` (a :class:`~fxenergy.predictors.base.EnergyEstimate`)
    on the durations recorded in ``gm``; empty when the estimate is physical."""
    bad = []
    for name, e in estimate.node_energy_j.items():
        if not (math.isfinite(e) and e >= 0):
            bad.append(f"node {name}: energy {e!r} J")
            break
    duration = 0.0
    for node in gm.graph.nodes:
        d = get_record(node, DURATION)
        if d is not None:
            if not (math.isfinite(d.duration_s) and d.duration_s >= 0):
                bad.append(f"node {node.name}: duration {d.duration_s!r} s")
                break
            duration += d.duration_s
    if bad:
        return bad
    nodes = sum(estimate.node_energy_j.values())
    idle, limit = device_bounds(profile, backend)
    return check_totals(energy_j=nodes + estimate.overhead_j, duration_s=duration, bound_s=roofline_bound_s(gm, profile),
                        idle_w=idle, limit_w=limit, node_energy_j=nodes)
