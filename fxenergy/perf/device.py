"""The device figures the GPU performance and power models read, taken from a hardware profile.

Only published figures go in (peak FLOP/s per dtype and math mode, memory bandwidth, SM count, clock,
L2 size, power limit), so a GPU the models never saw needs nothing but its spec sheet.

Clocks: a power-limited card (L4, T4) cannot hold its boost clock under load; where the profile has
``sustained_clock_hz``, every peak is scaled by ``sustained / boost``. A user power limit
(``power_limit_w`` below the board's TDP, what ``nvidia-smi -pl`` sets) lowers the clock further:
dynamic power goes roughly as f·V² and V tracks f in the DVFS range, so the clock scales as
``((limit − idle) / (tdp − idle)) ** (1/3)`` (never above the unlimited clock).

Math modes follow PyTorch's defaults: fp32 matmuls run on CUDA cores unless
``matmul_precision`` is ``"high"`` or ``"medium"`` (``torch.set_float32_matmul_precision``), while cuDNN
convolutions use TF32 on Ampere and later unless ``conv_tf32`` is False
(``torch.backends.cudnn.allow_tf32``). fp16/bf16 run on tensor cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from fxenergy.errors import UserInputError

if TYPE_CHECKING:
    from fxenergy.hardware.schema import HardwareProfile

__all__ = ["DeviceSpec", "MATMUL_PRECISIONS", "device_spec", "check_math_options"]

MATMUL_PRECISIONS = ("highest", "high", "medium")
IDLE_FRACTION_ASSUMED = 0.25


def check_math_options(matmul_precision: str | None, conv_tf32: bool | None) -> tuple[str, bool]:
    """PyTorch's defaults where None: ``("highest", True)``; one-line error on a bad value."""
    mp = "highest" if matmul_precision is None else str(matmul_precision)
    if mp not in MATMUL_PRECISIONS:
        raise UserInputError(f"matmul_precision must be one of {', '.join(MATMUL_PRECISIONS)}, got {matmul_precision!r}")
    if conv_tf32 is not None and not isinstance(conv_tf32, bool):
        raise UserInputError(f"conv_tf32 must be True or False, got {conv_tf32!r}")
    return mp, True if conv_tf32 is None else conv_tf32


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """Figures of one GPU under one clock and power setting (units in the names)."""

    name: str
    peak_flops: dict[str, float]  # dtype key -> FLOP/s at the effective clock
    bandwidth_bytes_per_s: float
    sms: int
    clock_hz: float  # effective clock under load (sustained, power-limited)
    boost_clock_hz: float
    l2_bytes: float
    tdp_w: float
    power_limit_w: float
    idle_w: float
    idle_assumed: bool

    @property
    def clock_ratio(self) -> float:
        return self.clock_hz / self.boost_clock_hz

    def has_tf32(self) -> bool:
        return "tf32" in self.peak_flops

    def peak_for(self, family: str, dtype: torch.dtype, matmul_precision: str, conv_tf32: bool) -> float:
        """The ceiling a kernel of ``family`` in ``dtype`` runs against under PyTorch's math modes."""
        if dtype in (torch.float16, torch.bfloat16):
            key = "fp16" if dtype == torch.float16 else "bf16"
            if family in ("gemm", "conv") and key in self.peak_flops:
                return self.peak_flops[key]
            return self.peak_flops["fp32"]
        if dtype == torch.float64:
            return self.peak_flops.get("fp64", self.peak_flops["fp32"] / 32)
        if self.has_tf32() and ((family == "gemm" and matmul_precision != "highest") or (family == "conv" and conv_tf32)):
            return self.peak_flops["tf32"]
        return self.peak_flops["fp32"]

    def uses_tensor_cores(self, family: str, dtype: torch.dtype, matmul_precision: str, conv_tf32: bool) -> bool:
        return self.peak_for(family, dtype, matmul_precision, conv_tf32) > self.peak_flops["fp32"] * 1.01


def device_spec(profile: HardwareProfile, power_limit_w: float | None = None) -> DeviceSpec:
    """A :class:`DeviceSpec` from a GPU :class:`~fxenergy.hardware.HardwareProfile`."""
    if not getattr(profile, "is_gpu", False):
        raise UserInputError(f"the GPU performance model needs a GPU profile; {profile.name!r} is a {profile.kind}")
    if profile.tdp_w is None:
        raise UserInputError(f"hardware profile {profile.name!r} has no TDP (power limit), which the GPU model needs")
    tdp = float(profile.tdp_w)
    idle_assumed = profile.idle_w is None
    idle = tdp * IDLE_FRACTION_ASSUMED if profile.idle_w is None else float(profile.idle_w)
    boost = float(profile.clock_hz)
    clock = float(profile.sustained_clock_hz or boost)
    limit = tdp
    if power_limit_w is not None:
        limit = float(power_limit_w)
        if not idle < limit:
            raise UserInputError(f"power limit {power_limit_w} W must be above the idle power of {profile.name} ({idle:.0f} W)")
        if limit < tdp:
            clock = min(clock, boost * ((limit - idle) / (tdp - idle)) ** (1 / 3))
        else:
            limit = tdp  # a limit above the board's own cannot raise it
    scale = clock / boost
    l2 = profile.cache("L2")
    peaks = {k: float(v) * scale for k, v in profile.peak_flops.items()}
    return DeviceSpec(
        name=profile.name, peak_flops=peaks, bandwidth_bytes_per_s=float(profile.memory_bandwidth_bytes_per_s),
        sms=int(profile.compute_units), clock_hz=clock, boost_clock_hz=boost,
        l2_bytes=float(l2.size_bytes * l2.instances) if l2 else 4 * 2**20, tdp_w=tdp, power_limit_w=limit,
        idle_w=idle, idle_assumed=idle_assumed,
    )
