"""``annotate``: the one call that runs capture → passes → (predictor) and returns a Result."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch

from fxenergy import __version__
from fxenergy.capture import capture
from fxenergy.errors import UserInputError
from fxenergy.passes.costs import CostPass, get_convention
from fxenergy.passes.working_sets import WorkingSetPass, model_working_sets
from fxenergy.hardware import HardwareProfile, detect_local, load_profile
from fxenergy.passes.durations import DurationPass
from fxenergy.predictors.base import PREDICTORS, make_predictor
from fxenergy.predictors.interface import load_artifact, load_entry_point_predictors
from fxenergy.predictors.hef_law import HEFParameters, list_hef_parameters, load_hef_parameters
from fxenergy.records import ENERGY, NodeEnergy, put_record
from fxenergy.result import Result, Row, rows_from_graph

__all__ = ["annotate", "default_parameter_set", "OVERHEAD_ROW"]

OVERHEAD_ROW = "(per-run constant)"


def annotate(
    model: torch.nn.Module,
    example_input: Any = (),
    *,
    example_kwargs: Mapping[str, Any] | None = None,
    mode: str = "inference",
    convention: str = "default",
    hardware: Any = None,
    predictor: str | None = None,
    params: str | HEFParameters | None = None,
    optimizer: str = "adamw",
    method: str = "auto",
    dataset_samples: int | None = None,
    name: str | None = None,
    threads: int | None = None,
) -> Result:
    """Capture ``model(*example_input, **example_kwargs)`` and annotate every node with its costs.

    No weights are copied and nothing is computed: the model runs on meta tensors. ``mode`` is
    ``"inference"`` (forward only) or ``"training"`` (forward + backward + ``optimizer`` update, as
    one graph). ``convention`` is the MAC convention (``"default"`` = torch.utils.flop_counter,
    ``"seed000"`` = Getzner et al.).

    With ``hardware`` (a profile name, JSON file or profile object) every node also gets a predicted
    ``duration_s`` and ``energy_j``: ``predictor`` ``"hef"`` (seed 004 power law; the default when a
    parameter set fitted on measured energy exists for the device; ``params`` picks a set by name, file
    or object, and a calibration file given as ``hardware`` brings its own) or ``"roofline"`` (roofline
    durations, power between idle and TDP; the default on GPUs otherwise) or ``"physical"`` (CPU
    durations x package power, :mod:`fxenergy.predictors.physical`; the default on CPUs).
    ``predictor="none"`` skips energy. ``threads`` (CPUs) is the number of threads the run uses
    (default: what torch would use there); it sets durations and the active cores' power.
    Every estimate is checked against physical bounds (:mod:`fxenergy.predictors.bounds`): one that
    breaks them raises :class:`~fxenergy.predictors.bounds.PhysicalBoundsError` instead of a number.

    >>> import torch, fxenergy
    >>> r = fxenergy.annotate(torch.nn.Linear(4, 3), torch.randn(2, 4))
    >>> r.totals.macs  # 2 * 4 * 3 = 24, no bias under the default convention
    24
    """
    conv = get_convention(convention)
    profile, calibrated = _resolve_hardware(hardware)
    if calibrated is not None and params is None and (predictor == "hef" or (predictor is None and profile.is_gpu)):
        params = calibrated  # a calibration file brings its own fitted curves (on CPUs: physical reads them)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise UserInputError(f"threads must be a positive integer, got {threads!r}")
    cal_path = hardware if calibrated is not None and isinstance(hardware, str) else None
    predictor_name, backend, hef_params = _resolve_predictor(predictor, profile, params, threads=threads,
                                                             calibration=cal_path)
    if dataset_samples is not None and dataset_samples <= 0:
        raise UserInputError(f"dataset_samples must be a positive integer, got {dataset_samples}")

    cap = capture(model, example_input, example_kwargs, mode=mode, method=method, optimizer=optimizer)
    gm = cap.graph_module
    for pass_ in (CostPass(conv), WorkingSetPass()):
        pass_(gm)

    estimate = None
    duration_model = None
    if backend is not None:
        estimate, backend, predictor_name, duration_model = _predict(gm, profile, backend, predictor_name, hef_params,
                                                                     threads, cal_path, mode)
        for node in gm.graph.nodes:
            if node.name in estimate.node_energy_j:
                put_record(node, ENERGY, NodeEnergy(estimate.node_energy_j[node.name], predictor_name))

    rows = rows_from_graph(gm, predicted=estimate is not None)
    if estimate is not None and estimate.overhead_j:
        rows += (_overhead_row(estimate.overhead_j),)

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
    info = {
        "model": name or type(model).__name__,
        "fxenergy_version": __version__,
        "mode": mode,
        "optimizer": cap.optimizer,
        "capture_method": cap.method,
        "capture_attempts": list(cap.attempts),
        "convention": conv.name,
        "inputs": [{"shape": list(s.shape), "dtype": str(s.dtype).removeprefix("torch.")} for s in cap.input_specs],
        "param_count": cap.param_count,
        "param_bytes": cap.param_bytes,
        "buffer_bytes": cap.buffer_bytes,
        "hardware": getattr(profile, "name", None),
        "hardware_display_name": getattr(profile, "display_name", None),
        "predictor": predictor_name,
        "parameter_set": estimate.parameter_set if estimate else None,
        "duration_model": duration_model,
        "energy_notes": list(estimate.notes) if estimate else [],
    }
    return Result(gm, rows, ws, info)


def _predict(gm, profile, backend, name, hef_params, threads, cal_path, mode):  # noqa: ANN001, ANN202
    """Durations then energy on ``gm``, bounds-checked: ``(estimate, backend, name, duration model)``.

    On CPUs every backend but HEF sees the CPU duration model (kernel classes, dispatch, cache level)
    at ``threads``. A backend outside its training domain on a CPU falls back to ``physical``, with a
    note; elsewhere it refuses. A result that breaks a physical bound raises PhysicalBoundsError.
    """
    from fxenergy.predictors.bounds import PhysicalBoundsError, check_estimate
    from fxenergy.predictors.layerwise import OutOfDomainError
    from fxenergy.predictors.physical import PhysicalPredictor

    if hasattr(backend, "duration_pass"):
        dpass, dname = backend.duration_pass(profile), "cpu"
    elif hef_params:
        dpass, dname = DurationPass(profile, "hef", hef_params), "hef"
    elif not profile.is_gpu:
        dpass, dname = PhysicalPredictor.for_profile(profile, threads=threads, calibration=cal_path) \
            .duration_pass(profile), "cpu"
    else:
        dpass, dname = DurationPass(profile, "roofline"), "roofline"
    dpass(gm)
    try:
        estimate = backend.predict(gm, profile)
    except OutOfDomainError as e:
        if profile.is_gpu or mode != "inference":
            raise
        backend = PhysicalPredictor.for_profile(profile, threads=threads, calibration=cal_path)
        est = backend.predict(gm, profile)  # the durations already are this CPU model's (see above)
        estimate = dataclasses.replace(est, notes=(f"{name} refused: {e}; physical model used instead", *est.notes))
        name, dname = "physical", "cpu"
    bad = check_estimate(gm, estimate, profile, backend)
    if bad:
        raise PhysicalBoundsError(f"predictor {name!r} on {profile.name} broke physical bounds: {'; '.join(bad)}; "
                                  "its figure is not shown (try --predictor all to compare backends)")
    return estimate, backend, name, dname


def _overhead_row(energy_j: float) -> Row:
    """Seed 004's per-run constant ``h`` as a row of its own, so the energy column sums to the total."""
    return Row(node=OVERHEAD_ROW, op="constant", module_path=OVERHEAD_ROW, module_type="", phase="overhead",
               macs=0, flops=0, elementwise_flops=0, bytes_read=0, bytes_written=0, param_bytes_read=0,
               inter_layer_bytes=0, duration_s=0.0, energy_j=energy_j)


def _resolve_hardware(hardware: Any) -> tuple[Any, HEFParameters | None]:
    """``(profile, calibrated HEF parameters or None)`` from a name, a profile file or a calibration file."""
    if hardware is None:
        return None, None
    if isinstance(hardware, HardwareProfile):
        return hardware, None
    if not isinstance(hardware, str):
        raise UserInputError(f"hardware must be a profile name, a JSON file path or a HardwareProfile, got {type(hardware).__name__}")
    from fxenergy.calibrate import is_calibration_file, load_calibration

    if hardware == "local":
        return detect_local(), None
    if hardware.endswith(".json") and is_calibration_file(hardware):
        return load_calibration(hardware)
    return load_profile(hardware), None


def default_parameter_set(profile: Any, *, with_energy: bool = False) -> str | None:
    """The bundled HEF parameter set for ``profile``: one fitted on measurements first, else published.

    With ``with_energy``, only sets whose energy coefficients were fitted on measured energy count.
    """
    sets = [load_hef_parameters(n) for n in list_hef_parameters()]
    mine = [p for p in sets if p.device == profile.name and (not with_energy or (p.energy and "fitted" in p.name))]
    mine.sort(key=lambda p: ("fitted" not in p.name, p.energy is None, p.name))
    return mine[0].name if mine else None


def _resolve_predictor(
    predictor: str | None, profile: Any, params: str | HEFParameters | None, *, threads: int | None = None,
    calibration: str | None = None,
) -> tuple[str, Any, HEFParameters | None]:
    """``(name, backend, hef_params)`` for the options; ``backend`` is None for ``"none"``."""
    name = predictor or ("none" if profile is None else "auto")
    if name == "none":
        if params is not None:
            raise UserInputError("a parameter set needs a predictor; add --predictor hef|layerwise|cache")
        return "none", None, None
    if profile is None:
        raise UserInputError(f"predictor {name!r} needs a hardware profile; pass hardware= (see `fxenergy hardware list`)")
    load_entry_point_predictors()
    if name == "auto" and not profile.is_gpu and not isinstance(params, HEFParameters):
        name = "physical"  # CPUs: CPU durations x package power (issue 12)
    if name == "physical":
        from fxenergy.predictors.physical import PhysicalPredictor

        return name, PhysicalPredictor.for_profile(profile, params, threads=threads, calibration=calibration), None
    if name == "auto":
        # HEF by default only where its energy coefficients come from measured energy: the A100 and
        # RTX 2080 Ti curves were timed op by op with a per-op floor that ops inside a model do not
        # pay (docs/validation.md), so those devices default to the roofline power model.
        name = "hef" if (params or default_parameter_set(profile, with_energy=True)) else "roofline"
    if name not in PREDICTORS:
        make_predictor(name)  # raises the one-line "unknown predictor" error
    if name == "hef":
        chosen = params or default_parameter_set(profile, with_energy=predictor is None) or default_parameter_set(profile)
        if chosen is None:
            raise UserInputError(f"no HEF parameter set for {profile.name}; run `fxenergy calibrate`, pass --params FILE, "
                                 "or use --predictor roofline")
        hef_params = chosen if isinstance(chosen, HEFParameters) else load_hef_parameters(chosen)
        return name, make_predictor(name, params=hef_params), hef_params
    cls = PREDICTORS[name]
    if hasattr(cls, "from_json"):  # a fitted backend: its artifact is the parameter set
        return name, cls.from_json(load_artifact(name, params or f"{name}-{profile.name}")), None
    if params is not None:
        raise UserInputError(f"predictor {name!r} takes no parameter set; drop --params")
    return name, make_predictor(name), None


def applicable_predictors(profile: Any) -> list[str]:
    """Backends that can run on ``profile``: roofline always; the others where parameters ship for it."""
    load_entry_point_predictors()
    names = []
    for name, cls in PREDICTORS.items():
        if name == "physical":
            ok = not profile.is_gpu
        elif name == "hef":
            ok = default_parameter_set(profile) is not None
        elif hasattr(cls, "from_json"):
            try:
                load_artifact(name, f"{name}-{profile.name}")
                ok = True
            except UserInputError:
                ok = False
        else:
            ok = True
        if ok:
            names.append(name)
    return names


def compare_predictors(model: torch.nn.Module, example_input: Any = (), *, hardware: Any, **options: Any) -> dict[str, Result]:
    """Annotate once per applicable backend on ``hardware``: ``{predictor name: Result}``.

    The spread between the backends' totals is the uncertainty band :mod:`fxenergy.report` shows.
    """
    profile, _ = _resolve_hardware(hardware)
    if profile is None:
        raise UserInputError("comparing predictors needs a hardware profile")
    from fxenergy.predictors.bounds import PhysicalBoundsError

    out, refused = {}, []
    for name in applicable_predictors(profile):
        try:
            out[name] = annotate(model, example_input, hardware=hardware if isinstance(hardware, str) else profile,
                                 predictor=name, **options)
        except (PhysicalBoundsError, UserInputError) as e:
            if isinstance(e, PhysicalBoundsError) or "refuse" in str(e):
                refused.append(f"{name}: not shown: {e}")
                continue
            raise
    for r in out.values():
        r.info["energy_notes"] = [*r.info.get("energy_notes", []), *refused]
    if not out:
        raise UserInputError("no backend gave a physically possible estimate: " + " | ".join(refused))
    return out
