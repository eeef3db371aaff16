"""Duration pass: predicted execution time of every node on one hardware profile.

Four models, selectable per run:

* ``roofline`` — ``t = max(flops / peak_flops, bytes / bandwidth) + launches × overhead``. Contraction
  FLOPs (``flops``) run at the dtype's matrix peak (tensor cores for fp16/bf16 on GPUs; fp32 is the
  plain fp32 figure, as PyTorch disables TF32 matmuls by default); ``elementwise_flops`` run at the
  fp32 vector peak. ``launches`` is the number of non-free ATen calls of the node (one kernel each).
* ``hef`` — seed 004 Eq. 3/4: ``t = c / (v_max · η(c))`` with ``η(c) = η_max (1 − exp(−k c^α))`` per op
  family, ``c`` being FLOPs for compute-bound families and bytes moved for memory-bound ones. A family
  the parameter set has no curve for falls back to the roofline, and the record says so
  (``model="roofline-fallback"``): never a silent zero.
* ``cpu`` — :mod:`fxenergy.perf.cpu`: kernel classes (dense / 1x1 / grouped / depthwise convolutions
  apart), a fixed per-op dispatch cost, and memory-bound work at the bandwidth of the cache level the
  node's working set fits in; spec-sheet or calibrated, at a given thread count.
* ``learned`` — GPUs: per-kernel durations from the performance model learned across GPUs
  (:mod:`fxenergy.perf.model`; ``params`` is its :class:`~fxenergy.perf.model.LearnedGPUModel`).

NB: one kernel per ATen call and no overlap between nodes (a serial, unfused execution model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from fxenergy.errors import UserInputError
from fxenergy.passes.families import work_for
from fxenergy.passes.lower_bound import LowerBound
from fxenergy.passes.ops import family_of, lookup
from fxenergy.records import (
    COST,
    DURATION,
    TRACE,
    NodeCost,
    NodeDuration,
    NodeTrace,
    get_record,
    node_dtype,
    put_record,
)

if TYPE_CHECKING:  # the pass only calls .families and .duration_s of a parameter set
    from fxenergy.hardware import HardwareProfile
    from fxenergy.perf.model import LearnedGPUModel
    from fxenergy.predictors.hef_law import HEFParameters

__all__ = ["DurationPass", "DURATION_MODELS", "roofline_duration_s", "node_dtype", "LowerBound"]

DURATION_MODELS = ("roofline", "hef", "learned", "cpu")


def _launches(trace: NodeTrace) -> int:
    return sum(1 for c in trace.calls if lookup(c.op) != (True, None))


@dataclass(frozen=True, slots=True)
class _Peaks:
    matrix_flops: float
    vector_flops: float
    bytes_per_s: float
    launch_s: float


def _peaks(profile: HardwareProfile, dtype: torch.dtype) -> _Peaks:
    return _Peaks(
        matrix_flops=profile.peak_flops_for(dtype),
        vector_flops=profile.peak_flops_for(torch.float32, tensor_cores=False),
        bytes_per_s=profile.memory_bandwidth_bytes_per_s,
        launch_s=profile.kernel_launch_overhead_s,
    )


def roofline_duration_s(cost: NodeCost, launches: int, peaks: _Peaks) -> float:
    compute = cost.flops / peaks.matrix_flops + cost.elementwise_flops / peaks.vector_flops
    memory = (cost.bytes_read + cost.bytes_written) / peaks.bytes_per_s
    return max(compute, memory) + launches * peaks.launch_s


class DurationPass:
    """Adds a :class:`~fxenergy.records.NodeDuration` to every node that does work. Requires: trace, cost."""

    requires = (TRACE, COST)
    provides = DURATION

    def __init__(self, profile: HardwareProfile, model: str = "roofline", params: HEFParameters | LearnedGPUModel | None = None,
                 cpu_model: Any = None):  # fxenergy.perf.cpu.CpuDurationModel for model="cpu"
        if model not in DURATION_MODELS:
            raise UserInputError(f"unknown duration model {model!r}; choose one of: {', '.join(DURATION_MODELS)}")
        if model == "learned" and params is None:
            from fxenergy.perf.model import LearnedGPUModel

            params = LearnedGPUModel(profile)
        if model == "hef" and params is None:
            raise UserInputError("the hef duration model needs a HEF parameter set (see `fxenergy hardware list`)")
        if model == "cpu" and cpu_model is None:
            from fxenergy.perf.cpu import CpuDurationModel

            cpu_model = CpuDurationModel(profile)
        self.profile = profile
        self.model = model
        self.params: Any = params  # HEFParameters (model 'hef') or LearnedGPUModel (model 'learned')
        self.cpu_model = cpu_model
        self._peaks: dict[torch.dtype, _Peaks] = {}
        self._bound = LowerBound(profile)

    def __call__(self, gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
        if self.model == "learned":  # whole-graph: the learned model predicts all kernels in one batch
            self.params.annotate(gm)
            return gm
        if self.model == "cpu":  # heap page faults depend on the whole graph's outputs (fxenergy.perf.cpu)
            from fxenergy.perf.cpu import heap_fault_share

            self.cpu_model.heap_share = heap_fault_share(get_record(n, TRACE) for n in gm.graph.nodes)
        # A node's roofline/HEF duration is a function of its ATen calls and its cost alone; nodes
        # that share one recorded call tuple (a replayed layer's copies, see capture._Replay) and
        # have equal costs get the one duration computed for the first. The CPU model keeps its
        # own per-node logic (perf/cpu.py), so its durations are still computed node by node.
        memo: dict[tuple[int, NodeCost], NodeDuration] | None = {} if self.model != "cpu" else None
        for node in gm.graph.nodes:
            trace = get_record(node, TRACE)
            if trace is None or trace.phase == "input":
                continue
            cost = get_record(node, COST, required_by=type(self).__name__)
            if cost.free:
                continue
            if memo is None:
                put_record(node, DURATION, self.node_duration(trace, cost))
                continue
            key = (id(trace.calls), cost)  # every trace stays alive in the graph: ids are not reused
            d = memo.get(key)
            if d is None:
                d = memo[key] = self.node_duration(trace, cost)
            put_record(node, DURATION, d)
        return gm

    def node_duration(self, trace: NodeTrace, cost: NodeCost) -> NodeDuration:
        family = family_of(cost.op)
        dtype = node_dtype(trace)
        peaks = self._peaks.get(dtype) or self._peaks.setdefault(dtype, _peaks(self.profile, dtype))
        launches = _launches(trace)
        if self.model == "cpu":
            t, model, cls = self.cpu_model.node_duration(trace, cost, launches)
            return NodeDuration(t, model, cls)
        if self.model == "hef" and self.params is not None:
            law = self.params.families.get(family)
            if law is not None:
                work = work_for(law.basis, flops=cost.flops, elementwise_flops=cost.elementwise_flops,
                                bytes_moved=cost.bytes_read + cost.bytes_written)
                if work > 0:
                    t = float(self.params.duration_s(family, work)) + max(launches - 1, 0) * peaks.launch_s
                    # a power law extrapolated past its data may promise more than the device can do
                    return NodeDuration(max(t, self._bound(cost, trace)), "hef", family)
            return NodeDuration(roofline_duration_s(cost, launches, peaks), "roofline-fallback", family)
        return NodeDuration(roofline_duration_s(cost, launches, peaks), "roofline", family)
