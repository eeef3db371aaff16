"""``fxenergy measure MODEL``: run the real model here and set what it took beside the prediction.

1. The model is built as ``report`` builds it (same names and size options), then again with real,
   randomly initialised weights on the local device (torchvision and factory models: their own
   initialisation; transformers models: ``_from_config`` off the meta device), fed random inputs of
   the same shapes (token ids uniform over the vocabulary).
2. Whole runs: after warm-up, :func:`~fxenergy.measure.window.measure_calls` repeats one forward pass
   (``inference``, under ``torch.inference_mode``) or one training step (forward, backward of the
   outputs' sum, an SGD/AdamW update) in measurement windows: time per run, and energy per run where a
   meter is readable (:func:`~fxenergy.measure.meters.open_meter`); otherwise the output says that
   only time is measured and why.
3. Per layer (inference): ``runs`` timed ``torch.fx.Interpreter`` runs of the model's symbolic trace;
   every node's median time is summed into the node's innermost module (``nn_module_stack``), the
   same key as ``report``'s ``--group-by layer``. The interpreter adds Python overhead per node; the
   per-layer total and the plain run are both shown. Models ``symbolic_trace`` cannot trace (most
   transformers) are timed by forward hooks on their leaf modules instead; the ops between modules
   then form one ``(other ops)`` row. Where a meter measured energy, a layer's energy is
   the window's energy per run apportioned by the layer's share of the per-layer time.
4. The prediction is :func:`fxenergy.annotate` of the meta-device model on ``hardware`` (default
   ``local``: the detected machine; a calibration file from ``fxenergy calibrate`` predicts better).
   A detected profile without a TDP gives predicted durations only; the energy column then says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from unittest import mock

import torch

from fxenergy.errors import UserInputError
from fxenergy.measure.meters import describe, open_meter
from fxenergy.measure.window import Measurement, measure_calls

if TYPE_CHECKING:
    from fxenergy.hardware.schema import HardwareProfile

__all__ = ["ModelMeasurement", "LayerLine", "measure_model", "real_model"]


@dataclass(frozen=True, slots=True)
class LayerLine:
    key: str
    module_type: str
    measured_s: float | None
    predicted_s: float | None
    measured_j: float | None
    predicted_j: float | None


@dataclass(frozen=True)
class ModelMeasurement:
    model: str
    device: str
    mode: str
    batch_size: int
    run: Measurement  # whole runs in windows
    layers: tuple[LayerLine, ...]  # empty when per-layer timing was not possible
    predicted_total_s: float | None
    predicted_total_j: float | None
    hardware: str
    predictor: str
    meter_line: str
    interpreter_runs: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        r = self.run
        return {
            "schema": "fxenergy.measure/1", "model": self.model, "device": self.device, "mode": self.mode,
            "batch_size": self.batch_size, "hardware": self.hardware, "predictor": self.predictor,
            "measured": {"meter": self.meter_line, "duration_s": r.duration_s, "duration_spread": r.duration_spread,
                         "energy_j": r.energy_j, "energy_spread": r.energy_spread, "power_w": r.power_w,
                         "calls": r.calls, "windows": len(r.windows), "discarded_windows": r.discarded,
                         "outlier_windows": r.outliers},
            "predicted": {"duration_s": self.predicted_total_s, "energy_j": self.predicted_total_j},
            "layers": [dataclasses.asdict(x) for x in self.layers],
            "layer_totals": {"measured_s": _sum(x.measured_s for x in self.layers),
                             "predicted_s": _sum(x.predicted_s for x in self.layers),
                             "measured_j": _sum(x.measured_j for x in self.layers),
                             "predicted_j": _sum(x.predicted_j for x in self.layers)},
            "interpreter_runs": self.interpreter_runs, "notes": list(self.notes),
        }


def _sum(values: Any) -> float | None:
    vs = [v for v in values if v is not None]
    return sum(vs) if vs else None


def real_model(name: str, *, batch_size: int, seq_len: int, image_size: int | None, dtype: torch.dtype,
               device: torch.device, seed: int = 0) -> tuple[Any, Any]:
    """``(meta BuiltModel for the prediction, (model, args, kwargs) with real random weights on device)``."""
    from fxenergy.models import _torchvision, build_model

    opts: dict[str, Any] = dict(batch_size=batch_size, seq_len=seq_len, image_size=image_size, dtype=dtype)
    built = build_model(name, **opts)
    torch.manual_seed(seed)
    info = built.info
    if info is not None and info.family == "torchvision":
        with mock.patch.object(_torchvision, "meta_init", contextlib.nullcontext):  # same build, real tensors
            model = build_model(name, **opts).model
    elif info is not None:  # transformers: the same config, initialised for real
        meta = built.model
        model = type(meta)._from_config(meta.config, attn_implementation="sdpa", dtype=dtype)  # type: ignore[attr-defined]
    else:
        model = built.model
        if any(p.is_meta for p in model.parameters()):
            raise UserInputError(f"{name}: the factory returned a model on the meta device; return real weights to measure it")
    model = model.to(device).eval()
    gen = torch.Generator().manual_seed(seed)
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", 0) or 100)

    def real(x: Any) -> Any:
        if not isinstance(x, torch.Tensor):
            return x
        if x.is_floating_point():
            return torch.randn(tuple(x.shape), generator=gen, dtype=torch.float32).to(device=device, dtype=x.dtype)
        return torch.randint(0, vocab, tuple(x.shape), generator=gen, dtype=x.dtype).to(device)

    args = tuple(real(a) for a in built.args)
    kwargs = {k: real(v) for k, v in built.kwargs.items()}
    return built, (model, args, kwargs)


def _timed_interpreter(model: torch.nn.Module, args: tuple, runs: int, sync: Callable[[], None]
                       ) -> tuple[dict[str, float], dict[str, str]]:
    """Median seconds per layer key over ``runs`` timed Interpreter runs, and each key's module type."""
    gm = torch.fx.symbolic_trace(model)
    keys: dict[str, str] = {}
    types: dict[str, str] = {}
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output", "get_attr"):
            continue
        stack = list(node.meta.get("nn_module_stack", {}).values())
        path, mtype = (stack[-1][0], stack[-1][1]) if stack else ("", None)
        keys[node.name] = path or "(root)"
        types.setdefault(keys[node.name], getattr(mtype, "__name__", "") if mtype is not None else "")
    samples: dict[str, list[float]] = {n: [] for n in keys}

    class Timed(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            if n.name not in keys:
                return super().run_node(n)
            t0 = time.perf_counter()
            out = super().run_node(n)
            sync()
            samples[n.name].append(time.perf_counter() - t0)
            return out

    with torch.inference_mode():
        interp = Timed(gm)
        interp.run(*args)  # warm-up
        for s in samples.values():
            s.clear()
        for _ in range(runs):
            interp.run(*args)
    per_key: dict[str, float] = {}
    for n, k in keys.items():
        per_key[k] = per_key.get(k, 0.0) + statistics.median(samples[n])
    return per_key, types


def _timed_hooks(model: torch.nn.Module, args: tuple, kwargs: dict, runs: int, sync: Callable[[], None]
                 ) -> tuple[dict[str, float], dict[str, str]]:
    """Median seconds per leaf module over ``runs`` runs timed by forward pre/post hooks, plus
    ``(other ops)``: the rest of each hooked run (functional ops between modules, Python)."""
    per_run: list[dict[str, float]] = []
    current: dict[str, float] = {}
    started: dict[str, float] = {}
    types: dict[str, str] = {}
    handles = []
    for path, mod in model.named_modules():
        if list(mod.children()) or not path:
            continue
        types[path] = type(mod).__name__

        def pre(m: Any, a: Any, path: str = path) -> None:
            sync()
            started[path] = time.perf_counter()

        def post(m: Any, a: Any, out: Any, path: str = path) -> None:
            sync()
            current[path] = current.get(path, 0.0) + time.perf_counter() - started.pop(path)

        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    try:
        with torch.inference_mode():
            model(*args, **kwargs)  # warm-up
            for _ in range(runs):
                current.clear()
                t0 = time.perf_counter()
                model(*args, **kwargs)
                sync()
                whole = time.perf_counter() - t0
                per_run.append({**current, "(other ops)": max(whole - sum(current.values()), 0.0)})
    finally:
        for h in handles:
            h.remove()
    keys = list(dict.fromkeys(k for r in per_run for k in r))
    return {k: statistics.median(r.get(k, 0.0) for r in per_run) for k in keys}, types


def _step(model: torch.nn.Module, args: tuple, kwargs: dict, mode: str, optimizer: str) -> Callable[[], Any]:
    if mode == "inference":
        def forward() -> Any:
            with torch.inference_mode():
                return model(*args, **kwargs)
        return forward
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=1e-3)
    elif optimizer == "sgd-momentum":
        opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    else:
        opt = torch.optim.AdamW(params, lr=1e-3)

    def step() -> Any:
        opt.zero_grad(set_to_none=True)
        out = model(*args, **kwargs)
        leaves = [o for o in torch.utils._pytree.tree_leaves(out if not hasattr(out, "to_tuple") else out.to_tuple())
                  if isinstance(o, torch.Tensor) and o.is_floating_point()]
        torch.stack([o.float().sum() for o in leaves]).sum().backward()
        opt.step()
    return step


def measure_model(
    name: str, *, batch_size: int = 1, seq_len: int = 128, image_size: int | None = None,
    dtype: torch.dtype = torch.float32, mode: str = "inference", optimizer: str = "adamw", device: str = "cpu",
    hardware: str = "local", predictor: str | None = None, params: str | None = None, window_s: float = 1.0,
    repeats: int = 3, warmup: int = 2, layer_runs: int = 5, meter: Any = "auto", per_layer: bool = True,
) -> ModelMeasurement:
    """Measure ``name`` on ``device`` and predict it on ``hardware`` (see the module docstring)."""
    from fxenergy.api import annotate

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserInputError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError("--device cuda: no CUDA device is available here")
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    built, (model, args, kwargs) = real_model(name, batch_size=batch_size, seq_len=seq_len, image_size=image_size,
                                              dtype=dtype, device=dev)
    notes: list[str] = []

    # prediction first (meta tensors: no memory, no arithmetic)
    profile: HardwareProfile | str = hardware  # a name or file until "local" is detected
    energy_predicted = True
    if hardware == "local":
        from fxenergy.hardware import detect_local

        profile = detect_local("gpu" if dev.type == "cuda" else "cpu")
        if profile.tdp_w is None and predictor in (None, "roofline"):
            # roofline durations do not read the TDP; the power model does: no predicted energy then
            profile = dataclasses.replace(profile, tdp_w=1.0, idle_w=0.25)
            energy_predicted = False
            notes.append(f"predicted energy not shown: the detected profile {profile.name} has no TDP "
                         "(run `fxenergy calibrate` and pass --hardware FILE)")
    options = dict(example_kwargs=built.kwargs, mode=mode, optimizer=optimizer, name=built.name)
    pred = annotate(built.model, built.args, hardware=profile, predictor=predictor, params=params, **options)
    pred_s = pred.totals.duration_s
    pred_j = pred.totals.energy_j if energy_predicted else None

    # whole runs in windows
    m = open_meter(device, kind=meter) if isinstance(meter, str) else meter
    try:
        run = measure_calls(_step(model, args, kwargs, mode, optimizer), meter=m, min_window_s=window_s,
                            repeats=repeats, warmup=warmup, sync=sync)
    finally:
        m.close()
    meter_line = describe(m)
    notes.extend(run.notes)

    # per layer
    layers: list[LayerLine] = []
    measured_keys: dict[str, float] = {}
    types: dict[str, str] = {}
    if per_layer and mode == "inference":
        how = "timed torch.fx.Interpreter runs (their sum includes interpreter overhead)"
        why = "keyword inputs" if kwargs else None
        if why is None:
            try:
                measured_keys, types = _timed_interpreter(model, args, layer_runs, sync)
            except Exception as e:  # noqa: BLE001 - symbolic_trace fails on data-dependent Python: time modules
                why = f"torch.fx.symbolic_trace failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
        if why is not None:
            measured_keys, types = _timed_hooks(model, args, kwargs, layer_runs, sync)
            how = f"runs timed by forward hooks on leaf modules ({why}); ops between modules are in (other ops)"
    elif mode != "inference":
        notes.append("per-layer times are measured for inference; training shows totals only")
    if measured_keys:
        total_layers = sum(measured_keys.values())
        energy_run = run.energy_j
        pred_groups = {g.key: g for g in pred.group("layer")}
        order = list(pred_groups) + [k for k in measured_keys if k not in pred_groups]
        for k in order:
            g = pred_groups.get(k)
            ms = measured_keys.get(k)
            if g is not None and ms is None and not (g.totals.duration_s or g.totals.energy_j):
                continue  # free rows (views, inputs)
            mj = energy_run * ms / total_layers if (energy_run is not None and ms is not None) else None
            layers.append(LayerLine(k, (g.module_type if g is not None else "") or types.get(k, ""), ms,
                                    g.totals.duration_s if g is not None else None, mj,
                                    (g.totals.energy_j if g is not None else None) if energy_predicted else None))
        notes.append(f"per-layer times: median of {layer_runs} {how}; per-layer total {total_layers:.4g} s, "
                     f"a plain run {run.duration_s:.4g} s")
        if run.energy_j is not None:
            notes.append("per-layer measured energy: the window's energy per run apportioned by each layer's time share")
    notes.extend(pred.info.get("energy_notes", []))
    return ModelMeasurement(built.name, device, mode, batch_size, run, tuple(layers), pred_s, pred_j,
                            pred.info.get("hardware") or str(hardware), pred.info.get("predictor") or "",
                            meter_line, layer_runs if measured_keys else 0, tuple(notes))
