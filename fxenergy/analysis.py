"""Analyse once, predict many.

:func:`analyse` captures a model and runs the hardware-independent passes (costs, working sets) once;
the :class:`Analysis` it returns is immutable: its graph's records are frozen after the passes, and
nothing hardware-specific is ever written into it. :func:`predict` computes, from an analysis and a
resolved :class:`~fxenergy.resolve.Setup`, a separate :class:`Prediction`: durations, energy per
node, the per-run overhead, and notes. :meth:`Analysis.result` joins the two into the
:class:`~fxenergy.result.Result` users see. One analysis serves any number of predictions (every
backend, several devices): ``compare_predictors`` and ``report --hardware a30,h100-sxm`` trace once.

How predictions keep the backend contract (``predict(gm, profile)`` reading ``TRACE``/``COST``/
``DURATION`` records with :func:`~fxenergy.records.get_record`): each prediction runs the duration
pass and the backend on a :class:`GraphView`, a per-prediction view of the analysed graph whose
nodes read the analysis records and write their own (durations, energies) into a private overlay.
Everything else (``node.name``, ``node.op``, ``gm.parameters()``…) is the analysed graph's own.

>>> import torch, fxenergy
>>> from fxenergy.analysis import analyse, predict
>>> from fxenergy.resolve import resolve
>>> a = analyse(torch.nn.Linear(64, 64), torch.randn(8, 64))
>>> on = {hw: predict(a, resolve(hw, "roofline")) for hw in ("a30", "l4")}
>>> on["a30"].energy_j != on["l4"].energy_j, a.result().totals.energy_j is None
(True, True)
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch

from fxenergy.records import DURATION, ENERGY, META_KEY, NodeDuration, NodeEnergy

if TYPE_CHECKING:
    from fxenergy.hardware import HardwareProfile
    from fxenergy.passes.working_sets import ModelWorkingSets
    from fxenergy.resolve import Setup
    from fxenergy.result import Result, Row

__all__ = ["Analysis", "Prediction", "GraphView", "analyse", "predict", "OVERHEAD_ROW"]

OVERHEAD_ROW = "(per-run constant)"


@dataclass(frozen=True)
class Analysis:
    """Capture + costs + working sets of one model call: hardware-independent and immutable.

    ``graph_module`` carries the trace, cost and working-set records (frozen: a pass that tries to
    add one raises); ``rows`` are the per-node costs with no duration or energy; ``info`` describes
    the model, inputs and capture.
    """

    graph_module: torch.fx.GraphModule
    rows: tuple[Row, ...]
    working_sets: ModelWorkingSets
    info: Mapping[str, Any]

    def result(self, prediction: Prediction | None = None) -> Result:
        """The :class:`~fxenergy.result.Result` of this analysis alone, or with one prediction's
        durations and energies (and its per-run overhead as a row of its own)."""
        from fxenergy.result import Result

        info = dict(self.info)
        if prediction is None:
            info.update(hardware=None, hardware_display_name=None, predictor="none", parameter_set=None,
                        duration_model=None, energy_notes=[], setup_notes=[])
            return Result(self.graph_module, self.rows, self.working_sets, info)
        rows = [r.with_prediction(prediction.duration_s.get(r.node, 0.0), prediction.node_energy_j.get(r.node, 0.0))
                for r in self.rows]
        if prediction.overhead_j:
            rows.append(_overhead_row(prediction.overhead_j))
        info.update(prediction.info())
        return Result(self.graph_module, tuple(rows), self.working_sets, info)

    def predict(self, setup: Setup) -> Prediction:
        return predict(self, setup)


@dataclass(frozen=True)
class Prediction:
    """What one (hardware, predictor, parameter set) predicts for one analysis.

    ``duration_s`` and ``node_energy_j`` are keyed by node name (nodes that do no work have neither);
    ``overhead_j`` is the per-run constant. ``energy_j`` and ``total_duration_s`` are the sums.
    """

    setup: Setup
    duration_s: Mapping[str, float]
    durations: Mapping[str, NodeDuration]
    node_energy_j: Mapping[str, float]
    overhead_j: float
    parameter_set: str
    notes: tuple[str, ...] = ()
    expected_error: Mapping[str, Any] | None = None  # EnergyEstimate.expected_error
    energy_j: float = field(init=False)
    total_duration_s: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "energy_j", float(sum(self.node_energy_j.values()) + self.overhead_j))
        object.__setattr__(self, "total_duration_s", float(sum(self.duration_s.values())))

    def info(self) -> dict[str, Any]:
        p = self.setup.profile
        return {
            "hardware": getattr(p, "name", None),
            "hardware_display_name": getattr(p, "display_name", None),
            "predictor": self.setup.predictor,
            "parameter_set": self.parameter_set,
            "duration_model": self.setup.duration_model,
            "energy_notes": list(self.notes),
            "setup_notes": list(self.setup.notes),
            "expected_error": dict(self.expected_error) if self.expected_error else None,
        }


# ------------------------------------------------------------------------------------------ analyse
def analyse(
    model: torch.nn.Module,
    example_input: Any = (),
    *,
    example_kwargs: Mapping[str, Any] | None = None,
    mode: str = "inference",
    convention: str = "default",
    optimizer: str = "adamw",
    method: str = "auto",
    dataset_samples: int | None = None,
    name: str | None = None,
    replay: bool = True,
) -> Analysis:
    """Capture ``model(*example_input, **example_kwargs)`` on meta tensors and cost every node, once.

    ``replay=False`` makes the ``record`` capture run every module call instead of copying an identical
    earlier call's nodes (same result, slower; see :class:`fxenergy.capture._Replay`).
    """
    from fxenergy import __version__
    from fxenergy.capture import capture
    from fxenergy.errors import UserInputError
    from fxenergy.passes.costs import CostPass, get_convention
    from fxenergy.passes.working_sets import WorkingSetPass, model_working_sets
    from fxenergy.result import rows_from_graph

    conv = get_convention(convention)
    if dataset_samples is not None and dataset_samples <= 0:
        raise UserInputError(f"dataset_samples must be a positive integer, got {dataset_samples}")
    cap = capture(model, example_input, example_kwargs, mode=mode, method=method, optimizer=optimizer, replay=replay)
    gm = cap.graph_module
    for pass_ in (CostPass(conv), WorkingSetPass()):
        pass_(gm)
    _freeze(gm)

    trainable = sum(p.nbytes for p in model.parameters() if p.requires_grad)
    input_bytes = sum(s.nbytes for s in cap.input_specs)
    batch = cap.input_specs[0].shape[0] if cap.input_specs and cap.input_specs[0].shape else None
    ws = model_working_sets(
        gm,
        param_bytes=cap.param_bytes,
        trainable_param_bytes=trainable,
        buffer_bytes=cap.buffer_bytes,
        input_bytes=input_bytes,
        output_bytes=sum(s.nbytes for s in cap.output_specs) if mode == "inference" else 0,
        batch_size=batch,
        dataset_samples=dataset_samples,
    )
    notes = _unread_parameter_notes(gm, cap.param_bytes)
    info = {
        "model": name or type(model).__name__,
        "fxenergy_version": __version__,
        "mode": mode,
        "optimizer": cap.optimizer,
        "capture_method": cap.method,
        "capture_attempts": list(cap.attempts),
        "capture_replayed_calls": gm.meta.get("fxenergy_replayed_calls", 0),
        "convention": conv.name,
        "inputs": [{"shape": list(s.shape), "dtype": str(s.dtype).removeprefix("torch.")} for s in cap.input_specs],
        "param_count": cap.param_count,
        "param_bytes": cap.param_bytes,
        "trainable_param_bytes": trainable,
        "buffer_bytes": cap.buffer_bytes,
        "dtype": _compute_dtype(model, cap.input_specs),
        "analysis_notes": notes,
    }
    return Analysis(gm, rows_from_graph(gm), ws, MappingProxyType(info))


def _compute_dtype(model: torch.nn.Module, inputs: Any) -> str:
    """The floating dtype the model computes in: its first floating parameter's, else its input's."""
    for p in model.parameters():
        if p.is_floating_point():
            return str(p.dtype).removeprefix("torch.")
    for s in inputs:
        if s.dtype.is_floating_point:
            return str(s.dtype).removeprefix("torch.")
    return "float32"


def _unread_parameter_notes(gm: torch.fx.GraphModule, param_bytes: int) -> list[str]:
    """A note when parameters exist that no node reads: their cost is missing, never silently zero.

    The usual cause is data-dependent control flow that meta tensors cannot evaluate, e.g. the loop
    over the experts a mixture-of-experts router picked (``nonzero`` of a meta tensor is empty).
    Below 1% of the parameter bytes (typically an unused buffer) nothing is said.
    """
    from fxenergy.capture import PARAMETER
    from fxenergy.records import TRACE, get_record

    used: set[int] = set()  # ids of tensors some node reads (tied weights are one tensor, several names)
    candidates: list[tuple[torch.fx.Node, int | None, int]] = []
    for n in gm.graph.nodes:
        tr = get_record(n, TRACE)
        if n.op not in ("placeholder", "get_attr") or tr is None or tr.module_type != PARAMETER:
            continue
        ident = None
        if n.op == "get_attr":
            try:
                ident = id(gm.get_parameter(str(n.target)))
            except AttributeError:
                with contextlib.suppress(AttributeError):
                    ident = id(gm.get_buffer(str(n.target)))
        if n.users and ident is not None:
            used.add(ident)
        candidates.append((n, ident, sum(t.nbytes for t in tr.outputs)))
    unread = [(str(n.target), b) for n, ident, b in candidates if not n.users and (ident is None or ident not in used)]
    nbytes = sum(b for _, b in unread)
    share = nbytes / param_bytes if param_bytes else 1.0
    if not nbytes or share < 0.01:  # an unused buffer (e.g. a saved copy of RoPE frequencies) is no cost
        return []
    example = ", ".join(t for t, _ in unread[:2])
    return [f"{len(unread)} parameter tensor(s), {share:.0%} of the parameter bytes (e.g. {example}), are never read "
            "on the traced path: data-dependent branches (such as mixture-of-experts routing) are not evaluated on "
            "meta tensors, so their cost is missing, not zero; capture a dense variant to count them"]


def _freeze(gm: torch.fx.GraphModule) -> None:
    """Make every node's record bucket read-only: the analysis is immutable from here on."""
    for node in gm.graph.nodes:
        bucket = node.meta.get(META_KEY)
        if bucket is not None and not isinstance(bucket, MappingProxyType):
            node.meta[META_KEY] = MappingProxyType(bucket)


# ------------------------------------------------------------------------------------------ predict
def predict(analysis: Analysis, setup: Setup) -> Prediction:
    """Durations and energies of ``analysis`` under ``setup``; the analysis is left as it was."""
    from fxenergy.passes.durations import DurationPass

    if setup.backend is None or setup.profile is None:
        from fxenergy.errors import UserInputError

        raise UserInputError("a prediction needs hardware and a predictor (got predictor 'none')")
    from fxenergy.predictors.bounds import PhysicalBoundsError, check_estimate
    from fxenergy.predictors.layerwise import OutOfDomainError

    profile = setup.profile
    view = GraphView(analysis.graph_module)
    params = setup.backend.model(setup.profile) if setup.duration_model == "learned" else setup.hef_params  # type: ignore[union-attr]
    DurationPass(setup.profile, setup.duration_model or "roofline", params,  # type: ignore[arg-type]
                 cpu_model=setup.cpu_model)(view)  # type: ignore[arg-type]
    backend, name = setup.backend, setup.predictor
    try:
        estimate = backend.predict(view, setup.profile)  # type: ignore[arg-type]
    except OutOfDomainError as e:  # on a CPU, inference: the physical model (same CPU durations), with a note
        if setup.profile.is_gpu or setup.cpu_model is None or analysis.info.get("mode") != "inference":
            raise
        from fxenergy.predictors.physical import PhysicalPredictor

        backend = PhysicalPredictor.for_profile(setup.profile, threads=setup.cpu_model.threads)
        est = backend.predict(view, setup.profile)  # type: ignore[arg-type]
        estimate = dataclasses.replace(est, notes=(f"{name} refused: {e}; physical model used instead", *est.notes))
        setup = dataclasses.replace(setup, predictor="physical", backend=backend, parameter_set=backend.parameter_set)
    bad = check_estimate(view, estimate, profile, backend)  # type: ignore[arg-type]
    if bad:
        raise PhysicalBoundsError(f"predictor {name!r} on {profile.name} broke physical bounds: "
                                  f"{'; '.join(bad)}; its figure is not shown (--predictor all compares backends)")
    durations = view.records(DURATION)
    return Prediction(
        setup=setup,
        duration_s=MappingProxyType({k: d.duration_s for k, d in durations.items()}),
        durations=MappingProxyType(durations),
        node_energy_j=MappingProxyType({k: float(v) for k, v in estimate.node_energy_j.items()}),
        overhead_j=float(estimate.overhead_j),
        parameter_set=estimate.parameter_set,
        notes=(*estimate.notes, *_memory_notes(analysis.info, profile)),
        expected_error=estimate.expected_error,
    )


def _memory_notes(info: Mapping[str, Any], profile: HardwareProfile) -> list[str]:
    """A note when the model's resident state cannot fit the device's memory: parameters and buffers, and in
    training also a gradient and the optimizer's state per trainable parameter (activations not counted, so
    the need is a lower bound). The figure is still computed, as if one device could hold the model."""
    from fxenergy.capture import OPTIMIZER_STATE_TENSORS  # the state tensors the training capture gives each parameter

    need = int(info.get("param_bytes", 0)) + int(info.get("buffer_bytes", 0))
    what = "parameters and buffers"
    if info.get("mode") == "training":
        need += int(info.get("trainable_param_bytes", info.get("param_bytes", 0))) * (
            1 + OPTIMIZER_STATE_TENSORS.get(str(info.get("optimizer")), 2))
        what = "parameters, buffers, gradients and optimizer state"
    have = profile.memory_bytes
    if not have or need <= have:
        return []
    return [f"the model's {what} need at least {need / 1e9:.4g} GB, more than {profile.name}'s "
            f"{have / 2**30:.4g} GiB of memory: one device cannot hold it as given, and the figure assumes one "
            "could; a lower precision (--dtype), or sharding over several devices, changes it"]


def _overhead_row(energy_j: float) -> Row:
    """Seed 004's per-run constant ``h`` as a row of its own, so the energy column sums to the total."""
    from fxenergy.result import Row

    return Row(node=OVERHEAD_ROW, op="constant", module_path=OVERHEAD_ROW, module_type="", phase="overhead",
               macs=0, flops=0, elementwise_flops=0, bytes_read=0, bytes_written=0, param_bytes_read=0,
               inter_layer_bytes=0, duration_s=0.0, energy_j=energy_j)


# ------------------------------------------------------------------------------------------ the view
class _NodeView:
    """One node of a :class:`GraphView`: the analysed node's attributes, with a private record overlay."""

    __slots__ = ("_node", "meta")

    def __init__(self, node: torch.fx.Node, overlay: dict[str, Any]):
        # Plain dicts, not ChainMaps: every pass reads records through ``meta`` (get_record), and a
        # ChainMap lookup is several Python calls. ``overlay`` starts as a copy of the analysis's
        # records and takes this view's writes; ``meta`` is a shallow copy of the node's, so writes
        # of any key stay in the view and the analysed node is left as it was.
        self._node = node
        self.meta = dict(node.meta)
        self.meta[META_KEY] = overlay

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)

    def __repr__(self) -> str:
        return repr(self._node)


class _GraphView:
    __slots__ = ("_graph", "nodes")

    def __init__(self, graph: torch.fx.Graph, nodes: tuple[_NodeView, ...]):
        self._graph = graph
        self.nodes = nodes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._graph, name)


class GraphView:
    """A per-prediction view of an analysed ``GraphModule`` (the shim that keeps backends unchanged).

    ``view.graph.nodes`` yields node views whose ``meta["fxenergy"]`` reads the analysis records and
    takes new ones (``put_record``) into this view only; any other attribute is the real graph
    module's. :meth:`records` returns what the prediction wrote under one key, by node name.
    """

    def __init__(self, gm: torch.fx.GraphModule):
        self._gm = gm
        self._overlays: dict[str, dict[str, Any]] = {}
        nodes = []
        self._base: dict[str, Any] = {}
        for node in gm.graph.nodes:
            base = node.meta.get(META_KEY) or {}
            overlay: dict[str, Any] = dict(base)  # the analysis's records, then this view's (never overwritten)
            self._overlays[node.name] = overlay
            self._base[node.name] = base
            nodes.append(_NodeView(node, overlay))
        self.graph = _GraphView(gm.graph, tuple(nodes))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gm, name)

    def __iter__(self) -> Iterator[_NodeView]:
        return iter(self.graph.nodes)

    def records(self, key: str) -> dict[str, Any]:
        base = self._base
        return {name: o[key] for name, o in self._overlays.items() if key in o and key not in base[name]}


__all__ += ["NodeEnergy", "ENERGY"]  # re-exported for backends that record energy per node themselves
