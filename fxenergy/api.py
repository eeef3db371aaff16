"""``annotate``: the one call that runs analyse → (predict) and returns a Result.

``compare_predictors`` and ``compare_hardware`` analyse once and predict many
(:mod:`fxenergy.analysis`); option resolution is :func:`fxenergy.resolve.resolve`'s alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fxenergy.analysis import OVERHEAD_ROW, Analysis, analyse, predict
from fxenergy.errors import UserInputError
from fxenergy.resolve import (
    Setup,
    applicable_predictors,
    default_parameter_set,
    resolve,
    resolve_hardware,
    setups_for_all,
)

if TYPE_CHECKING:
    import torch

    from fxenergy.analysis import Prediction
    from fxenergy.hardware import HardwareProfile
    from fxenergy.predictors.hef_law import HEFParameters
    from fxenergy.result import Result

__all__ = ["annotate", "analyse", "compare_predictors", "compare_hardware", "predictor_band", "default_parameter_set",
           "applicable_predictors", "OVERHEAD_ROW"]  # and PREDICTORS, the registry (module __getattr__)

_ANALYSIS_OPTIONS = ("example_kwargs", "mode", "convention", "optimizer", "method", "dataset_samples", "name")


def __getattr__(name: str) -> Any:
    if name == "PREDICTORS":  # the registry, with every bundled backend registered
        from fxenergy.predictors import PREDICTORS

        return PREDICTORS
    raise AttributeError(name)


def annotate(
    model: torch.nn.Module,
    example_input: Any = (),
    *,
    example_kwargs: Mapping[str, Any] | None = None,
    mode: str = "inference",
    convention: str = "default",
    hardware: str | HardwareProfile | None = None,
    predictor: str | None = None,
    params: str | HEFParameters | None = None,
    optimizer: str = "adamw",
    method: str = "auto",
    dataset_samples: int | None = None,
    name: str | None = None,
    force: bool = False,
    matmul_precision: str | None = None,
    conv_tf32: bool | None = None,
    power_limit_w: float | None = None,
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
    durations, power between idle and TDP; the default otherwise). ``predictor="none"`` skips energy.
    A parameter set fitted for another device is refused unless ``force=True``. On CPUs the default
    is ``"physical"`` (CPU durations x package power, :mod:`fxenergy.predictors.physical`) and
    ``threads`` (default: what torch would use there) sets durations and the active cores' power.
    An estimate that breaks a physical bound raises
    :class:`~fxenergy.predictors.bounds.PhysicalBoundsError` instead of giving a number.

    >>> import torch, fxenergy
    >>> r = fxenergy.annotate(torch.nn.Linear(4, 3), torch.randn(2, 4))
    >>> r.totals.macs  # 2 * 4 * 3 = 24, no bias under the default convention
    24
    """
    setup = resolve(hardware, predictor, params, force=force, threads=threads)  # bad options fail before the trace
    setup = with_gpu_options(setup, matmul_precision=matmul_precision, conv_tf32=conv_tf32, power_limit_w=power_limit_w)
    analysis = analyse(model, example_input, example_kwargs=example_kwargs, mode=mode, convention=convention,
                       optimizer=optimizer, method=method, dataset_samples=dataset_samples, name=name)
    return analysis.result(predict(analysis, setup) if setup.backend is not None else None)


def with_gpu_options(setup: Setup, *, matmul_precision: str | None = None, conv_tf32: bool | None = None,
                     power_limit_w: float | None = None) -> Setup:
    """``setup`` with the learned GPU backend's math modes and power limit (PyTorch's defaults when None)."""
    if setup.predictor != "learned":
        if power_limit_w is not None:
            raise UserInputError("a power limit needs the learned GPU backend (--predictor learned)")
        return setup
    import dataclasses

    from fxenergy.predictors.learned import LearnedGPUPredictor

    backend = LearnedGPUPredictor(setup.backend.params_, matmul_precision=matmul_precision,  # type: ignore[union-attr]
                                  conv_tf32=conv_tf32, power_limit_w=power_limit_w,
                                  correction=getattr(setup.backend, "correction", None))  # a GPU calibration's
    assert setup.profile is not None  # a learned setup always has its GPU profile
    backend.model(setup.profile)  # bad options fail here, before the trace
    return dataclasses.replace(setup, backend=backend)


_GPU_OPTIONS = ("matmul_precision", "conv_tf32", "power_limit_w")


def _analysis_of(model: Any, example_input: Any, options: dict[str, Any]) -> Analysis:
    if isinstance(model, Analysis):
        return model
    unknown = sorted(set(options) - set(_ANALYSIS_OPTIONS))
    if unknown:
        raise UserInputError(f"unknown option(s) {', '.join(unknown)}; analysis options: {', '.join(_ANALYSIS_OPTIONS)}")
    return analyse(model, example_input, **options)


def compare_predictors(model: torch.nn.Module | Analysis, example_input: Any = (), *, hardware: Any,
                       **options: Any) -> dict[str, Result]:
    """Every applicable backend on ``hardware`` from one analysis: ``{predictor name: Result}``.

    A calibration file given as ``hardware`` keeps its own curves for HEF. The spread between the
    backends' totals is the uncertainty band :mod:`fxenergy.report` shows. ``model`` may be an
    :class:`~fxenergy.analysis.Analysis` already made.
    """
    profile, calibrated = resolve_hardware(hardware)
    if profile is None:
        raise UserInputError("comparing predictors needs a hardware profile")
    from fxenergy.predictors.bounds import PhysicalBoundsError
    from fxenergy.predictors.layerwise import OutOfDomainError

    gpu = {k: options.pop(k) for k in _GPU_OPTIONS if k in options}
    limit = gpu.pop("power_limit_w", None)  # only the learned backend models a power limit
    setups = [with_gpu_options(s, **gpu, power_limit_w=limit if s.predictor == "learned" else None)
              for s in setups_for_all(profile, calibrated)]
    analysis = _analysis_of(model, example_input, options)
    out, refused = {}, []
    for s in setups:  # a backend that refuses or breaks a physical bound is named, not shown
        try:
            out[s.predictor] = analysis.result(predict(analysis, s))
        except (PhysicalBoundsError, OutOfDomainError) as e:
            refused.append(f"{s.predictor}: not shown: {e}")
    if not out:
        raise UserInputError("no backend gave a physically possible estimate: " + " | ".join(refused))
    for r in out.values():
        r.info["energy_notes"] = [*r.info.get("energy_notes", []), *refused]
    return out


def predictor_band(analysis: Analysis, setup: Setup, prediction: Prediction | None = None) -> dict[str, Any] | None:
    """Total energy of every applicable backend on ``setup``'s device, from the same analysis:
    ``{"min", "max", "backends"}`` (None with fewer than two backends). Cheap: nothing is re-traced,
    and ``prediction`` (``setup``'s own, already made) is used as it is instead of being made again."""
    if setup.profile is None:
        return None
    from fxenergy.predictors.baselines import BASELINES  # rules of thumb: not part of the band
    from fxenergy.predictors.bounds import PhysicalBoundsError
    from fxenergy.predictors.layerwise import OutOfDomainError

    totals = {}
    for s in setups_for_all(setup.profile, setup.calibrated):
        if s.predictor in BASELINES:
            continue
        if s.predictor == setup.predictor:
            s = setup  # the user's own parameter set stands for its backend
            if prediction is not None and prediction.setup.predictor == setup.predictor:
                totals[s.predictor] = prediction.energy_j
                continue
        try:
            totals[s.predictor] = predict(analysis, s).energy_j
        except (PhysicalBoundsError, OutOfDomainError):
            continue  # a backend that refuses or breaks a physical bound is no part of the band
    if len(totals) < 2:
        return None
    return {"min": min(totals.values()), "max": max(totals.values()), "backends": list(totals), "energy_j": totals}


def compare_hardware(model: torch.nn.Module | Analysis, example_input: Any = (), *, hardware: Sequence[Any],
                     predictor: str | None = None, params: Any = None, force: bool = False,
                     **options: Any) -> dict[str, Result]:
    """One analysis predicted on several devices: ``{hardware name: Result}`` (traced once).

    >>> import torch
    >>> rs = compare_hardware(torch.nn.Linear(256, 256), torch.randn(32, 256), hardware=["a30", "l4"],
    ...                       predictor="roofline")
    >>> list(rs), rs["a30"].totals.macs == rs["l4"].totals.macs
    (['a30', 'l4'], True)
    """
    setups = [resolve(h, predictor, params, force=force) for h in hardware]
    if any(s.backend is None for s in setups):
        raise UserInputError("comparing hardware needs a predictor; drop --predictor none")
    analysis = _analysis_of(model, example_input, options)
    out: dict[str, Result] = {}
    for h, s in zip(hardware, setups):
        key = s.hardware or str(h)
        if key in out:
            raise UserInputError(f"hardware {key!r} given twice")
        out[key] = analysis.result(predict(analysis, s))
    return out
