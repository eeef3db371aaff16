"""Run-level training estimate from the graph: steps × step cost + evaluation + overheads, then carbon.

One training step (forward + backward + optimizer update) and one evaluation step (forward only) are
costed by :func:`fxenergy.annotate` on the model's graph; this module counts how many of each a run
makes and adds the run's overheads, following seed 003's Eq. 7 (``E = k_e + n·(per-epoch passes)``):

* **steps per epoch** ``ceil(S / B)`` (``floor`` with ``drop_last``): the last, partial batch is a
  step of its own, costed by annotating the model at the remainder batch size (a step's cost is not
  linear in the batch);
* **evaluation** ``ceil(V / B_val)`` forward-only steps every epoch when ``val_samples > 0``;
* **data loading**: each batch is copied host → device at ``host_to_device_bytes_per_s`` (default 12
  GB/s, a PCIe 3.0 x16 link's usable rate), not overlapped with compute, the device at idle power;
* **k_p** (J per pass over the data: one training pass and, with validation, one evaluation pass
  per epoch) and **k_e** (J per run): the cache backend's constants fitted on whole training runs
  for the device where fxenergy ships them (``predictors/params/cache-<hardware>.json`` fitted on
  the del Rey runs), else 0, with a note; ``epoch_overhead_s`` (default 0) adds a fixed time per
  epoch at idle power (checkpointing, loader start-up). Every figure is an option.

A ``power_limit_w`` below a step's predicted average power P slows that step to the clock fraction
``s = ((limit - idle) / (P - idle))^(1/3)`` (first-order DVFS: dynamic power ~ f³, compute-bound
duration ~ 1/f): duration / s at the limit's power. Stated in the notes; a GPU backend with its own
power-limit model should replace this.

Totals are sums of the rows: ``sum(phases) == sum(layers) == total_energy_j``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch

from fxenergy.errors import UserInputError
from fxenergy.training.carbon import DEFAULT_PUE, CarbonIntensity, carbon_intensity, check_pue

if TYPE_CHECKING:
    from fxenergy.hardware.schema import HardwareProfile

__all__ = ["Overheads", "PhaseCost", "LayerCost", "TrainingEstimate", "estimate_training", "steps_per_epoch",
           "J_PER_KWH", "DEFAULT_H2D_BYTES_PER_S"]

J_PER_KWH = 3.6e6
DEFAULT_H2D_BYTES_PER_S = 12e9  # PCIe 3.0 x16: 15.75 GB/s raw, ~12 GB/s usable for pinned copies


@dataclass(frozen=True, slots=True)
class Overheads:
    """Seed 003 Eq. 7 overhead terms and the data-loading model; ``source`` says where they came from."""

    k_p_j: float = 0.0  # J per pass over the data (one training pass, one evaluation pass per epoch)
    k_e_j: float = 0.0  # J per run
    epoch_overhead_s: float = 0.0  # fixed time per epoch at idle power
    host_to_device_bytes_per_s: float = DEFAULT_H2D_BYTES_PER_S
    source: str = "defaults"

    def check(self) -> Overheads:
        for name in ("k_p_j", "k_e_j", "epoch_overhead_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise UserInputError(f"overhead {name} must be a finite number >= 0, got {v!r}")
        bw = self.host_to_device_bytes_per_s
        if not (isinstance(bw, (int, float)) and math.isfinite(bw) and bw > 0):
            raise UserInputError(f"host_to_device_bytes_per_s must be > 0, got {bw!r}")
        return self


@dataclass(frozen=True, slots=True)
class PhaseCost:
    """One phase over the whole run: energy (J), duration (s), and how many times it happens."""

    phase: str
    energy_j: float
    duration_s: float
    count: int
    per_epoch_energy_j: float


@dataclass(frozen=True, slots=True)
class LayerCost:
    """One layer (innermost module) or overhead row over the whole run."""

    key: str
    module_type: str
    energy_j: float
    duration_s: float


@dataclass
class TrainingEstimate:
    """What :func:`estimate_training` returns. Energies in J (device energy, before PUE)."""

    model: str
    hardware: str
    predictor: str
    parameter_set: str | None
    epochs: int
    train_samples: int
    val_samples: int
    batch_size: int
    val_batch_size: int
    train_steps_per_epoch: int
    val_steps_per_epoch: int
    last_train_batch: int
    last_val_batch: int
    train_step_energy_j: float
    train_step_duration_s: float
    val_step_energy_j: float
    val_step_duration_s: float
    phases: list[PhaseCost]
    layers: list[LayerCost]
    overheads: Overheads
    intensity: CarbonIntensity
    pue: float
    power_limit_w: float | None = None
    notes: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- totals
    @property
    def total_energy_j(self) -> float:
        return float(sum(p.energy_j for p in self.phases))

    @property
    def total_duration_s(self) -> float:
        return float(sum(p.duration_s for p in self.phases))

    @property
    def energy_kwh(self) -> float:
        return self.total_energy_j / J_PER_KWH

    @property
    def facility_energy_kwh(self) -> float:
        return self.energy_kwh * self.pue

    @property
    def hours(self) -> float:
        return self.total_duration_s / 3600.0

    @property
    def gco2e(self) -> float:
        return self.energy_kwh * self.intensity.g_per_kwh * self.pue

    @property
    def per_epoch_energy_j(self) -> float:
        """One epoch: training steps, evaluation, data loading, k_p passes and the per-epoch time."""
        return float(sum(p.per_epoch_energy_j for p in self.phases))

    @property
    def per_epoch_duration_s(self) -> float:
        return float(sum(p.duration_s for p in self.phases if p.count) / self.epochs)

    @property
    def per_epoch_train_energy_j(self) -> float:
        """Training steps only (forward + backward + optimizer), no evaluation and no overheads."""
        return self.train_step_energy_j * (self.train_steps_per_epoch - (self.last_train_batch != self.batch_size)) \
            + self._partial_train_j

    _partial_train_j: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "fxenergy.training/1",
            "model": self.model, "hardware": self.hardware, "predictor": self.predictor,
            "parameter_set": self.parameter_set,
            "run": {"epochs": self.epochs, "train_samples": self.train_samples, "val_samples": self.val_samples,
                    "batch_size": self.batch_size, "val_batch_size": self.val_batch_size,
                    "train_steps_per_epoch": self.train_steps_per_epoch,
                    "val_steps_per_epoch": self.val_steps_per_epoch,
                    "last_train_batch": self.last_train_batch, "last_val_batch": self.last_val_batch,
                    "power_limit_w": self.power_limit_w},
            "step": {"train_energy_j": self.train_step_energy_j, "train_duration_s": self.train_step_duration_s,
                     "val_energy_j": self.val_step_energy_j, "val_duration_s": self.val_step_duration_s},
            "per_epoch": {"energy_j": self.per_epoch_energy_j, "duration_s": self.per_epoch_duration_s,
                          "train_steps_energy_j": self.per_epoch_train_energy_j},
            "totals": {"energy_j": self.total_energy_j, "energy_kwh": self.energy_kwh,
                       "facility_energy_kwh": self.facility_energy_kwh, "duration_s": self.total_duration_s,
                       "hours": self.hours, "gco2e": self.gco2e},
            "carbon": {**self.intensity.to_dict(), "pue": self.pue,
                       "formula": "gCO2e = kWh x g_per_kwh x PUE"},
            "overheads": {"k_p_j": self.overheads.k_p_j, "k_e_j": self.overheads.k_e_j,
                          "epoch_overhead_s": self.overheads.epoch_overhead_s,
                          "host_to_device_bytes_per_s": self.overheads.host_to_device_bytes_per_s,
                          "source": self.overheads.source},
            "phases": [{"phase": p.phase, "energy_j": p.energy_j, "duration_s": p.duration_s, "count": p.count,
                        "per_epoch_energy_j": p.per_epoch_energy_j} for p in self.phases],
            "layers": [{"layer": r.key, "module_type": r.module_type, "energy_j": r.energy_j,
                        "duration_s": r.duration_s} for r in self.layers],
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent) + "\n"


def steps_per_epoch(samples: int, batch_size: int, *, drop_last: bool = False) -> tuple[int, int]:
    """``(steps, size of the last batch)``; the last batch is partial unless ``samples % batch == 0``."""
    full, rem = divmod(samples, batch_size)
    if drop_last or rem == 0:
        return full, batch_size
    return full + 1, rem


def _positive_int(name: str, value: Any, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (value == 0 and not allow_zero):
        need = "an integer >= 0" if allow_zero else "a positive integer"
        raise UserInputError(f"{name} must be {need}, got {value!r}")
    return value


def _batch_of(example: Any) -> int:
    tensors = [example] if isinstance(example, torch.Tensor) else [t for t in example if isinstance(t, torch.Tensor)]
    if not tensors or not tensors[0].shape:
        raise UserInputError("example_batch must be a tensor (or tuple of tensors) whose first dimension is the batch")
    return int(tensors[0].shape[0])


def _shapes_key(tree: Any) -> tuple[Any, ...]:
    """Shapes, dtypes and devices of the tensors in ``tree``, in order: what a capture depends on."""
    leaves = torch.utils._pytree.tree_leaves(tree)
    return tuple((tuple(t.shape), t.dtype, t.device.type) if isinstance(t, torch.Tensor) else repr(t) for t in leaves)


def _slice_batch(example: Any, batch: int, n: int) -> Any:
    """The example inputs at batch size ``n``: every tensor whose first dim is ``batch`` is resized to ``n``."""

    def one(t: Any) -> Any:
        if isinstance(t, torch.Tensor) and t.dim() and t.shape[0] == batch:
            if n <= batch:
                return t[:n]
            return t[:1].expand(n, *t.shape[1:]).contiguous() if t.device.type != "meta" else t.new_empty((n, *t.shape[1:]))
        return t

    if isinstance(example, torch.Tensor):
        return one(example)
    return tuple(one(t) for t in example)


def _slice_kwargs(kwargs: Mapping[str, Any] | None, batch: int, n: int) -> dict[str, Any] | None:
    if kwargs is None:
        return None
    return {k: _slice_batch(v, batch, n) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}


def _input_bytes(example: Any, kwargs: Mapping[str, Any] | None) -> int:
    items = [example] if isinstance(example, torch.Tensor) else list(example)
    items += list((kwargs or {}).values())
    return sum(t.numel() * t.element_size() for t in items if isinstance(t, torch.Tensor))


def default_overheads(profile: HardwareProfile) -> tuple[Overheads, str | None]:
    """k_p, k_e from the cache backend's constants fitted on whole training runs of this device, if shipped."""
    from fxenergy.predictors.interface import load_artifact

    try:
        art = load_artifact("cache", f"cache-{profile.name}")
    except UserInputError:
        return Overheads(source="none fitted for this hardware: k_p = k_e = 0"), (
            f"no overhead constants fitted on training runs for {profile.name}: k_p = k_e = 0 "
            "(set them with --pass-overhead-j / --run-overhead-j)")
    fitted_on = art.get("fitted_on") or {}
    dataset = str(fitted_on.get("dataset", "")) if isinstance(fitted_on, Mapping) else ""
    if "training-delrey" not in dataset:
        return Overheads(source=f"cache-{profile.name}.json not fitted on training runs of full models: k_p = k_e = 0"), (
            f"cache-{profile.name}.json holds seed 003's Table 4 constants (fitted on MLP runs); they are not applied "
            "as training overheads: k_p = k_e = 0 (set them with --pass-overhead-j / --run-overhead-j)")
    c = art["params"]["constants"]
    return Overheads(k_p_j=float(c.get("k_p", 0.0)), k_e_j=float(c.get("k_e", 0.0)),
                     source=f"predictors/params/cache-{profile.name}.json (fitted on {dataset})"), None


def _idle_w(profile: HardwareProfile) -> tuple[float, str | None]:
    from fxenergy.predictors.power import IDLE_FRACTION_ASSUMED

    if profile.idle_w is not None:
        return float(profile.idle_w), None
    if profile.tdp_w is None:
        raise UserInputError(f"hardware profile {profile.name!r} has neither idle power nor TDP; overheads need one")
    w = float(profile.tdp_w) * IDLE_FRACTION_ASSUMED
    return w, f"{profile.name}: idle power for overheads taken as {IDLE_FRACTION_ASSUMED:.0%} of TDP ({w:.0f} W)"


def estimate_training(
    model: torch.nn.Module,
    example_batch: Any,
    *,
    epochs: int,
    train_samples: int,
    val_samples: int = 0,
    val_batch_size: int | None = None,
    example_kwargs: Mapping[str, Any] | None = None,
    hardware: Any = "a100-80gb-pcie",
    predictor: str | None = None,
    params: Any = None,
    optimizer: str = "adamw",
    drop_last: bool = False,
    overheads: Overheads | None = None,
    power_limit_w: float | None = None,
    region: str | None = None,
    carbon_intensity_g_per_kwh: float | None = None,
    pue: float = DEFAULT_PUE,
    name: str | None = None,
    analyses: dict[Any, Any] | None = None,
) -> TrainingEstimate:
    """Energy, time and carbon of a whole training run, before it runs.

    ``example_batch`` is one training batch (a tensor or a tuple of tensors, batch first); its batch
    size is the run's. Step costs come from ``fxenergy.annotate(..., mode="training")`` (and
    ``mode="inference"`` for evaluation) on ``hardware`` with ``predictor``; see the module docstring
    for what is counted. ``overheads`` defaults to :func:`default_overheads` for the hardware.
    Carbon uses ``region`` (ISO code, country or ``provider:region``; default world mean) or
    ``carbon_intensity_g_per_kwh``, times ``pue`` (default 1.58, Uptime Institute 2023 average).

    ``analyses``: a dict to share between calls on the same model and example batch (say, one per
    hardware or region): each step's hardware-free analysis is captured once, kept there, and
    predicted on every device (analyse once, predict many). Keyed by the model object, the step's
    mode, optimizer and input shapes, so a call on another model or batch captures its own.
    """
    from fxenergy.analysis import analyse, predict
    from fxenergy.api import with_gpu_options
    from fxenergy.resolve import resolve
    from fxenergy.resolve import resolve_hardware as _resolve_hardware

    epochs = _positive_int("epochs", epochs)
    train_samples = _positive_int("train_samples", train_samples)
    val_samples = _positive_int("val_samples", val_samples, allow_zero=True)
    batch = _batch_of(example_batch)
    if batch > train_samples:
        raise UserInputError(f"batch size {batch} is larger than the training set ({train_samples} samples)")
    val_batch = batch if val_batch_size is None else _positive_int("val_batch_size", val_batch_size)
    if val_samples and val_batch > val_samples and val_batch_size is not None:
        raise UserInputError(f"validation batch size {val_batch} is larger than the validation set ({val_samples} samples)")
    if power_limit_w is not None and not (isinstance(power_limit_w, (int, float)) and math.isfinite(power_limit_w)
                                          and power_limit_w > 0):
        raise UserInputError(f"power limit must be a positive number of watts, got {power_limit_w!r}")
    pue = check_pue(pue)
    intensity = carbon_intensity(region, g_per_kwh=carbon_intensity_g_per_kwh)  # fail early, before the capture
    profile, _ = _resolve_hardware(hardware)
    if profile is None:
        raise UserInputError("a training estimate needs a hardware profile (see `fxenergy hardware list`)")
    notes: list[str] = []
    if overheads is None:
        overheads, note = default_overheads(profile)
        if note:
            notes.append(note)
    overheads.check()
    idle_w, idle_note = _idle_w(profile)
    if idle_note:
        notes.append(idle_note)
    if power_limit_w is not None and power_limit_w < idle_w:
        raise UserInputError(f"power limit {power_limit_w:g} W is below the device's idle power ({idle_w:.0f} W)")

    hw = profile if not isinstance(hardware, str) or not hardware.endswith(".json") else hardware
    setup = with_gpu_options(resolve(hw, predictor, params))  # as fxenergy.annotate does, once for every step
    n_train, last_train = steps_per_epoch(train_samples, batch, drop_last=drop_last)
    n_val, last_val = steps_per_epoch(val_samples, val_batch, drop_last=False) if val_samples else (0, val_batch)
    if val_samples and val_batch > val_samples:
        n_val, last_val = 1, val_samples

    def step(n: int, mode: str) -> Any:
        x = _slice_batch(example_batch, batch, n)
        kw = _slice_kwargs(example_kwargs, batch, n)
        key = (id(model), mode, optimizer, name, _shapes_key(x), _shapes_key(kw))
        a = analyses.get(key) if analyses is not None else None
        if a is None:
            a = analyse(model, x, example_kwargs=kw, mode=mode, optimizer=optimizer, name=name)
            if analyses is not None:
                analyses[key] = a
        return a.result(predict(a, setup) if setup.backend is not None else None)

    # (result, how many such steps per epoch, phase prefix)
    runs: list[tuple[Any, int, str]] = []
    full_train = n_train - (last_train != batch)
    train_full = step(batch, "training")
    runs.append((train_full, full_train, ""))
    partial_train = None
    if last_train != batch:
        partial_train = step(last_train, "training")
        runs.append((partial_train, 1, ""))
    val_full = val_partial = None
    if n_val:
        full_val = n_val - (last_val != val_batch)
        if full_val:
            val_full = step(val_batch, "inference")
            runs.append((val_full, full_val, "eval"))
        if last_val != val_batch:
            val_partial = step(last_val, "inference")
            runs.append((val_partial, 1, "eval"))
    for r, _, _ in runs:
        if r.totals.energy_j is None or r.totals.duration_s is None:
            raise UserInputError("a training estimate needs energy and duration per step: choose a predictor "
                                 "other than 'none'")
    for note in train_full.info.get("energy_notes", []):
        if note not in notes:
            notes.append(note)
    if idle_note and any("idle power not in the profile" in n for n in notes):
        notes.remove(idle_note)  # the backend already says which idle power it assumed

    # Power cap (first-order DVFS): a step whose average power P exceeds the cap runs at a clock scaled by
    # s = ((cap - idle) / (P - idle))^(1/3) (dynamic power ~ f^3), its duration / s, its power the cap.
    stretch: dict[int, float] = {}
    escale: dict[int, float] = {}
    for r, _, _ in runs:
        e, t = r.totals.energy_j, r.totals.duration_s
        stretch[id(r)] = escale[id(r)] = 1.0
        if power_limit_w is not None and t > 0 and e / t > power_limit_w:
            p = e / t
            s = ((power_limit_w - idle_w) / (p - idle_w)) ** (1.0 / 3.0) if p > idle_w else 1.0
            stretch[id(r)] = 1.0 / s
            escale[id(r)] = power_limit_w * (t / s) / e
    if power_limit_w is not None:
        capped = [k for k, v in stretch.items() if v > 1.0]
        notes.append(f"power limit {power_limit_w:g} W: {len(capped)} of {len(runs)} step kinds predicted above it; "
                     "each runs at clock s = ((limit - idle) / (P - idle))^(1/3) of its own (dynamic power ~ f^3), "
                     "duration / s at the limit's power (the energy backend has no power-limit model)")

    # Phases and layers per epoch.
    phase_e: dict[str, float] = {}
    phase_t: dict[str, float] = {}
    phase_n: dict[str, int] = {}
    layer_e: dict[str, float] = {}
    layer_t: dict[str, float] = {}
    layer_type: dict[str, str] = {}
    for r, count, prefix in runs:
        s, k = stretch[id(r)], escale[id(r)]
        for g in r.group("phase"):
            key = prefix or g.key
            if prefix == "eval" and g.key not in ("forward", "overhead"):
                key = f"eval/{g.key}"
            phase_e[key] = phase_e.get(key, 0.0) + g.totals.energy_j * k * count
            phase_t[key] = phase_t.get(key, 0.0) + g.totals.duration_s * s * count
            phase_n[key] = phase_n.get(key, 0) + count
        for g in r.group("layer"):
            layer_e[g.key] = layer_e.get(g.key, 0.0) + g.totals.energy_j * k * count
            layer_t[g.key] = layer_t.get(g.key, 0.0) + g.totals.duration_s * s * count
            layer_type.setdefault(g.key, g.module_type)

    # Data loading: every batch copied host -> device, not overlapped, device idle meanwhile.
    train_bytes = _input_bytes(example_batch, example_kwargs) / batch  # per sample
    loaded = train_samples if not drop_last else full_train * batch
    h2d_s = (loaded + val_samples) * train_bytes / overheads.host_to_device_bytes_per_s
    passes = 1 + (1 if n_val else 0)
    extra = {
        "data loading": (h2d_s * idle_w, h2d_s, n_train + n_val),
        "per-pass overhead (k_p)": (overheads.k_p_j * passes, 0.0, passes),
        "per-epoch overhead": (overheads.epoch_overhead_s * idle_w, overheads.epoch_overhead_s, 1),
    }
    phases: list[PhaseCost] = []
    for key in phase_e:
        phases.append(PhaseCost(key, phase_e[key] * epochs, phase_t[key] * epochs, phase_n[key] * epochs,
                                phase_e[key]))
    for key, (e, t, n) in extra.items():
        if e or t:
            phases.append(PhaseCost(key, e * epochs, t * epochs, n * epochs, e))
    if overheads.k_e_j:
        phases.append(PhaseCost("per-run overhead (k_e)", overheads.k_e_j, 0.0, 1, 0.0))
    layers = [LayerCost(k, layer_type[k], layer_e[k] * epochs, layer_t[k] * epochs) for k in layer_e]
    layers += [LayerCost(f"({p.phase})", "", p.energy_j, p.duration_s) for p in phases
               if p.phase in extra or p.phase.startswith("per-run")]
    layers.sort(key=lambda r: -r.energy_j)

    val_step: Any = val_full or val_partial  # the evaluation step's result (None without evaluation)
    est = TrainingEstimate(
        model=name or train_full.info.get("model", type(model).__name__),
        hardware=profile.name, predictor=train_full.info.get("predictor", "?"),
        parameter_set=train_full.info.get("parameter_set"),
        epochs=epochs, train_samples=train_samples, val_samples=val_samples, batch_size=batch,
        val_batch_size=val_batch, train_steps_per_epoch=n_train, val_steps_per_epoch=n_val,
        last_train_batch=last_train, last_val_batch=last_val if n_val else 0,
        train_step_energy_j=train_full.totals.energy_j * escale[id(train_full)], train_step_duration_s=train_full.totals.duration_s
        * stretch[id(train_full)],
        val_step_energy_j=val_step.totals.energy_j * escale[id(val_step)] if n_val else 0.0,
        val_step_duration_s=val_step.totals.duration_s * stretch[id(val_step)] if n_val else 0.0,
        phases=phases, layers=layers, overheads=overheads, intensity=intensity, pue=pue,
        power_limit_w=power_limit_w, notes=notes,
    )
    est._partial_train_j = (partial_train.totals.energy_j * escale[id(partial_train)]
                            if partial_train is not None else 0.0)
    _check_sane(est)
    return est


def _check_sane(est: TrainingEstimate) -> None:
    e, t = est.total_energy_j, est.total_duration_s
    if not (math.isfinite(e) and e > 0 and math.isfinite(t) and t > 0):
        raise UserInputError(f"the training estimate is not finite and positive (energy {e} J, duration {t} s); "
                             "this model/hardware pair is outside what the backend covers")
    layer_sum = sum(r.energy_j for r in est.layers)
    if not math.isclose(layer_sum, e, rel_tol=1e-9, abs_tol=1e-9):
        raise AssertionError(f"layer rows sum to {layer_sum} J, phases to {e} J")  # a bug, not bad input


def replace_overheads(o: Overheads, **changes: Any) -> Overheads:
    """``o`` with the given fields replaced (None values ignored), the source extended."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return o
    return replace(o, **changes, source=f"{o.source}; set by the user: {', '.join(sorted(changes))}")
