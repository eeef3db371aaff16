"""The learned GPU model at run time: node durations (per-kernel, learned across GPUs) and node power.

Per traced ATen call: its kernels (:mod:`fxenergy.perf.kernels`), each kernel's roofline bound and
learned slowdown over it (:mod:`fxenergy.perf.features`, :mod:`fxenergy.perf.trees`), then

* ``t_kernel = t_bound · exp(max(0, f_family(x)))`` (never below the roofline bound; a Winograd-eligible
  convolution, :func:`fxenergy.perf.kernels.winograd_eligible`, never below its bound over
  ``WINOGRAD_MULTIPLY_FACTOR``: the fewest multiplies cuDNN's algorithms need); memory families with a
  fitted achieved-bandwidth law (:mod:`fxenergy.perf.memory_law`, ``memory_law`` in the JSON) use it
  instead of their trees (files without one: the trees, as before);
* backward kernels times the fitted ``backward_factor`` of their family; tensor-core kernels
  (TF32/fp16/bf16) over their own peak times ``tensor_core_factor``;
* ``t_call = max(Σ t_kernel, floor)``: eager PyTorch cannot issue ATen calls faster than its per-call
  dispatch floor, so tiny kernels cost that floor. The floor is a property of the setting (host CPU, eager
  PyTorch, the library's host path): per family where the GPU's own per-operator rows measured it
  (``dispatch_floors``, the A30 and RTX 2080 Ti hosts of gpu-operators-nicolai), else ``dispatch_floor_s``;
* a node's duration is the sum of its calls, and at least the node's roofline bound (Winograd-aware as above;
  the power model's utilisation ``u`` stays over the direct-count bound it was fitted with).
  ``SCHEDULE = "loop"`` or ``"pass"`` (off by default; docs/validation.md, gpu11) prices a whole graph as a host/GPU
  schedule in graph order instead (:func:`gpu_timeline_s`): host cost = the call's floor, GPU time = its kernels,
  a node's duration = its increment of the GPU timeline (so never below its kernels nor its bound).

Power per node: ``P = idle + (limit − idle) · clip(a_f + b_f · u + δ_phase, 0, 1)`` with ``u = t_bound / t``
(achieved fraction of the roofline), ``a_f, b_f`` fitted per family on measured board power (separate
``conv_tc``/``gemm_tc`` lines for tensor-core kernels; the clipped line itself is fitted, since boards
sit at their limit on heavy layers), and ``δ_phase`` the training-step uplift of backward and optimizer
nodes (0 for forward nodes; fitted on whole-model A30 training steps, leave-one-model-out checked in
benchmarks/gpu_models.py). Node energy = P · t. All coefficients come from one JSON artifact
(``learned-gpu``), no pickle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils import _pytree as pytree

from fxenergy.errors import UserInputError
from fxenergy.passes.costs import get_convention, lookup, op_arith, op_bytes
from fxenergy.passes.lower_bound import LowerBound
from fxenergy.perf.device import DeviceSpec, check_math_options, device_spec
from fxenergy.perf.features import chip_key, correction_log, design_features, features
from fxenergy.perf.kernels import (
    WINOGRAD_MULTIPLY_FACTOR,
    Kernel,
    foreach_launches,
    is_sdpa_target,
    kernels_of_call,
    memory_kernel,
    optimizer_period,
    sdpa_kernels_of_calls,
)
from fxenergy.perf.memory_law import MemoryLaw, law_covers
from fxenergy.perf.trees import Forest
from fxenergy.records import COST, DURATION, TRACE, NodeDuration, TensorSpec, get_record, node_dtype, put_record

if TYPE_CHECKING:
    from fxenergy.hardware.schema import HardwareProfile

__all__ = ["clear_predictions", "PerfParams", "load_perf_params", "LearnedGPUModel", "DEFAULT_PARAMS", "MEMORY_FAMILIES",
           "SCHEDULES", "gpu_timeline_s"]

DEFAULT_PARAMS = "learned-gpu"
# the phases whose calls pay a setting's own dispatch floors (PerfParams.dispatch_floors); the floors were measured
# on forward module calls (gpu-operators-nicolai: a Python module, its functional, the library's host path).
# Calls of other phases (autograd's C++ engine, the optimizer) pay the pooled ``dispatch_floor_s``.
SETTING_FLOOR_PHASES: tuple[str, ...] = ("forward", "backward", "optimizer")
# how a scaled_dot_product_attention node is priced: "auto" = the CUDA kernel PyTorch's SDPA dispatch picks
# (flash / memory-efficient fused kernel, else math); "math" = always its math decomposition (what a model
# built with attn_implementation="eager" runs). See kernels.sdpa_backend.
SDPA_PRICING = "auto"
MEMORY_FAMILIES = ("elementwise", "reduction", "gather", "copy")
# how a whole graph's GPU time is put together from its calls (docs/validation.md, gpu11):
# "max"  = each call costs max(its kernels, its dispatch floor) and the graph is the sum: every call waits for the
#          one before it (right for a loop of one module; what the Nicolai and NeuSight rows measure);
# "loop" = a host/GPU schedule in graph order (gpu_timeline_s): the host issues call i after the host costs of the
#          calls before it, its kernels start when both the host has issued them and the GPU has finished the
#          previous call; the steady state of a loop with no per-iteration sync (eager PyTorch's host runs ahead);
# "pass" = the same schedule for one pass from an idle GPU with the host waiting at its end (a sync per pass).
# A one-call loop costs max(kernels, floor) under "loop", as under "max".
SCHEDULES = ("max", "loop", "pass")
SCHEDULE = "max"
_DEFAULT_CONV = get_convention("default")


def power_coefficients_for(power: Mapping[str, Any], device: str, family: str, tensor_cores: bool = False) -> tuple[float, float]:
    """``(a, b)`` of the board-power line of ``family`` (``<family>_tc`` for tensor-core kernels where fitted)."""
    table = power.get("devices", {}).get(device) or power["default"]
    coef = None
    if tensor_cores:
        coef = table.get(f"{family}_tc") or power["default"].get(f"{family}_tc")
    a, b = coef or table.get(family) or table.get("elementwise") or power["default"]["elementwise"]
    return float(a), float(b)





def gpu_timeline_s(host_s: np.ndarray, kernel_s: np.ndarray, mode: str = "loop") -> np.ndarray:
    """Per call, its increment of the GPU timeline (s) when calls are issued in order by one host thread.

    ``host_s[i]``: the host's cost of issuing call ``i`` (its dispatch floor); ``kernel_s[i]``: its kernels' time.
    With ``ready_i = Σ_{j<=i} host_j`` and ``end_i = max(ready_i, end_{i-1}) + kernel_i`` (a linear scan:
    ``end_i = K_i + max_{j<=i}(ready_j − K_{j−1})``, ``K`` the running kernel sum), ``mode``:

    * ``"pass"``: one pass from an idle GPU; the increments are ``end_i − end_{i−1}`` (sum: ``end_n``, the host
      waits for the GPU at the end);
    * ``"loop"``: the steady state of the pass repeated with no sync (the host runs ahead across iterations):
      when the kernels outweigh the host (``Σ kernel >= Σ host``) the GPU never idles and each call costs its
      kernels; else the host sets the period ``Σ host`` and the increments are those of a second iteration
      (the GPU's lag behind the host reaches its fixed point after one). A one-call loop costs
      ``max(host, kernel)``.

    Every increment is at least the call's kernel time; the increments sum to the pass's (loop's) time.
    """
    h = np.asarray(host_s, dtype=float)
    k = np.asarray(kernel_s, dtype=float)
    if mode not in ("loop", "pass"):
        raise ValueError(f"schedule must be 'loop' or 'pass', got {mode!r}")
    if len(k) == 0:
        return k.copy()
    ready = np.cumsum(h)
    run = np.cumsum(k)
    lead = np.maximum.accumulate(ready - (run - k))  # the latest the GPU had to wait for the host, up to i
    end = run + lead
    if mode == "pass":
        inc = np.diff(end, prepend=0.0)
    elif run[-1] >= ready[-1]:
        return k.copy()
    else:
        end1 = end[-1]  # the second iteration: host at ready[-1] + ready, GPU free from end1
        inc = np.diff(np.maximum(end1 + run, ready[-1] + end), prepend=end1)
    # differences of running sums lose the last digits of a tiny call next to a long pass; the exact increment
    # is never below the call's kernels
    return np.maximum(inc, k)


def clear_predictions(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Drop the duration and energy records, so one captured graph can be predicted on another device."""
    from fxenergy.records import ENERGY, META_KEY

    for node in gm.graph.nodes:
        bucket = node.meta.get(META_KEY, {})
        bucket.pop(DURATION, None)
        bucket.pop(ENERGY, None)
    return gm


@dataclass(frozen=True)
class PerfParams:
    name: str
    forests: Mapping[str, Forest]
    alias: Mapping[str, str]
    dispatch_floor_s: float
    backward_factor: Mapping[str, float]
    tensor_core_factor: float
    power: dict[str, Any]  # {"default": {family: [a, b]}, "devices": {profile: {family: [a, b]}}}
    validated: Mapping[str, Any]
    fitted_on: Any
    # training steps: added to the board-power fraction of backward / optimizer nodes (benchmarks/gpu_models.py
    # --fit-training, leave-one-model-out on the A30 whole-model training rows); empty = no uplift
    training_power: Mapping[str, float] = field(default_factory=dict)
    # GPUs whose die is in the kernel data: {chip_key: {family: curve}} (features.correction_log), fitted
    # on that GPU's own fp32 kernel rows; applied to CUDA-core (non tensor-core) kernels only; empty = none
    chip_correction: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # memory families priced by an achieved-bandwidth law instead of their forest (fxenergy.perf.memory_law);
    # empty (files written before it) = every family by its forest
    memory_law: Mapping[str, MemoryLaw] = field(default_factory=dict)
    # GPUs whose die is in the kernel data: {chip_key: {family: {"law": MemoryLaw} | {"curve": curve}}} fitted on
    # that die's own rows, for the kernels a law prices: its own law instead of the pooled one, or a correction
    # curve of the pooled law (features.correction_log); chip_correction stays the forests'; empty = none
    chip_memory_law: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    # per profile and family, the dispatch floor measured on that GPU's own setting (fxenergy.perf.nicolai.
    # setting_floors); a profile or family not in it gets dispatch_floor_s; empty (files before gpu10) = none
    dispatch_floors: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def floor_s(self, profile: str, family: str) -> float:
        """The per-call dispatch floor of ``family`` (gather and copy as elementwise; ``batch_norm`` for a batch
        norm call) on ``profile``'s setting."""
        fam = self.alias.get(family, family)
        return float(self.dispatch_floors.get(profile, {}).get(fam, self.dispatch_floor_s))

    def forest(self, family: str) -> Forest:
        return self.forests[self.alias.get(family, family)]

    def expected_error(self, device: str) -> tuple[float, str]:
        """``(expected duration error in %, what it was validated on)`` for a device name."""
        from fxenergy.perf.validated import lookup

        return lookup(self.validated, device) or (float("nan"), "not validated")


@lru_cache(maxsize=8)
def load_perf_params(name_or_path: str = DEFAULT_PARAMS) -> PerfParams:
    from fxenergy.predictors.interface import load_artifact

    art = load_artifact("learned", name_or_path)
    p = art["params"]
    try:
        return PerfParams(
            name=str(name_or_path).rsplit("/", 1)[-1].removesuffix(".json"),
            forests={f: Forest(d) for f, d in p["families"].items()},
            alias=dict(p.get("family_alias", {})),
            dispatch_floor_s=float(p["dispatch_floor_s"]),
            backward_factor={k: float(v) for k, v in p.get("backward_factor", {}).items()},
            tensor_core_factor=float(p.get("tensor_core_factor", 1.0)),
            power=p["power"],
            validated=p.get("validated", {}),
            fitted_on=art["fitted_on"],
            training_power={k: float(v) for k, v in p.get("training_power", {}).get("uplift", {}).items()},
            chip_correction=dict(p.get("chip_correction", {}).get("chips", {})),
            memory_law={f: MemoryLaw.from_json(d) for f, d in p.get("memory_law", {}).items()},
            chip_memory_law={c: {f: _chip_law_entry(d) for f, d in fams.items() if f != "fitted_on_profile"}
                             for c, fams in p.get("chip_memory_law", {}).items() if c != "check"},
            dispatch_floors={str(d): {str(f): float(v) for f, v in fl.items()}
                             for d, fl in p.get("dispatch_floors", {}).items()},
        )
    except (KeyError, TypeError, ValueError) as e:
        raise UserInputError(f"learned parameter file {name_or_path!r} is malformed ({type(e).__name__}: {e})") from None


def _chip_law_entry(d: Mapping[str, Any]) -> dict[str, Any]:
    if "law" in d:
        return {"law": MemoryLaw.from_json(d["law"])}
    if "curve" in d:
        return {"curve": dict(d["curve"])}
    raise ValueError(f"chip_memory_law entry has neither 'law' nor 'curve': {sorted(d)}")


def _fast_fp32_bounds(kernels: list[Kernel], dev: DeviceSpec, bound: np.ndarray) -> np.ndarray:
    """Roofline bounds of fp32 kernels that run as 3xTF32 on tensor cores (never above the fp32 bound)."""
    peak = max(dev.peak_flops["tf32"] / 3.0, dev.peak_flops["fp32"])
    out = np.array([max(k.flops / peak + k.ew_flops / dev.peak_flops["fp32"], k.bytes / dev.bandwidth_bytes_per_s)
                    for k in kernels])
    return np.minimum(out, bound)


class LearnedGPUModel:
    """Durations and power of a graph's nodes on one GPU profile, under PyTorch's math modes."""

    def __init__(self, profile: HardwareProfile, params: PerfParams | str | None = None, *, matmul_precision: str | None = None,
                 conv_tf32: bool | None = None, power_limit_w: float | None = None,
                 correction: Mapping[str, Any] | None = None, sdpa: str | None = None, schedule: str | None = None):
        self.params = params if isinstance(params, PerfParams) else load_perf_params(params or DEFAULT_PARAMS)
        self._lower: LowerBound | None = None  # made on the first fused attention node (_node_floor_s)
        # a calibration's per-family corrections (fxenergy.calibrate.gpu): log-scale on kernel durations,
        # offset on the board-power fraction; empty = the shipped model as fitted
        self.sdpa = sdpa or SDPA_PRICING
        if self.sdpa not in ("auto", "math"):
            raise UserInputError(f"sdpa pricing must be 'auto' or 'math', got {self.sdpa!r}")
        self.schedule = schedule or SCHEDULE
        if self.schedule not in SCHEDULES:
            raise UserInputError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        corr = correction or {}
        self.duration_log_scale = {str(k): float(v) for k, v in corr.get("duration_log_scale", {}).items()}
        self.power_offset = {str(k): float(v) for k, v in corr.get("power_offset", {}).items()}
        self.matmul_precision, self.conv_tf32 = check_math_options(matmul_precision, conv_tf32)
        self.profile = profile
        self.device: DeviceSpec = device_spec(profile, power_limit_w)
        self._bounds: dict[str, float] = {}  # node name -> roofline bound, from the last annotate()

    # -- durations -------------------------------------------------------------------------------------
    def kernel_durations_s(self, kernels: list[Kernel]) -> tuple[np.ndarray, np.ndarray]:
        """``(t_kernel, t_bound)`` per kernel, before the per-call dispatch floor."""
        n = len(kernels)
        t = np.empty(n)
        tb = np.empty(n)
        fam = np.array([self.params.alias.get(k.family, k.family) for k in kernels])
        chip = self.params.chip_correction.get(chip_key(self.profile) or "", {})
        for f in set(fam.tolist()):
            idx = np.flatnonzero(fam == f)
            ks = [kernels[i] for i in idx]
            geometry = f in ("gemm", "conv")
            X, bound = features(ks, self.device, geometry=geometry,
                                matmul_precision=self.matmul_precision, conv_tf32=self.conv_tf32)
            names = design_features(geometry)
            law = self.memory_law(f)
            own = self.params.chip_memory_law.get(chip_key(self.profile) or "", {}).get(f, {})
            by_law = law_covers(f, ks) if law is not None else np.zeros(len(ks), bool)
            slow = np.ones(len(ks))
            if law is not None and by_law.any():  # an achieved-bandwidth law (memory kernels it was fitted on)
                slow[by_law] = law.slowdown([k for k, b in zip(ks, by_law) if b], self.device, bound[by_law])
            if not by_law.all():  # the forest picks its own columns
                slow[~by_law] = np.exp(np.maximum(self.params.forest(f).predict(X[~by_law], names), 0.0))
            tc = X[:, names.index("tensor_cores")] > 0 if "tensor_cores" in names else np.zeros(len(ks), bool)
            # never below the roofline; a Winograd-eligible conv never below it over WINOGRAD_MULTIPLY_FACTOR
            lo = np.array([1.0 / WINOGRAD_MULTIPLY_FACTOR if k.winograd else 1.0 for k in ks])
            if f in chip:  # this GPU's own die was measured: its fitted correction (CUDA-core kernels the forest prices)
                slow = np.where(tc | by_law, slow, np.maximum(slow, lo) * np.exp(correction_log(chip[f], bound)))
            if "curve" in own:  # ... and the correction of the pooled law on the kernels the law prices
                slow = np.where(by_law, slow * np.exp(correction_log(own["curve"], bound)), slow)
            if f in ("gemm", "conv"):
                slow = np.where(tc, slow * self.params.tensor_core_factor, slow)
            fast = np.array([k.fast_fp32 for k in ks])
            if fast.any() and self.device.has_tf32():
                # 3xTF32: the same slowdown over a roofline whose matrix ceiling is tf32_peak / 3
                bound = np.where(fast, _fast_fp32_bounds(ks, self.device, bound), bound)
            bf = self.params.backward_factor.get(f, 1.0)
            back = np.array([k.backward for k in ks])
            slow = np.where(back, slow * bf, slow)
            scale = math.exp(self.duration_log_scale.get(f, 0.0))  # a calibration on this GPU, if any
            t[idx] = bound * np.maximum(slow * scale, lo)
            tb[idx] = bound
        return t, tb

    def floor_s(self, family: str) -> float:
        """The per-call dispatch floor of a kernel family on this GPU's setting (:meth:`PerfParams.floor_s`)."""
        return self.params.floor_s(self.profile.name, family)

    def memory_law(self, family: str) -> MemoryLaw | None:
        """The achieved-bandwidth law a memory family is priced by on this GPU (its die's own where fitted)."""
        own = self.params.chip_memory_law.get(chip_key(self.profile) or "", {}).get(family, {})
        return own.get("law") or self.params.memory_law.get(family)

    def annotate(self, gm: torch.fx.GraphModule) -> None:
        """Put a :class:`NodeDuration` (model ``"learned"``) on every node that does work."""
        nodes: list[Any] = []
        call_of: list[Any] = []
        kernels: list[Any] = []  # distinct kernels, each priced once
        kidx: list[int] = []  # per (call, kernel) pair: its index in ``kernels``
        kcall: list[Any] = []
        # replayed module calls share their recorded ATen call objects: build and price their kernels once
        kernels_of: dict[int, list[int]] = {}
        call_bn: list[bool] = []  # per call: a batch-norm call (its own dispatch floor)
        call_setting: list[bool] = []  # per call: pays the setting's own floors (SETTING_FLOOR_PHASES)
        self._bounds = {}
        for node in gm.graph.nodes:
            trace = get_record(node, TRACE)
            if trace is None or trace.phase == "input":
                continue
            cost = get_record(node, COST, required_by="LearnedGPUModel")
            if cost.free:
                continue
            calls = []
            todo = trace.calls
            fused = None
            if self.sdpa == "auto" and node.op == "call_function" and is_sdpa_target(node.target):
                fused = sdpa_kernels_of_calls(trace.calls, sm80_or_newer=self.device.has_tf32())
                if fused is not None:  # one fused kernel (+ a mask conversion) instead of the math decomposition
                    todo = [trace.calls[i] for i in fused[2]]
                    calls.append(len(call_of))
                    call_of.append(len(nodes))
                    call_bn.append(False)
                    call_setting.append(trace.phase in SETTING_FLOOR_PHASES)
                    for k in fused[1]:
                        kidx.append(len(kernels))
                        kernels.append(k)
                        kcall.append(calls[-1])
            for call in todo:
                if lookup(call.op) == (True, None):
                    continue  # a free view
                ids = kernels_of.get(id(call))
                if ids is None:
                    arith = op_arith(call, _DEFAULT_CONV)
                    r, w, _ = op_bytes(call)
                    ks = kernels_of_call(call, 2.0 * arith.macs if arith else 0.0, arith.elementwise_flops if arith else 0.0, r + w)
                    ids = kernels_of[id(call)] = list(range(len(kernels), len(kernels) + len(ks)))
                    kernels.extend(ks)
                calls.append(len(call_of))
                call_of.append(len(nodes))
                call_bn.append("batch_norm" in str(call.op))
                call_setting.append(trace.phase in SETTING_FLOOR_PHASES)
                for i in ids:
                    kidx.append(i)
                    kcall.append(calls[-1])
            nodes.append((node, cost, trace, fused is not None))
        t_call = np.zeros(len(call_of))
        floor_call = np.full(len(call_of), self.floor_s("elementwise"))  # a call without kernels: the lightest floor
        b_node = np.zeros(len(nodes))
        saved_node = np.zeros(len(nodes))  # matrix FLOPs a Winograd convolution does not need, per node
        if kernels:
            t_u, b_u = self.kernel_durations_s(kernels)
            t_k, b_k = t_u[np.asarray(kidx)], b_u[np.asarray(kidx)]
            np.add.at(t_call, np.asarray(kcall), t_k)
            np.add.at(b_node, np.asarray(call_of)[np.asarray(kcall)], b_k)
            saved = np.array([k.flops - k.min_flops for k in kernels])[np.asarray(kidx)]
            np.add.at(saved_node, np.asarray(call_of)[np.asarray(kcall)], saved)
            first: dict[int, str] = {}  # each call's floor is its first kernel's family's (the library whose host path it takes)
            for c, i in zip(kcall, kidx):
                first.setdefault(c, kernels[i].family)
            for c, f in first.items():
                if call_setting[c]:
                    floor_call[c] = self.floor_s("batch_norm" if call_bn[c] else f)
                else:
                    floor_call[c] = self.params.dispatch_floor_s
        k_call = t_call.copy()  # the calls' kernel time, before the floor
        t_call = np.maximum(t_call, floor_call)
        t_node = np.zeros(len(nodes))
        if len(call_of):
            np.add.at(t_node, np.asarray(call_of), t_call)
        host_kernel: dict[int, tuple[float, float]] = {}  # re-priced optimizer nodes: (host s, kernel s)
        foreach = self._foreach_optimizer(nodes, t_node, host_kernel)
        from fxenergy.perf.kernels import family_of_op

        least_node = [self._least_floor_s(trace.phase) for (_n, _c, trace, _f) in nodes]
        floor_node = [self._node_floor_s(i, nodes, saved_node, b_node) for i in range(len(nodes))]
        scheduled = None
        if self.schedule != "max":
            scheduled = self._schedule(nodes, call_of, k_call, floor_call, host_kernel, least_node, floor_node)
        for i, (node, cost, trace, is_fused) in enumerate(nodes):
            floor = floor_node[i]
            # the power model's utilisation is over the direct-count bound (a Winograd node's floor counts less)
            bound = floor if is_fused or not saved_node[i] else self.node_bound_s(cost, trace)
            self._bounds[node.name] = bound
            if scheduled is not None:  # the node's increment of the GPU timeline (its bound is in its kernel time)
                t = float(scheduled[i])
            else:
                t = max(float(t_node[i]), floor, 0.0 if i in foreach else least_node[i])
            put_record(node, DURATION, NodeDuration(t, "learned", family_of_op(cost.op)))

    def _node_floor_s(self, i: int, nodes: list[Any], saved_node: np.ndarray, b_node: np.ndarray) -> float:
        """The least duration node ``i`` may have: its roofline bound (Winograd-aware). A fused attention node's
        own cost figures are its math decomposition's (S x S scores in DRAM), which the fused kernel never moves:
        its bound is the sum of its kernels' bounds, but never below the physical bound every estimate is checked
        against (fxenergy.predictors.bounds: the node's cost at the highest peak, its bytes at DRAM bandwidth when
        they exceed the largest cache), else a 3xTF32-priced attention node can break it."""
        _node, cost, trace, is_fused = nodes[i]
        if is_fused:
            if self._lower is None:
                self._lower = LowerBound(self.profile)
            return max(float(b_node[i]), self._lower(cost, trace))
        return self.node_bound_s(cost, trace, float(saved_node[i]))

    def _least_floor_s(self, phase: str) -> float:
        """The dispatch floor a call with no kernel of its own pays in ``phase``: the setting's lightest
        (elementwise) floor in :data:`SETTING_FLOOR_PHASES`, else the pooled one."""
        return self.floor_s("elementwise") if phase in SETTING_FLOOR_PHASES else self.params.dispatch_floor_s

    def _schedule(self, nodes: list[Any], call_of: list[int], k_call: np.ndarray, floor_call: np.ndarray,
                  host_kernel: Mapping[int, tuple[float, float]], least_node: list[float],
                  floor_node: list[float]) -> np.ndarray:
        """Per node, its increment of the GPU timeline (:func:`gpu_timeline_s`, ``self.schedule``) over the calls in
        graph order: a call's host cost is its dispatch floor, its GPU time its kernels' (a node's last call also
        carries what the node's roofline bound adds over its kernels); a re-priced optimizer node is one item with
        its share of its statement's launches; a node whose calls launch nothing costs the host its lightest floor."""
        owner = np.asarray(call_of, dtype=int)
        n_calls = np.bincount(owner, minlength=len(nodes)) if len(owner) else np.zeros(len(nodes), int)
        k_node = np.zeros(len(nodes))
        if len(owner):
            np.add.at(k_node, owner, k_call)
        item_node: list[int] = []
        h_item: list[float] = []
        k_item: list[float] = []
        c = 0
        for i in range(len(nodes)):
            if i in host_kernel:
                h, k = host_kernel[i]
                item_node.append(i)
                h_item.append(h)
                k_item.append(k)
                c += int(n_calls[i])
                continue
            extra = max(floor_node[i] - float(k_node[i]), 0.0)
            if n_calls[i] == 0:
                item_node.append(i)
                h_item.append(least_node[i])
                k_item.append(extra)
                continue
            for j in range(c, c + int(n_calls[i])):
                item_node.append(i)
                h_item.append(float(floor_call[j]))
                k_item.append(float(k_call[j]) + (extra if j == c + int(n_calls[i]) - 1 else 0.0))
            c += int(n_calls[i])
        inc = gpu_timeline_s(np.asarray(h_item), np.asarray(k_item), self.schedule)
        out = np.zeros(len(nodes))
        np.add.at(out, np.asarray(item_node, dtype=int), inc)
        return out

    def _foreach_optimizer(self, nodes: list[Any], t_node: np.ndarray,
                           host_kernel: dict[int, tuple[float, float]] | None = None) -> set[int]:
        """Re-price the optimizer step as PyTorch runs it on CUDA by default (``foreach=True``): the capture
        records the single-tensor update (one call per parameter and statement), CUDA runs one
        ``torch._foreach_*`` op per statement over all parameters, in a few multi_tensor_apply launches
        (:func:`fxenergy.perf.kernels.foreach_launches`). Each launch is one elementwise kernel over its
        share of the bytes, at least the dispatch floor; the statement's time is split over its nodes
        by bytes (so the step's total is the launches' total). Returns the indices of re-priced nodes.
        Left per-call when the update is not one op per node repeating once per parameter."""
        idx = [i for i, (_n, cost, trace, _f) in enumerate(nodes) if trace.phase == "optimizer" and not cost.free]
        calls = [nodes[i][2].calls for i in idx]
        if len(idx) < 2 or any(len(c) != 1 for c in calls):
            return set()
        names = [str(c[0].op) for c in calls]
        period = optimizer_period(names)
        if period is None or len(idx) // period < 2:
            return set()
        for j in range(period):
            members = idx[j::period]
            call0 = nodes[members[0]][2].calls[0]
            specs = [t for t in pytree.tree_leaves(call0.args) if isinstance(t, TensorSpec)]
            depth = max(sum(1 for t in specs if t.shape == specs[0].shape), 1) if specs else 1  # tensor lists
            numels, nbytes = [], []
            for i in members:
                c = nodes[i][2].calls[0]
                numels.append(max((t.numel for t in pytree.tree_leaves(c.args) if isinstance(t, TensorSpec)), default=1))
                r, w, _ = op_bytes(c)
                nbytes.append(r + w)
            launches = foreach_launches(numels, depth)
            total = float(sum(nbytes))
            rows = sum(numels)
            per = [memory_kernel("elementwise", max(rows // launches, 1), 1, torch.float32, total / launches,
                                 float(rows) / launches)] * launches
            t_k, _ = self.kernel_durations_s(per)
            least = self._least_floor_s("optimizer")
            t_stmt = float(np.maximum(t_k, least).sum())
            for i, b in zip(members, nbytes):
                share = b / total if total > 0 else 1.0 / len(members)
                t_node[i] = t_stmt * share
                if host_kernel is not None:  # for a schedule: the launches' host cost and kernel time, shared alike
                    host_kernel[i] = (least * launches * share, float(t_k.sum()) * share)
        return set(idx)

    def node_bound_s(self, cost: Any, trace: Any, saved_flops: float = 0.0) -> float:
        """The node's roofline bound under the math modes (no launch term); ``saved_flops``: matrix FLOPs
        not needed by the fastest algorithm (a Winograd convolution's, :func:`winograd_saved_flops`)."""
        dev = self.device
        compute = cost.elementwise_flops / dev.peak_flops["fp32"]
        if cost.flops:  # the matrix peak depends on dtype and math mode
            fam = "conv" if "conv" in cost.op else "gemm"
            flops = max(cost.flops - saved_flops, 0.0)
            compute += flops / dev.peak_for(fam, node_dtype(trace), self.matmul_precision, self.conv_tf32)
        return max(compute, (cost.bytes_read + cost.bytes_written) / dev.bandwidth_bytes_per_s)

    # -- power -------------------------------------------------------------------------------------------
    def power_line(self, family: str, tensor_cores: bool = False) -> tuple[float, float]:
        """``(a, b)`` of the family's board-power fraction line on this device (before any calibration)."""
        return power_coefficients_for(self.params.power, self.profile.name, self.params.alias.get(family, family),
                                      tensor_cores)

    def power_w(self, family: str, utilisation: float, tensor_cores: bool = False, phase: str = "forward") -> float:
        a, b = self.power_line(family, tensor_cores)
        uplift = self.params.training_power.get(phase, 0.0)  # backward / optimizer kernels of a training step
        uplift += self.power_offset.get(self.params.alias.get(family, family), 0.0)  # calibrated on this GPU
        frac = min(1.0, max(0.0, a + b * min(max(utilisation, 0.0), 1.0) + uplift))
        dev = self.device
        return dev.idle_w + (dev.power_limit_w - dev.idle_w) * frac

    def node_energy_j(self, cost: Any, trace: Any, duration: NodeDuration, node_name: str | None = None) -> float:
        t = duration.duration_s
        if t <= 0:
            return 0.0
        bound = self._bounds.get(node_name) if node_name is not None else None
        u = (self.node_bound_s(cost, trace) if bound is None else bound) / t
        tc = duration.family in ("gemm", "conv") and self.device.uses_tensor_cores(
            duration.family, node_dtype(trace), self.matmul_precision, self.conv_tf32)
        return self.power_w(duration.family, u, tc, trace.phase) * t

    def math_modes(self) -> str:
        dev = self.device
        return (f"fp32 matmul precision {self.matmul_precision!r} "
                f"({'TF32' if dev.has_tf32() and self.matmul_precision != 'highest' else 'no TF32'}), cuDNN conv TF32 "
                f"{'on' if self.conv_tf32 and dev.has_tf32() else 'off'}" + ("" if dev.has_tf32() else " (no TF32 on this GPU)")
                + "; fp16/bf16 on tensor cores")

    def notes(self) -> tuple[str, ...]:
        dev = self.device
        err, basis = self.params.expected_error(self.profile.name)
        out = [
            f"learned GPU model ({self.params.name}): expected duration error ±{err:.0f}%, validated on {basis}",
            f"math modes (PyTorch's defaults unless set): {self.math_modes()}",
            f"clock {dev.clock_hz / 1e6:.0f} MHz under load (boost {dev.boost_clock_hz / 1e6:.0f} MHz), power limit "
            f"{dev.power_limit_w:.0f} W",
            "board power: " + ("fitted on this GPU's measured per-op power (gpu-operators-nicolai)"
                               if self.profile.name in self.params.power.get("devices", {}) else
                               "pooled per-family model fitted on the A30 and RTX 2080 Ti (not validated on this GPU)"),
        ]
        if self.duration_log_scale or self.power_offset:
            out.append("calibrated on this GPU (fxenergy calibrate --device cuda): duration x "
                       + ", ".join(f"{k} {math.exp(v):.2f}" for k, v in sorted(self.duration_log_scale.items()))
                       + ("; power fraction " + ", ".join(f"{k} {v:+.2f}" for k, v in sorted(self.power_offset.items()))
                          if self.power_offset else ""))
        if dev.idle_assumed:
            out.append(f"{self.profile.name}: idle power not in the profile; 25% of TDP ({dev.idle_w:.0f} W) assumed")
        return tuple(out)
