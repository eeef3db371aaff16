"""Energy meters behind one small interface: RAPL (powercap), NVML, and wall clock only.

A meter measures one *window*: :meth:`Meter.begin`, then :meth:`Meter.poll` now and then while the
work runs (cheap; it catches counter wrap-around and samples power where a meter integrates it), then
:meth:`Meter.end`, which returns joules per domain. A meter that cannot give a trustworthy number for
the window raises :class:`MeterError` (the caller discards the window and retries it); it never returns
a negative or a zero energy. A meter that cannot be opened at all raises :class:`MeterUnavailable`,
whose message says why (``open_meter`` then falls back to :class:`WallClockMeter` and keeps the reason).

* :class:`RaplMeter` reads ``/sys/class/powercap/intel-rapl:N/energy_uj`` (package domains; AMD
  exposes the same tree) and the ``dram`` sub-domains ``intel-rapl:N:M``. Counters wrap at
  ``max_energy_range_uj``; each :meth:`poll` folds the step since the last reading, so a window may
  be longer than one wrap period provided it is polled at least once per period (minutes at package
  power). Since Linux 5.10 ``energy_uj`` is readable by root only (the "Platypus" power side channel,
  CVE-2020-8694): the error says so and how to open it.
* :class:`NvmlMeter` uses NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ,
  Volta and newer). Where the counter is not supported (older GPUs) it integrates
  ``nvmlDeviceGetPowerUsage`` (mW) samples taken by a background thread (trapezoids; ``sample_s``
  apart). ``nvidia-ml-py`` is the optional extra ``fxenergy[nvml]``; tests pass a test double as
  ``nvml=``.
* :class:`WallClockMeter` measures nothing but time; ``measures_energy`` is False.

Why not zeus or codecarbon as the backend: zeus' ``ZeusMonitor`` (begin/end windows over NVML, RAPL,
AMD, Apple, Jetson) is the closest match, and we take its ideas: windows, polled wrap-around
tracking for RAPL, NVML's counter with a power-sampling fallback. But with an NVML counter that
updates more slowly than a short window, it can return 0 J or substitute instant power x time
(``approx_instant_energy``), and its RAPL reader needs the same read access to ``energy_uj`` (or its
privileged daemon, zeusd) as ours; a dependency of its size for four small readers, whose failure
modes we must report as *errors* (never zero), did not pay. codecarbon estimates power from a TDP table when RAPL is unreadable and adds a modelled RAM
power (the shared Getzner data's ``energy_consumed`` is mostly that), i.e. it fills in numbers we must
refuse to invent; it also aggregates over seconds-long intervals, too coarse for layer windows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Meter", "MeterError", "MeterUnavailable", "RaplMeter", "NvmlMeter", "WallClockMeter", "open_meter",
           "rapl_delta_uj", "MAX_DOMAIN_W", "describe"]

MAX_DOMAIN_W = 2000.0  # no CPU package, DRAM or GPU draws more: a window above this wrapped twice or misread


class MeterUnavailable(Exception):
    """No usable meter of this kind on this machine; the message says why."""


class MeterError(Exception):
    """A window's reading cannot be trusted (counter failed, stuck, or implausible): discard the window."""


class Meter(Protocol):
    """What a measurement window needs from a meter."""

    name: str  # "rapl", "nvml", "nvml-power", "wallclock"
    domains: tuple[str, ...]  # what the joules cover, e.g. ("package-0", "dram-0")
    measures_energy: bool

    def begin(self) -> None: ...

    def poll(self) -> None: ...

    def end(self) -> dict[str, float]: ...  # joules per domain since begin(); raises MeterError

    def close(self) -> None: ...


def rapl_delta_uj(start: int, end: int, max_range: int) -> int:
    """Energy (uJ) between two readings of one RAPL counter that wraps at ``max_range`` (uJ).

    >>> rapl_delta_uj(990, 10, 1000)  # wrapped once: 10 + 1000 - 990
    20
    """
    return end - start if end >= start else end + max_range - start


def _check_window(joules: Mapping[str, float], seconds: float, meter: str) -> dict[str, float]:
    """Refuse zero, negative, non-finite or implausibly large energies (MeterError), else return them."""
    out = {}
    for d, j in joules.items():
        if not (j == j) or j in (float("inf"), float("-inf")):
            raise MeterError(f"{meter} {d}: non-finite energy {j}")
        if j < 0:
            raise MeterError(f"{meter} {d}: negative energy {j:.6g} J")
        if j == 0:
            raise MeterError(f"{meter} {d}: the counter did not advance in {seconds:.3g} s (stuck, or the window is "
                             "shorter than its update period: lengthen the window)")
        if seconds > 0 and j / seconds > MAX_DOMAIN_W:
            raise MeterError(f"{meter} {d}: {j / seconds:.0f} W is implausible (a counter wrapped more than once "
                             "between polls, or misread)")
        out[d] = float(j)
    return out


class WallClockMeter:
    """Time only: no energy. ``why`` says why no energy meter is used."""

    name = "wallclock"
    domains: tuple[str, ...] = ()
    measures_energy = False

    def __init__(self, why: str = "no energy meter requested"):
        self.why = why

    def begin(self) -> None:
        """Nothing to start: a wall-clock meter reads no counter (the caller times the window)."""

    def poll(self) -> None:
        """Nothing to read: no counter can wrap."""

    def end(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        """Nothing to release."""


class RaplMeter:
    """CPU package (and DRAM, where exposed) energy from the powercap sysfs tree under ``root``.

    ``dram=False`` reads package domains only. ``psys`` (platform) domains are skipped: they contain
    the packages, which would be counted twice.
    """

    name = "rapl"
    measures_energy = True

    def __init__(self, root: str | Path = "/sys/class/powercap", *, dram: bool = True):
        root = Path(root)
        if not root.is_dir():
            raise MeterUnavailable(f"no powercap interface ({root} does not exist: not Linux, no RAPL driver, or a "
                                   "container without /sys/class/powercap)")
        paths: list[tuple[str, Path]] = []
        for top in sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1):
            label = _read_name(top)
            if label.startswith("psys"):
                continue
            paths.append((label, top))
            if dram:
                for sub in sorted(root.glob(f"{top.name}:*")):  # sysfs lists sub-zones beside their package
                    if _read_name(sub) == "dram":
                        paths.append((f"dram-{top.name.split(':')[1]}", sub))
        if not paths:
            raise MeterUnavailable(f"no RAPL package domain under {root}")
        self._files: list[Path] = []
        self._max: list[int] = []
        for _, d in paths:
            try:
                (d / "energy_uj").read_text()
                self._max.append(int((d / "max_energy_range_uj").read_text()))
            except PermissionError:
                raise MeterUnavailable(
                    f"{d / 'energy_uj'} is readable by root only (Linux >= 5.10, CVE-2020-8694): run as root or "
                    f"`sudo chmod a+r {root}/intel-rapl:*/energy_uj {root}/intel-rapl:*:*/energy_uj`") from None
            except (OSError, ValueError) as e:
                raise MeterUnavailable(f"cannot read RAPL domain {d}: {e}") from None
            self._files.append(d / "energy_uj")
        self.domains = tuple(label for label, _ in paths)
        self._last: list[int] = []
        self._acc: list[int] = []
        self._t0 = 0.0

    def _read(self) -> list[int]:
        try:
            return [int(f.read_text()) for f in self._files]
        except (OSError, ValueError) as e:
            raise MeterError(f"rapl: reading failed mid-window: {e}") from None

    def begin(self) -> None:
        self._last = self._read()
        self._acc = [0] * len(self._files)
        self._t0 = time.perf_counter()

    def poll(self) -> None:
        now = self._read()
        for i, (a, b, m) in enumerate(zip(self._last, now, self._max)):
            self._acc[i] += rapl_delta_uj(a, b, m)
        self._last = now

    def end(self) -> dict[str, float]:
        self.poll()
        seconds = time.perf_counter() - self._t0
        return _check_window({d: uj / 1e6 for d, uj in zip(self.domains, self._acc)}, seconds, "rapl")

    def close(self) -> None:
        """Nothing to release: each read opens and closes its sysfs file."""


def _read_name(p: Path) -> str:
    try:
        return (p / "name").read_text().strip()
    except OSError:
        return p.name


class NvmlMeter:
    """One GPU's energy through NVML: the total-energy counter (Volta+) or integrated power samples.

    ``nvml`` is the ``pynvml`` module (from ``nvidia-ml-py``) or a test double with the same functions.
    ``power_sampling=True`` forces the integrated-power path.
    """

    measures_energy = True

    def __init__(self, index: int = 0, *, nvml: Any = None, power_sampling: bool | None = None,
                 sample_s: float = 0.01):
        if nvml is None:
            try:
                import pynvml as nvml  # type: ignore[import-not-found,no-redef]
            except ImportError:
                raise MeterUnavailable("NVML bindings not installed (pip install 'fxenergy[nvml]', i.e. "
                                       "nvidia-ml-py)") from None
        self._nvml = nvml
        try:
            nvml.nvmlInit()
            self._h = nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as e:  # NVMLError and its many subclasses
            raise MeterUnavailable(f"NVML cannot open GPU {index}: {e}") from None
        self.domains = (f"gpu-{index}",)
        self.sample_s = sample_s
        if power_sampling is None:
            try:
                nvml.nvmlDeviceGetTotalEnergyConsumption(self._h)
                power_sampling = False
            except Exception:  # NotSupported before Volta
                power_sampling = True
        if power_sampling:
            try:
                nvml.nvmlDeviceGetPowerUsage(self._h)
            except Exception as e:
                raise MeterUnavailable(f"GPU {index}: NVML has neither an energy counter nor power readings: {e}") from None
        self.power_sampling = power_sampling
        self.name = "nvml-power" if power_sampling else "nvml"
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._error: str | None = None

    # -- counter -----------------------------------------------------------------------------------
    def _energy_mj(self) -> int:
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._h))
        except Exception as e:
            raise MeterError(f"nvml: energy counter failed mid-window: {e}") from None

    # -- power sampling ----------------------------------------------------------------------------
    def _power_w(self) -> float:
        return float(self._nvml.nvmlDeviceGetPowerUsage(self._h)) / 1e3

    def _sample(self) -> None:
        try:
            last_t, last_w = time.perf_counter(), self._power_w()
            while not self._stop.wait(self.sample_s):
                t, w = time.perf_counter(), self._power_w()
                self._joules += (w + last_w) / 2 * (t - last_t)
                self._samples += 1
                last_t, last_w = t, w
            t, w = time.perf_counter(), self._power_w()
            self._joules += (w + last_w) / 2 * (t - last_t)
            self._samples += 1
        except Exception as e:  # noqa: BLE001 - reported by end() as a MeterError
            self._error = str(e)

    def begin(self) -> None:
        self._t0 = time.perf_counter()
        if self.power_sampling:
            self._joules, self._samples, self._error = 0.0, 0, None
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, name="fxenergy-nvml-power", daemon=True)
            self._thread.start()
        else:
            self._start_mj = self._energy_mj()

    def poll(self) -> None:
        pass  # a 64-bit mJ counter does not wrap; sampling runs on its own thread

    def end(self) -> dict[str, float]:
        seconds = time.perf_counter() - self._t0
        if self.power_sampling:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            if self._error is not None:
                raise MeterError(f"nvml: power reading failed mid-window: {self._error}")
            if self._samples < 2:
                raise MeterError(f"nvml: {self._samples} power sample(s) in {seconds:.3g} s; lengthen the window")
            joules = self._joules
        else:
            joules = (self._energy_mj() - self._start_mj) / 1e3
        return _check_window({self.domains[0]: joules}, seconds, self.name)

    def close(self) -> None:
        self._stop.set()
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - nothing to do about a failed shutdown
            pass


def open_meter(device: str = "cpu", *, kind: str = "auto", powercap_root: str | Path = "/sys/class/powercap",
               nvml: Any = None) -> Meter:
    """The best meter for ``device`` ("cpu", "cuda", "cuda:N"): ``kind`` "auto" (RAPL on CPU, NVML on
    CUDA, else wall clock with the reason in ``.why``), "rapl", "nvml" (raise MeterUnavailable when
    not usable) or "none" (wall clock)."""
    if kind == "none":
        return WallClockMeter("energy measurement turned off (--meter none)")
    cuda = device.startswith("cuda")
    want = kind if kind != "auto" else ("nvml" if cuda else "rapl")
    makers: dict[str, Callable[[], Any]] = {  # each returns a Meter (NvmlMeter by duck typing)
        "rapl": lambda: RaplMeter(powercap_root),
        "nvml": lambda: NvmlMeter(int(device.split(":")[1]) if ":" in device else 0, nvml=nvml),
    }
    if want not in makers:
        raise MeterUnavailable(f"unknown meter {kind!r}; choose auto, rapl, nvml or none")
    try:
        return makers[want]()
    except MeterUnavailable as e:
        if kind != "auto":
            raise
        return WallClockMeter(f"{want} unavailable: {e}")


def describe(meter: Meter) -> str:
    """One line: what this meter measures, and if only time, why."""
    if not meter.measures_energy:
        return f"time only: {getattr(meter, 'why', 'no energy meter')}"
    return f"time and energy ({meter.name}: {', '.join(meter.domains)})"


