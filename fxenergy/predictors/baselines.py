"""The baselines seed 002 compares its estimators against, as energy backends (``--predictor mlco2|green-algorithms|flops``).

All three take the node durations the duration pass predicts (roofline or HEF, as for every backend)
and put a fixed power, or a fixed energy per FLOP, on them; none looks at utilisation. They are here
to show how far the common rules of thumb sit from the graph-based backends (``--predictor all``).
PUE defaults to 1 (device energy, comparable with the other backends); the training estimate
applies PUE once, in its carbon step.

* **MLCO2** (Lacoste et al. 2019, "Quantifying the Carbon Emissions of Machine Learning", the ML CO2
  Impact calculator): ``E = TDP × hours × PUE``.
* **Green Algorithms** (Lannelongue, Grealey, Inouye 2021, Advanced Science 8(12) 2100707):
  ``E = (n_cores × TDP_per_core × usage + memory_GB × 0.3725 W/GB) × hours × PUE × PSF``. For a GPU
  profile, one "core" is the whole device (``TDP_per_core`` = TDP) and memory is the device memory; for a CPU
  profile the cores are ``compute_units`` and ``TDP_per_core`` = TDP / cores. ``usage`` defaults to 1
  (the tool's default when unknown), PSF (pragmatic scaling factor: repeated runs) to 1.
* **FLOPs-only**: ``E = FLOPs × J/FLOP`` with ``J/FLOP = TDP / peak FP32 FLOP/s`` of the profile (the
  energy of one FLOP at full power and full throughput), or a ``j_per_flop`` given; FLOPs here are
  ``flops + elementwise_flops`` of each node (``flops = 2 × MACs``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from fxenergy.errors import UserInputError
from fxenergy.predictors.base import EnergyEstimate, register_predictor
from fxenergy.predictors.power import node_energies
from fxenergy.records import COST, DURATION, TRACE

if TYPE_CHECKING:
    from fxenergy.hardware.schema import HardwareProfile

__all__ = ["MLCO2Predictor", "GreenAlgorithmsPredictor", "FlopsOnlyPredictor", "GA_W_PER_GB", "BASELINES"]

BASELINES = frozenset({"mlco2", "green-algorithms", "flops"})
"""Backend names that are rules of thumb: ``--predictor all`` shows them but leaves them out of the band."""

GA_W_PER_GB = 0.3725  # Green Algorithms: memory power draw per GB (Lannelongue et al. 2021)


def _number(name: str, value: Any, lo: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= lo):
        raise UserInputError(f"{name} must be a finite number >= {lo:g}, got {value!r}")
    return float(value)


def _tdp(profile: HardwareProfile, who: str) -> float:
    if profile.tdp_w is None:
        raise UserInputError(f"{who} needs the profile's TDP; {profile.name} has none")
    return float(profile.tdp_w)


def _bounds_with(profile: HardwareProfile, power_w: float) -> tuple[float, float]:
    """The device's idle power (fxenergy.predictors.bounds' rule) and the larger of its limit and ``power_w``."""
    from fxenergy.predictors.bounds import device_bounds

    idle, limit = device_bounds(profile)
    return idle, max(limit, power_w)


@register_predictor("mlco2")
class MLCO2Predictor:
    """MLCO2: TDP × time × PUE (Lacoste et al. 2019)."""

    requires: ClassVar[tuple[str, ...]] = (TRACE, DURATION)

    def __init__(self, *, pue: float = 1.0):
        self.pue = _number("pue", pue, 1.0)

    def bounds(self, profile: HardwareProfile) -> tuple[float, float]:
        """``(idle W, limit W)`` of what this baseline prices: the device at TDP, times the PUE."""
        return _bounds_with(profile, _tdp(profile, "mlco2") * self.pue)

    def predict(self, gm: torch.fx.GraphModule, profile: HardwareProfile) -> EnergyEstimate:
        p = _tdp(profile, "mlco2") * self.pue
        e = node_energies(gm, lambda n, tr, c, d: p * d.duration_s)
        return EnergyEstimate(e, 0.0, "mlco2", f"{profile.name}: TDP {p / self.pue:g} W x time x PUE {self.pue:g}",
                              ("MLCO2 baseline: E = TDP x hours x PUE (Lacoste et al. 2019)",))


@register_predictor("green-algorithms")
class GreenAlgorithmsPredictor:
    """Green Algorithms: (cores × TDP/core × usage + GB × 0.3725 W) × time × PUE × PSF."""

    requires: ClassVar[tuple[str, ...]] = (TRACE, DURATION)

    def __init__(self, *, usage: float = 1.0, memory_gb: float | None = None, pue: float = 1.0, psf: float = 1.0):
        self.usage = _number("usage", usage, 0.0)
        if self.usage > 1:
            raise UserInputError(f"usage is a fraction in [0, 1], got {usage}")
        self.memory_gb = None if memory_gb is None else _number("memory_gb", memory_gb, 0.0)
        self.pue = _number("pue", pue, 1.0)
        self.psf = _number("psf", psf, 1.0)

    def power_w(self, profile: HardwareProfile) -> float:
        tdp = _tdp(profile, "green-algorithms")
        cores = 1 if profile.kind == "gpu" else max(int(profile.compute_units), 1)
        mem = self.memory_gb if self.memory_gb is not None else profile.memory_bytes / 2**30
        return cores * (tdp / cores) * self.usage + mem * GA_W_PER_GB

    def bounds(self, profile: HardwareProfile) -> tuple[float, float]:
        """``(idle W, limit W)`` of what this baseline prices: the device plus its memory (0.3725 W/GB),
        times PUE and PSF; so its power may exceed the device's TDP."""
        return _bounds_with(profile, self.power_w(profile) * self.pue * self.psf)

    def predict(self, gm: torch.fx.GraphModule, profile: HardwareProfile) -> EnergyEstimate:
        p = self.power_w(profile) * self.pue * self.psf
        e = node_energies(gm, lambda n, tr, c, d: p * d.duration_s)
        return EnergyEstimate(e, 0.0, "green-algorithms",
                              f"{profile.name}: usage {self.usage:g}, PUE {self.pue:g}, PSF {self.psf:g}",
                              ("Green Algorithms baseline: E = (cores x TDP/core x usage + memory GB x 0.3725 W/GB) x "
                               "hours x PUE x PSF (Lannelongue et al. 2021)",))


@register_predictor("flops")
class FlopsOnlyPredictor:
    """FLOPs × a stated J/FLOP (default: TDP / peak FP32 FLOP/s of the profile)."""

    requires: ClassVar[tuple[str, ...]] = (TRACE, COST)

    def __init__(self, *, j_per_flop: float | None = None):
        self.j_per_flop = None if j_per_flop is None else _number("j_per_flop", j_per_flop, 0.0)

    def predict(self, gm: torch.fx.GraphModule, profile: HardwareProfile) -> EnergyEstimate:
        jpf = self.j_per_flop
        src = "given"
        if jpf is None:
            jpf = _tdp(profile, "flops") / profile.peak_flops["fp32"]
            src = f"TDP {profile.tdp_w:g} W / peak fp32 {profile.peak_flops['fp32']:.3g} FLOP/s"
        e = {}
        for node in gm.graph.nodes:
            from fxenergy.records import get_record

            c = get_record(node, COST)
            if c is not None and get_record(node, TRACE) is not None:
                e[node.name] = (c.flops + c.elementwise_flops) * jpf
        return EnergyEstimate(e, 0.0, "flops", f"{profile.name}: {jpf:.3g} J/FLOP ({src})",
                              (f"FLOPs-only baseline: E = FLOPs x {jpf:.3g} J/FLOP ({src})",))
