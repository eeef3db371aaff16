"""``learned``: the default GPU backend. Durations from the per-op-family performance model learned
across GPUs, power from the per-family board-power model (both in :mod:`fxenergy.perf`).

Energy = Σ node power × node duration. The durations are the ``learned`` duration model's
(:class:`fxenergy.passes.durations.DurationPass` with ``model="learned"``); a graph whose durations came
from another model is refused rather than mixed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from fxenergy.errors import UserInputError
from fxenergy.predictors.base import EnergyEstimate, register_predictor
from fxenergy.predictors.interface import check_fitted
from fxenergy.records import COST, DURATION, TRACE, get_record

if TYPE_CHECKING:
    from fxenergy.hardware.schema import HardwareProfile

__all__ = ["LearnedGPUPredictor"]


@register_predictor("learned")
class LearnedGPUPredictor:
    """Per-node board power (idle … power limit, by family and achieved utilisation) × learned duration."""

    name: ClassVar[str]  # set by @register_predictor
    requires: ClassVar[tuple[str, ...]] = (TRACE, COST, DURATION)

    def __init__(self, params: Any = None, *, matmul_precision: str | None = None, conv_tf32: bool | None = None,
                 power_limit_w: float | None = None, correction: Any = None):
        from fxenergy.perf.model import DEFAULT_PARAMS, PerfParams, load_perf_params

        self.correction = correction  # a calibration file's "learned" section (fxenergy.calibrate.gpu), or None
        self.params_ = params if isinstance(params, PerfParams) else load_perf_params(params or DEFAULT_PARAMS)
        self.matmul_precision = matmul_precision
        self.conv_tf32 = conv_tf32
        self.power_limit_w = power_limit_w

    def model(self, profile: HardwareProfile):  # noqa: ANN201 - LearnedGPUModel
        from fxenergy.perf.model import LearnedGPUModel

        cached = getattr(self, "_model", None)
        if cached is None or cached.profile is not profile:  # one instance per profile: it caches node bounds
            cached = LearnedGPUModel(profile, self.params_, matmul_precision=self.matmul_precision,
                                     conv_tf32=self.conv_tf32, power_limit_w=self.power_limit_w,
                                     correction=self.correction)
            self._model = cached
        return cached

    def predict(self, gm: torch.fx.GraphModule, profile: HardwareProfile) -> EnergyEstimate:
        check_fitted(self, "params_")
        model = self.model(profile)
        energies = {}
        for node in gm.graph.nodes:
            dur = get_record(node, DURATION)
            if dur is None:
                continue
            if dur.model != "learned":
                raise UserInputError(f"the learned backend needs learned durations; node {node.name} has {dur.model!r} "
                                     "(run DurationPass with model='learned')")
            energies[node.name] = model.node_energy_j(get_record(node, COST), get_record(node, TRACE), dur, node.name)
        err, basis = self.params_.expected_error(profile.name)
        expected = {"pct": err, "quantity": "time", "basis": basis} if math.isfinite(err) else None
        return EnergyEstimate(energies, 0.0, "learned", self.params_.name, model.notes(), expected)
