"""The one resolver of (hardware, predictor, parameter set): used by the API, the CLI, budgets and ``fit``.

:func:`resolve` turns what a user typed (names, files, objects) into a :class:`Setup`: the hardware
profile, the predictor backend ready to run, the duration model it needs, and a label for the
parameter set. It is the only place that knows that

* a calibration file given as hardware brings its own HEF curves;
* ``--predictor FILE.json`` is a fitted artifact that names its own backend;
* ``"auto"`` means the learned GPU model on GPU profiles, else HEF where a parameter set fitted on
  measured energy exists, else the roofline;
* HEF parameters drive the duration model as well as the energy, the other backends use roofline
  durations;
* a parameter set fitted for another device is refused unless ``force=True`` (the setup then
  carries a note, which the report prints in its header).

Which backends are fitted, and which have parameters for a device, comes from the registry
(:data:`fxenergy.predictors.base.PREDICTORS`), never from a list of names kept here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fxenergy.errors import UserInputError

if TYPE_CHECKING:
    from fxenergy.hardware import HardwareProfile
    from fxenergy.predictors.hef_law import HEFParameters

__all__ = ["Setup", "resolve", "resolve_hardware", "default_parameter_set", "applicable_predictors",
           "split_hardware", "setups_for_all"]


@dataclass(frozen=True)
class Setup:
    """A resolved (hardware, predictor, parameter set). ``backend`` is None when ``predictor == "none"``.

    ``duration_model`` is ``"hef"`` or ``"roofline"`` (None without a backend); ``hef_params`` drives
    HEF durations. ``notes`` are said in the report header (e.g. a parameter set used with ``force``).
    """

    profile: HardwareProfile | None
    predictor: str
    backend: Any  # a registered Predictor (fxenergy.predictors.base), or None
    duration_model: str | None
    hef_params: HEFParameters | None
    parameter_set: str | None
    notes: tuple[str, ...] = ()
    calibrated: HEFParameters | None = None
    cpu_model: Any = None  # fxenergy.perf.cpu.CpuDurationModel where duration_model == "cpu"

    @property
    def hardware(self) -> str | None:
        return getattr(self.profile, "name", None)


def split_hardware(text: str) -> list[str]:
    """``"a30,h100-sxm"`` → ``["a30", "h100-sxm"]`` (a single name or file stays one item).

    >>> split_hardware("a30, h100-sxm,l4")
    ['a30', 'h100-sxm', 'l4']
    """
    items = [t.strip() for t in text.split(",")]
    if any(not t for t in items):
        raise UserInputError(f"empty hardware name in {text!r}; separate names with commas, e.g. a30,h100-sxm")
    if len(set(items)) != len(items):
        raise UserInputError(f"hardware {text!r} names a device twice")
    return items


def resolve_hardware(hardware: Any) -> tuple[HardwareProfile | None, HEFParameters | None]:
    """``(profile, calibrated HEF parameters or None)`` from a name, a profile file or a calibration file."""
    from fxenergy.hardware import HardwareProfile, detect_local, load_profile

    if hardware is None:
        return None, None
    if isinstance(hardware, HardwareProfile):
        return hardware, None
    if isinstance(hardware, os.PathLike):
        hardware = os.fspath(hardware)
    if not isinstance(hardware, str):
        raise UserInputError(f"hardware must be a profile name, a JSON file path or a HardwareProfile, got {type(hardware).__name__}")
    if hardware == "local":
        return detect_local(), None
    if hardware.endswith(".json"):
        from fxenergy.calibrate import is_calibration_file, load_calibration

        if is_calibration_file(hardware):
            return load_calibration(hardware)
    return load_profile(hardware), None


def default_parameter_set(profile: HardwareProfile, *, with_energy: bool = False) -> str | None:
    """The bundled HEF parameter set for ``profile``: one fitted on measurements first, else published.

    With ``with_energy``, only sets whose energy coefficients were fitted on measured energy count.

    >>> from fxenergy.hardware import load_profile
    >>> default_parameter_set(load_profile("a30"))
    'hef-fitted-a30'
    """
    from fxenergy.predictors.hef_law import list_hef_parameters, load_hef_parameters

    sets = [load_hef_parameters(n) for n in list_hef_parameters()]
    mine = [p for p in sets if p.device == profile.name and (not with_energy or (p.energy and "fitted" in p.name))]
    mine.sort(key=lambda p: ("fitted" not in p.name, p.energy is None, p.name))
    return mine[0].name if mine else None


def _registry() -> Mapping[str, Any]:
    from fxenergy.predictors import PREDICTORS  # importing the package registers the bundled backends
    from fxenergy.predictors.interface import load_entry_point_predictors

    load_entry_point_predictors()
    return PREDICTORS


def _learned_applies(profile: HardwareProfile) -> bool:
    """The learned GPU backend runs on GPU profiles that state a power limit (TDP)."""
    return bool(getattr(profile, "is_gpu", False)) and getattr(profile, "tdp_w", None) is not None


def _is_fitted_backend(cls: Any) -> bool:
    """A backend whose parameters are a JSON artifact (the fittable protocol's ``from_json``)."""
    return callable(getattr(cls, "from_json", None))


def _uses_hef_parameters(cls: Any) -> bool:
    """A backend built from an HEF parameter set (``cls(params=HEFParameters)``): ``hef`` and its kin."""
    return getattr(cls, "parameter_kind", None) == "hef" or getattr(cls, "name", None) == "hef"


def applicable_predictors(profile: HardwareProfile, calibrated: HEFParameters | None = None) -> list[str]:
    """Backends that can run on ``profile``: those needing no parameters always; fitted ones where a
    parameter file ships for the device; HEF where a set exists for it (or a calibration brought one)."""
    from fxenergy.predictors.interface import load_artifact

    names = []
    for name, cls in _registry().items():
        if name == "learned":
            ok = _learned_applies(profile)
        elif name == "physical":
            ok = not profile.is_gpu
        elif _uses_hef_parameters(cls):
            ok = calibrated is not None or default_parameter_set(profile) is not None
        elif _is_fitted_backend(cls):
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


def setups_for_all(profile: HardwareProfile, calibrated: HEFParameters | None = None) -> list[Setup]:
    """One :class:`Setup` per applicable backend on ``profile`` (a calibration's curves for HEF)."""
    out = []
    for name in applicable_predictors(profile, calibrated):
        hef_kind = _uses_hef_parameters(_registry()[name])
        out.append(resolve(profile, name, calibrated if (hef_kind and calibrated is not None) else None))
    return out


def resolve(hardware: Any = None, predictor: str | None = None, params: Any = None, *, force: bool = False,
            threads: int | None = None) -> Setup:
    """Resolve the options into a :class:`Setup` (one-line :class:`UserInputError` on bad input).

    >>> s = resolve("a30")
    >>> s.predictor, s.parameter_set, s.duration_model
    ('learned', 'learned-gpu', 'learned')
    >>> resolve("a30", "hef").parameter_set
    'hef-fitted-a30'
    >>> resolve("a30", "roofline").parameter_set
    'a30 profile (idle..TDP power)'
    >>> resolve("a30", "hef", "hef-seed004-a100")
    Traceback (most recent call last):
    ...
    fxenergy.errors.UserInputError: parameter set hef-seed004-a100 was fitted for a100-80gb-pcie, not a30; pick one fitted for a30 (or pass --force to use it anyway)
    """
    from fxenergy.predictors.base import make_predictor
    from fxenergy.predictors.hef_law import HEFParameters, load_hef_parameters

    profile, calibrated = resolve_hardware(hardware)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise UserInputError(f"threads must be a positive integer, got {threads!r}")
    cal_path = os.fspath(hardware) if calibrated is not None and isinstance(hardware, (str, os.PathLike)) else None
    if isinstance(predictor, str) and predictor.endswith(".json"):  # a fitted artifact names its own backend
        predictor, params = _artifact_backend(predictor, params)
    cpu = profile is not None and not profile.is_gpu
    learned_corr = None  # a GPU calibration's correction of the learned model (fxenergy calibrate --device cuda)
    if cal_path is not None and not cpu:
        from fxenergy.calibrate.gpu import load_learned_correction

        learned_corr = load_learned_correction(cal_path)
    if learned_corr is not None and params is None and predictor in (None, "auto", "learned"):
        predictor = "learned"  # the calibrated learned model is the default on that GPU
    if calibrated is not None and params is None and (predictor == "hef" or (predictor is None and not cpu)):
        params = calibrated  # a calibration file brings its own fitted curves (on CPUs: physical reads them)
    name = predictor or ("none" if profile is None else "auto")
    if name == "all":
        raise UserInputError("predictor 'all' compares backends; use compare_predictors() or `report --predictor all`")
    if name == "none":
        if params is not None:
            raise UserInputError("a parameter set needs a predictor; add --predictor hef|layerwise|cache")
        return Setup(profile, "none", None, None, None, None, (), calibrated)
    if profile is None:
        raise UserInputError(f"predictor {name!r} needs a hardware profile; pass hardware= (see `fxenergy hardware list`)")
    registry = _registry()
    if name == "auto" and cpu and params is None:
        name = "physical"  # CPUs: CPU durations x package power (issue 12)
    if name == "physical":
        from fxenergy.predictors.physical import PhysicalPredictor

        phys = PhysicalPredictor.for_profile(profile, params, threads=threads, calibration=cal_path)
        return Setup(profile, name, phys, "cpu", None, phys.parameter_set, (), calibrated,
                     phys.duration_model(profile))
    # on CPUs every backend but HEF sees the CPU duration model (kernel classes, dispatch, cache level)
    cpu_model = None
    if cpu:
        from fxenergy.predictors.physical import PhysicalPredictor

        cpu_model = PhysicalPredictor.for_profile(profile, threads=threads, calibration=cal_path).duration_model(profile)
    dmodel = "cpu" if cpu else "roofline"
    if name == "auto":
        # HEF by default only where its energy coefficients come from measured energy: the A100 and
        # RTX 2080 Ti curves were timed op by op with a per-op floor that ops inside a model do not
        # pay (docs/validation.md), so those devices default to the roofline power model.
        # GPUs: the learned model (fxenergy.perf), whose durations and power transfer across GPUs.
        if params is None and calibrated is None and _learned_applies(profile):
            name = "learned"
        else:
            name = "hef" if (params is not None or default_parameter_set(profile, with_energy=True)) else "roofline"
    if name not in registry:
        make_predictor(name)  # raises the one-line "unknown predictor" error
    cls = registry[name]
    notes: list[str] = []
    if name == "learned":  # the GPU model: its parameter set is the learned-gpu artifact (or a file)
        if not _learned_applies(profile):
            raise UserInputError(f"the learned backend models GPUs with a power limit; {profile.name!r} is not one "
                                 "(use --predictor roofline)")
        backend: Any = make_predictor(name, params=params, correction=learned_corr)
        return Setup(profile, name, backend, "learned", None, backend.params_.name, (), calibrated)
    if _uses_hef_parameters(cls):
        chosen = (params if params is not None
                  else default_parameter_set(profile, with_energy=predictor is None) or default_parameter_set(profile))
        if chosen is None:
            raise UserInputError(f"no HEF parameter set for {profile.name}; run `fxenergy calibrate`, pass --params FILE, "
                                 "or use --predictor roofline")
        hef = chosen if isinstance(chosen, HEFParameters) else load_hef_parameters(chosen)
        notes += _device_check(hef.name, hef.device, profile.name, force)
        return Setup(profile, name, make_predictor(name, params=hef), "hef", hef, hef.name, tuple(notes), calibrated)
    if _is_fitted_backend(cls):
        from fxenergy.predictors.interface import load_artifact

        artifact = load_artifact(name, params if params is not None else f"{name}-{profile.name}")
        label = os.path.basename(os.fspath(params)) if params is not None else f"{name}-{profile.name}"
        notes += _device_check(label, artifact.get("hardware"), profile.name, force)
        backend = cls.from_json(artifact)
        return Setup(profile, name, backend, dmodel, None, label, tuple(notes), calibrated, cpu_model)
    if params is not None:
        raise UserInputError(f"predictor {name!r} takes no parameter set; drop --params")
    return Setup(profile, name, make_predictor(name), dmodel, None, f"{profile.name} profile (idle..TDP power)",
                 (), calibrated, cpu_model)


def _device_check(label: str, fitted_for: str | None, device: str, force: bool) -> list[str]:
    if not fitted_for or fitted_for == device:
        return []
    if not force:
        raise UserInputError(f"parameter set {label} was fitted for {fitted_for}, not {device}; pick one fitted for "
                             f"{device} (or pass --force to use it anyway)")
    return [f"parameter set {label} was fitted for {fitted_for} and is applied to {device} (--force)"]


def _artifact_backend(path: str, params: Any) -> tuple[str, str]:
    from fxenergy._files import read_json

    if params is not None:
        raise UserInputError("--predictor FILE.json is already the parameter set; drop --params")
    artifact = read_json(path, "predictor file")
    backend = artifact.get("backend") if isinstance(artifact, dict) else None
    if not isinstance(backend, str):
        raise UserInputError(f"predictor file {path}: no 'backend' key; write it with `fxenergy fit`")
    return backend, path
