"""``fxenergy calibrate --device cuda``: refine the learned GPU model on the user's own GPU.

A small fixed set of kernels (:data:`GPU_BENCHES`: fp32 GEMMs, convolutions, elementwise ops and
reductions shaped like real layers) is timed on the GPU with CUDA events (warm-up, then the median over
``repeats`` of the mean of ``calls`` back-to-back calls), and, where NVML's total-energy counter is
readable (nvidia-ml-py), metered for board energy over the same loops. Each bench is also priced by the
shipped learned model (:class:`fxenergy.perf.model.LearnedGPUModel`) from the same kernel description
the model uses for the NeuSight rows (:mod:`fxenergy.perf.kernels`), so measurement and prediction
describe the same work.

Per family the correction is the median of ``log(measured / predicted)`` over the kernel-dominated
benches (predicted kernel time >= 3x the eager dispatch floor), clipped to ±1 (a factor e): a scale on
that family's kernel durations, never below the roofline bound. With energy, the per-family power-line
offset is the median of (measured − predicted) board-power fraction between idle and the limit, added
to the family's line (and clipped to [0, 1] there, as every prediction is). Families without a
kernel-dominated bench keep no correction.

The result is the ``learned`` section of the calibration file (:func:`learned_section`), which
``--hardware FILE`` hands to the learned backend (:func:`load_learned_correction`).

NB: no GPU was available where this was written: the fitting, the file round-trip and the refusal
without CUDA are tested with an injected fake timer; :func:`cuda_timer` itself has not run on hardware.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fxenergy.errors import UserInputError
from fxenergy.perf.kernels import Kernel, conv_kernel, gemm_kernel, memory_kernel, winograd_eligible

if TYPE_CHECKING:
    from fxenergy.hardware import HardwareProfile

__all__ = ["GpuBench", "GPU_BENCHES", "fit_learned_correction", "learned_section", "load_learned_correction",
           "run_learned_calibration", "cuda_timer", "check_cuda"]

LOG_SCALE_CLIP = 1.0  # at most a factor e either way: a correction, not a new model
MIN_KERNEL_OVER_FLOOR = 3.0  # benches whose predicted kernel time is below 3x the dispatch floor fix nothing


@dataclass(frozen=True, slots=True)
class GpuBench:
    """One timed kernel: ``family``, a label, its shape and the op that runs it."""

    family: str
    label: str
    op: str  # "mm", "conv2d", "add", "softmax", "layer_norm"
    shape: tuple[int, ...]

    def kernel(self) -> Kernel:
        """The kernel description the learned model prices (as for the NeuSight rows)."""
        f32 = torch.float32
        if self.op == "mm":
            m, n, k = self.shape
            return gemm_kernel(1, m, n, k, f32)
        if self.op == "conv2d":
            b, c, s, co, ks, stride = self.shape
            so = (s + 2 * (ks // 2) - ks) // stride + 1
            return conv_kernel(b, c, co, ks, ks, so, so, s, s, 1, f32, winograd=winograd_eligible((ks, ks), stride))
        if self.op == "add":
            (n,) = self.shape
            return memory_kernel("elementwise", n // 1024, 1024, f32, 3 * 4 * n, n)
        rows, cols = self.shape
        return memory_kernel("reduction", rows, cols, f32, 2 * 4 * rows * cols, 5 * rows * cols, softmax=self.op == "softmax")

    def runner(self, device: torch.device) -> Callable[[], Any]:
        """A closure running the op once on ``device`` (inputs allocated here, outside the timing)."""
        if self.op == "mm":
            m, n, k = self.shape
            a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
            return lambda: torch.mm(a, b)
        if self.op == "conv2d":
            bt, c, s, co, ks, stride = self.shape
            x = torch.randn(bt, c, s, s, device=device)
            w = torch.randn(co, c, ks, ks, device=device)
            return lambda: torch.nn.functional.conv2d(x, w, stride=stride, padding=ks // 2)
        if self.op == "add":
            (n,) = self.shape
            x, y = torch.randn(n, device=device), torch.randn(n, device=device)
            return lambda: torch.add(x, y)
        rows, cols = self.shape
        x = torch.randn(rows, cols, device=device)
        if self.op == "softmax":
            return lambda: torch.softmax(x, dim=-1)
        return lambda: torch.nn.functional.layer_norm(x, (cols,))


GPU_BENCHES: tuple[GpuBench, ...] = (
    GpuBench("gemm", "mm 1024^3", "mm", (1024, 1024, 1024)),
    GpuBench("gemm", "mm 4096^3", "mm", (4096, 4096, 4096)),
    GpuBench("gemm", "mm tokens 8192 x 4096 -> 1024", "mm", (8192, 1024, 4096)),
    GpuBench("gemm", "mm tokens 512 x 1024 -> 4096", "mm", (512, 4096, 1024)),
    GpuBench("conv", "conv 3x3 64ch 56px b32", "conv2d", (32, 64, 56, 64, 3, 1)),
    GpuBench("conv", "conv 3x3 256ch 14px b32", "conv2d", (32, 256, 14, 256, 3, 1)),
    GpuBench("conv", "conv 1x1 64->256 56px b32", "conv2d", (32, 64, 56, 256, 1, 1)),
    GpuBench("elementwise", "add 2^20", "add", (2**20,)),
    GpuBench("elementwise", "add 2^24", "add", (2**24,)),
    GpuBench("elementwise", "add 2^26", "add", (2**26,)),
    GpuBench("reduction", "softmax 4096 x 1024", "softmax", (4096, 1024)),
    GpuBench("reduction", "softmax 16384 x 2048", "softmax", (16384, 2048)),
    GpuBench("reduction", "layer_norm 8192 x 1024", "layer_norm", (8192, 1024)),
)

# (seconds per call, joules per call or None) of one bench
Timer = Callable[[GpuBench], tuple[float, float | None]]


def check_cuda(device: str = "cuda") -> torch.device:
    """The CUDA device to calibrate, or a one-line error where there is none."""
    dev = torch.device(device)
    if dev.type != "cuda":
        raise UserInputError(f"the learned GPU calibration needs a CUDA device, got {device!r}")
    if not torch.cuda.is_available():
        raise UserInputError("fxenergy calibrate --device cuda: no CUDA device is available here "
                             "(torch.cuda.is_available() is False)")
    return dev


def cuda_timer(device: str = "cuda", *, calls: int = 20, repeats: int = 5) -> Timer:
    """A timer of benches on ``device``: CUDA events around ``calls`` back-to-back calls, median of
    ``repeats``; joules per call from NVML's total-energy counter over the same loops where readable.
    Untested on hardware (no GPU where it was written)."""
    dev = check_cuda(device)
    meter = None
    try:
        from fxenergy.measure.meters import MeterUnavailable, NvmlMeter

        try:
            meter = NvmlMeter(dev.index or 0)
        except MeterUnavailable:
            meter = None
    except ImportError:  # pragma: no cover - fxenergy.measure is part of the package
        meter = None

    def time_bench(bench: GpuBench) -> tuple[float, float | None]:
        run = bench.runner(dev)
        for _ in range(3):
            run()
        torch.cuda.synchronize(dev)
        per_call = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(calls):
                run()
            end.record()
            torch.cuda.synchronize(dev)
            per_call.append(start.elapsed_time(end) / 1e3 / calls)
        seconds = statistics.median(per_call)
        joules = None
        if meter is not None:
            n = max(calls, int(math.ceil(0.5 / max(seconds, 1e-9))))  # >= 0.5 s so NVML's counter moves
            meter.begin()
            for _ in range(n):
                run()
            torch.cuda.synchronize(dev)
            try:
                joules = sum(meter.end().values()) / n
            except Exception:  # noqa: BLE001 - a failed energy window leaves the timing usable
                joules = None
        return seconds, joules

    return time_bench


def fit_learned_correction(model: Any, benches: Sequence[GpuBench], seconds: Sequence[float],
                           joules: Sequence[float | None] | None = None) -> dict[str, Any]:
    """Per-family ``duration_log_scale`` (and ``power_offset`` where energy was read) of ``model`` (a
    :class:`~fxenergy.perf.model.LearnedGPUModel` without a correction) against the measurements."""
    kernels = [b.kernel() for b in benches]
    t_k, t_b = model.kernel_durations_s(kernels)
    floor = np.array([model.floor_s(b.family) for b in benches])  # the setting's per-family dispatch floor
    pred = np.maximum(t_k, floor)
    meas = np.asarray(seconds, dtype=float)
    if not (np.all(np.isfinite(meas)) and np.all(meas > 0)):
        raise UserInputError("calibration: every measured kernel time must be finite and positive")
    scale: dict[str, float] = {}
    offset: dict[str, float] = {}
    rows = []
    dev = model.device
    for f in dict.fromkeys(b.family for b in benches):
        idx = [i for i, b in enumerate(benches) if b.family == f and t_k[i] >= MIN_KERNEL_OVER_FLOOR * floor[i]]
        if idx:
            ls = float(np.median(np.log(meas[idx] / pred[idx])))
            scale[f] = float(np.clip(ls, -LOG_SCALE_CLIP, LOG_SCALE_CLIP))
        if joules is not None and idx:
            fr = []
            for i in idx:
                j = joules[i]
                if j is None or not (math.isfinite(j) and j > 0):
                    continue
                p_meas = j / meas[i]
                frac_meas = (p_meas - dev.idle_w) / (dev.power_limit_w - dev.idle_w)
                a, b = model.power_line(f)
                frac_pred = a + b * min(max(t_b[i] / meas[i], 0.0), 1.0)  # at the measured utilisation
                fr.append(frac_meas - frac_pred)
            if fr:
                offset[f] = float(np.clip(np.median(fr), -1.0, 1.0))
    for i, b in enumerate(benches):
        j_i = None if joules is None else joules[i]
        rows.append({"family": b.family, "label": b.label, "measured_s": float(meas[i]), "predicted_s": float(pred[i]),
                     "joules": None if j_i is None else float(j_i)})
    return {"duration_log_scale": scale, "power_offset": offset, "benches": rows}


def learned_section(correction: Mapping[str, Any], model: Any, *, source: str) -> dict[str, Any]:
    """The ``learned`` section of a calibration file."""
    from fxenergy import __version__

    return {
        "device": model.profile.name,
        "parameter_set": model.params.name,
        "duration_log_scale": dict(correction["duration_log_scale"]),
        "power_offset": dict(correction.get("power_offset", {})),
        "benches": list(correction.get("benches", [])),
        "timer": source,
        "fxenergy_version": __version__,
        "rule": (f"per family: median log(measured/predicted) over kernel-dominated benches (>= "
                 f"{MIN_KERNEL_OVER_FLOOR:g}x the dispatch floor), clipped to +-{LOG_SCALE_CLIP:g}; power: median "
                 "measured - predicted board-power fraction"),
    }


def run_learned_calibration(profile: HardwareProfile, *, timer: Timer | None = None, device: str = "cuda",
                            benches: Sequence[GpuBench] = GPU_BENCHES,
                            progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Time ``benches`` (with ``timer``, default :func:`cuda_timer` on ``device``) and return the
    ``learned`` section for ``profile``. Refuses with a one-line error when CUDA is absent and no
    timer is given."""
    from fxenergy.perf.model import LearnedGPUModel

    source = "injected"
    if timer is None:
        timer = cuda_timer(device)
        source = "cuda events" + ("" if os.environ.get("FXENERGY_NO_NVML") else " (+ NVML energy where readable)")
    model = LearnedGPUModel(profile)
    secs, joules = [], []
    for i, b in enumerate(benches):
        if progress is not None:
            progress(f"learned GPU model: {b.label}", i, len(benches))
        s, j = timer(b)
        secs.append(float(s))
        joules.append(None if j is None else float(j))
    corr = fit_learned_correction(model, benches, secs, joules if any(j is not None for j in joules) else None)
    return learned_section(corr, model, source=source)


def load_learned_correction(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``learned`` section of a calibration file (``None`` when it has none), checked."""
    from fxenergy._files import read_json

    data = read_json(Path(path).expanduser(), "calibration file")
    sec = data.get("learned") if isinstance(data, dict) else None
    if not sec:
        return None
    try:
        scale = {str(k): float(v) for k, v in sec["duration_log_scale"].items()}
        offset = {str(k): float(v) for k, v in sec.get("power_offset", {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UserInputError(f"calibration file {path}: learned: malformed ({type(e).__name__}: {e})") from None
    bad = [k for k, v in {**scale, **offset}.items() if not math.isfinite(v) or abs(v) > LOG_SCALE_CLIP + 1e-9]
    if bad:
        raise UserInputError(f"calibration file {path}: learned: correction of {bad[0]!r} out of range (|x| <= 1)")
    return {"device": str(sec.get("device", "")), "duration_log_scale": scale, "power_offset": offset}
