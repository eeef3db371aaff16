"""``physical``: the default energy backend on CPUs — CPU durations x a package power model.

Per node, ``E = P(u) x t``: ``t`` from the CPU duration model (:mod:`fxenergy.perf.cpu`, spec-sheet,
or calibrated by ``fxenergy calibrate``, or fitted on measurements), ``P`` the package power of the
cores the run uses, ``P = idle + core_w x cores x (busy + (1 - busy) u)`` with ``u`` the node's
roofline utilisation. The package's idle power is paid by every node for as long as it runs, so a
run on 2 cores of a 14-core package that RAPL measures whole (seed 000's Xeon data) is priced as
such: ``threads`` is an input.

Parameter sets (``params/physical-HARDWARE.json``, schema ``fxenergy.predictor/1``) hold fitted
kernel-class curves (``perf``), the power figures (``power``: ``idle_w``, ``core_w``,
``busy_share``) and the thread count the data ran with (``threads``). Without one, the spec sheet.

>>> from fxenergy.predictors.physical import PhysicalPredictor
>>> from fxenergy.hardware import load_profile
>>> p = PhysicalPredictor.for_profile(load_profile("xeon-gold-5120"))
>>> p.threads, p.parameter_set  # the fitted set: seed 000's runs used 2 cores
(2, 'physical-xeon-gold-5120')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from fxenergy.errors import UserInputError
from fxenergy.perf.validated import cpu_latency_error
from fxenergy.predictors.base import EnergyEstimate, register_predictor
from fxenergy.predictors.interface import check_artifact, make_artifact, params_dir
from fxenergy.records import COST, DURATION, TRACE, get_record

if TYPE_CHECKING:
    from fxenergy.hardware.schema import HardwareProfile

__all__ = ["PhysicalPredictor"]


@register_predictor("physical")
class PhysicalPredictor:
    """CPU durations x package power (module docstring). Build with :meth:`for_profile`."""

    name: ClassVar[str]  # set by @register_predictor
    requires: ClassVar[tuple[str, ...]] = (TRACE, COST, DURATION)

    def __init__(self, *, threads: int | None = None, perf: Any = None, power: Mapping[str, Any] | None = None,
                 parameter_set: str | None = None, hardware: str | None = None, fitted_on: Any = None,
                 notes: tuple[str, ...] = (), validated: Mapping[str, Any] | None = None, durations: str = "fitted"):
        self.threads = threads
        self.perf = perf  # fxenergy.perf.cpu.CpuPerfParams or None (spec sheet)
        self.power = dict(power or {})
        self.parameter_set = parameter_set
        self.hardware = hardware
        self.fitted_on = fitted_on
        self.extra_notes = tuple(notes)
        # the parameter set's validated energy error on its own hardware at its own threads (artifact "validated")
        self.validated = dict(validated or {})
        # where the durations come from: "fitted" (a parameter set), "calibrated" (a calibration file), "spec_sheet"
        self.durations = durations

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def for_profile(cls, profile: HardwareProfile, params: Any = None, *, threads: int | None = None,
                    calibration: str | None = None) -> PhysicalPredictor:
        """The backend for ``profile``: ``params`` (a name, file or artifact dict), else the
        calibration file's curves, else the shipped ``physical-<profile>`` set, else the spec sheet."""
        from fxenergy.perf.cpu import CpuPerfParams, default_threads

        if profile.is_gpu:
            raise UserInputError(f"the physical backend models CPUs; {profile.name} is a GPU "
                                 "(use --predictor hef or roofline)")
        if params is None and calibration is None:
            shipped = params_dir() / f"physical-{profile.name}.json"
            params = str(shipped) if shipped.is_file() else None
        if params is not None:
            data = params if isinstance(params, Mapping) else _load(params)
            check_artifact(data, "physical")
            p = data["params"]
            perf = CpuPerfParams.from_dict(p["perf"], origin="physical parameters") if p.get("perf") else None
            name = data.get("name") or (params if isinstance(params, str) and not params.endswith(".json")
                                        else f"physical-{data['hardware']}")
            if isinstance(params, str) and params.endswith(".json"):
                from pathlib import Path

                name = Path(params).stem
            threads = threads or p.get("threads") or default_threads(profile)
            v = (data.get("validated") or {}).get(profile.name)
            valid = isinstance(v, Mapping) and threads == p.get("threads") and "median_pct" in v
            return cls(threads=threads, perf=perf, power=p.get("power"), parameter_set=name, hardware=data["hardware"],
                       fitted_on=data["fitted_on"], validated=v if valid else None)
        if calibration is not None:  # already checked by fxenergy.calibrate.load_calibration (resolve_hardware)
            from fxenergy._files import read_json

            cpu = read_json(calibration, "calibration file").get("cpu_perf") or {}
            power = dict(cpu.get("power") or {})
            perf = CpuPerfParams.from_dict({k: v for k, v in cpu.items() if k != "power"},
                                           origin=f"calibration file {calibration}") if cpu else None
            return cls(threads=threads or (perf.threads if perf else None) or default_threads(profile), perf=perf,
                       power=power, parameter_set=f"calibration {calibration}", hardware=profile.name,
                       durations="calibrated" if perf else "spec_sheet")
        return cls(threads=threads or default_threads(profile), parameter_set=f"{profile.name} spec sheet",
                   hardware=profile.name, durations="spec_sheet")

    # -- models ------------------------------------------------------------------------------------
    def duration_model(self, profile: HardwareProfile) -> Any:
        from fxenergy.perf.cpu import CpuDurationModel

        return CpuDurationModel(profile, self.threads, self.perf)

    def power_model(self, profile: HardwareProfile) -> Any:
        from fxenergy.perf.cpu import CpuPowerModel

        p = self.power
        return CpuPowerModel(profile, self.threads or profile.compute_units, idle_w=p.get("idle_w"),
                             core_w=p.get("core_w"), busy_share=p.get("busy_share", 0.75), source=p.get("source"))

    def duration_pass(self, profile: HardwareProfile) -> Any:
        """The duration pass this backend's energies assume (CPU model at this thread count)."""
        from fxenergy.passes.durations import DurationPass

        return DurationPass(profile, "cpu", cpu_model=self.duration_model(profile))

    def predict(self, gm: torch.fx.GraphModule, profile: HardwareProfile) -> EnergyEstimate:
        dm, pm = self.duration_model(profile), self.power_model(profile)
        energies = {}
        for node in gm.graph.nodes:
            dur = get_record(node, DURATION)
            if dur is None:
                continue
            cost = get_record(node, COST, required_by="physical")
            t = dur.duration_s
            u = dm.bound_time_s(cost) / t if t > 0 else 0.0
            energies[node.name] = pm.power_w(u) * t
        notes = (*dm.notes(), *pm.notes(), *self.extra_notes)
        v = self.validated
        expected = {"pct": float(v["median_pct"]), "quantity": str(v.get("quantity", "energy")),
                    "basis": f"{v.get('on', '?')}: median APE {v['median_pct']}%, mean {v.get('mean_pct')}%, "
                             f"worst {v.get('worst_pct')}%"} if v else None
        if expected is None and self.durations in ("calibrated", "spec_sheet"):
            expected = cpu_latency_error(self.durations, profile.name)
        return EnergyEstimate(energies, 0.0, "physical", self.parameter_set or "spec sheet", notes, expected)

    def bounds(self, profile: HardwareProfile) -> tuple[float, float]:
        """``(idle W, power limit W)`` the estimates of this backend must respect."""
        pm = self.power_model(profile)
        return pm.idle_w, pm.limit_w

    def to_json(self) -> dict[str, Any]:
        params = {"perf": self.perf.to_dict() if self.perf is not None else None, "power": self.power,
                  "threads": self.threads}
        return make_artifact("physical", self.hardware, params, self.fitted_on)


def _load(name_or_path: str) -> dict[str, Any]:
    from fxenergy.predictors.interface import load_artifact

    return load_artifact("physical", name_or_path)
