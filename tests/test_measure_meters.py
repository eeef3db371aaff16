"""Meters on fake powercap sysfs trees and an NVML test double; measurement windows with faults."""

from __future__ import annotations

import pathlib
import time

import pytest
from conftest import ScriptedMeter

from fxenergy.measure import (
    MeasurementFailed,
    MeterError,
    MeterUnavailable,
    NvmlMeter,
    RaplMeter,
    WallClockMeter,
    measure_calls,
    open_meter,
)

MAX = 262_143_328_850  # a real max_energy_range_uj


def powercap(root: pathlib.Path, packages: int = 1, *, dram: bool = True, start: int = 1000) -> pathlib.Path:
    for p in range(packages):
        top = root / f"intel-rapl:{p}"
        top.mkdir(parents=True)
        (top / "name").write_text(f"package-{p}\n")
        (top / "energy_uj").write_text(f"{start}\n")
        (top / "max_energy_range_uj").write_text(f"{MAX}\n")
        core = root / f"intel-rapl:{p}:0"
        core.mkdir()
        (core / "name").write_text("core\n")
        (core / "energy_uj").write_text("5\n")
        (core / "max_energy_range_uj").write_text(f"{MAX}\n")
        if dram:
            d = root / f"intel-rapl:{p}:1"
            d.mkdir()
            (d / "name").write_text("dram\n")
            (d / "energy_uj").write_text(f"{start}\n")
            (d / "max_energy_range_uj").write_text(f"{MAX}\n")
    psys = root / "intel-rapl:9"
    psys.mkdir()
    (psys / "name").write_text("psys\n")
    (psys / "energy_uj").write_text("0\n")
    (psys / "max_energy_range_uj").write_text(f"{MAX}\n")
    return root


def set_uj(root: pathlib.Path, domain: str, value: int) -> None:
    (root / domain / "energy_uj").write_text(f"{value}\n")


def test_rapl_domains_package_and_dram_not_core_or_psys(tmp_path):
    m = RaplMeter(powercap(tmp_path, packages=2))
    assert m.domains == ("package-0", "dram-0", "package-1", "dram-1")
    assert RaplMeter(tmp_path, dram=False).domains == ("package-0", "package-1")


def test_rapl_energy_of_a_window(tmp_path):
    m = RaplMeter(powercap(tmp_path))
    m.begin()
    set_uj(tmp_path, "intel-rapl:0", 1000 + 2_500_000)  # 2.5 J package
    set_uj(tmp_path, "intel-rapl:0:1", 1000 + 500_000)  # 0.5 J DRAM
    time.sleep(0.01)  # 3 J in 10 ms is 300 W: plausible
    assert m.end() == pytest.approx({"package-0": 2.5, "dram-0": 0.5})


def test_rapl_wraps_around_max_energy_range(tmp_path):
    m = RaplMeter(powercap(tmp_path, dram=False, start=MAX - 1_000_000))
    m.begin()
    set_uj(tmp_path, "intel-rapl:0", 3_000_000)  # wrapped: 1 J before the wrap, 3 J after
    time.sleep(0.02)
    assert m.end()["package-0"] == pytest.approx(4.0)


def test_rapl_polls_catch_several_wraps_in_one_window(tmp_path):
    m = RaplMeter(powercap(tmp_path, dram=False, start=0))
    m.begin()
    for v in (MAX // 2, MAX - 10, 100, MAX // 2):  # one wrap between polls 2 and 3
        set_uj(tmp_path, "intel-rapl:0", v)
        m.poll()
    m._t0 -= 3600  # the window lasted an hour: ~1.5 x MAX uJ is then a plausible energy
    assert m.end()["package-0"] == pytest.approx((MAX + MAX // 2) / 1e6)


def test_rapl_implausible_energy_is_an_error_not_a_number(tmp_path):
    m = RaplMeter(powercap(tmp_path, dram=False))
    m.begin()
    set_uj(tmp_path, "intel-rapl:0", 1000 + 10_000_000_000)  # 10 kJ in a few ms
    with pytest.raises(MeterError, match="implausible"):
        m.end()


def test_rapl_counter_stuck_at_zero_is_an_error(tmp_path):
    m = RaplMeter(powercap(tmp_path, start=0))
    m.begin()
    time.sleep(0.01)
    with pytest.raises(MeterError, match="did not advance"):
        m.end()


def test_rapl_permission_denied_explained(tmp_path, monkeypatch):
    root = powercap(tmp_path)
    real = pathlib.Path.read_text

    def read_text(self, *a, **k):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return real(self, *a, **k)

    monkeypatch.setattr(pathlib.Path, "read_text", read_text)
    with pytest.raises(MeterUnavailable, match=r"root only.*chmod a\+r"):
        RaplMeter(root)
    meter = open_meter("cpu", powercap_root=root)  # auto: falls back to time only and says why
    assert isinstance(meter, WallClockMeter) and "root only" in meter.why


def test_rapl_missing_tree_and_failure_mid_window(tmp_path):
    with pytest.raises(MeterUnavailable, match="does not exist"):
        RaplMeter(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MeterUnavailable, match="no RAPL package domain"):
        RaplMeter(tmp_path / "empty")
    root = powercap(tmp_path / "tree")
    m = RaplMeter(root)
    m.begin()
    (root / "intel-rapl:0" / "energy_uj").unlink()
    with pytest.raises(MeterError, match="mid-window"):
        m.end()


# ------------------------------------------------------------------------------------------------
# NVML test double


class FakeNVMLError(Exception):
    pass


class FakeNvml:
    """pynvml's functions used by NvmlMeter; ``energy`` None: counter unsupported (pre-Volta)."""

    def __init__(self, *, energy_step_mj: int | None = 50, power_mw: int = 150_000, fail_after: int | None = None):
        self.energy_mj, self.step, self.power_mw, self.fail_after, self.reads = 10_000, energy_step_mj, power_mw, fail_after, 0

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, i):
        if i > 0:
            raise FakeNVMLError("Invalid Argument")
        return "h0"

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if self.step is None:
            raise FakeNVMLError("Not Supported")
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            raise FakeNVMLError("GPU is lost")
        self.energy_mj += self.step
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, h):
        return self.power_mw


def test_nvml_energy_counter():
    m = NvmlMeter(0, nvml=FakeNvml(energy_step_mj=50))
    assert m.name == "nvml" and m.domains == ("gpu-0",)
    m.begin()
    time.sleep(0.01)
    assert m.end() == {"gpu-0": pytest.approx(0.05)}


def test_nvml_counter_unsupported_falls_back_to_power_sampling():
    m = NvmlMeter(0, nvml=FakeNvml(energy_step_mj=None, power_mw=120_000), sample_s=0.005)
    assert m.name == "nvml-power"
    m.begin()
    t0 = time.perf_counter()
    time.sleep(0.1)
    j = m.end()["gpu-0"]
    assert j == pytest.approx(120.0 * (time.perf_counter() - t0), rel=0.1)  # 120 W x the window


def test_nvml_counter_stuck_and_failing_mid_window():
    m = NvmlMeter(0, nvml=FakeNvml(energy_step_mj=0))
    m.begin()
    with pytest.raises(MeterError, match="did not advance"):
        m.end()
    m = NvmlMeter(0, nvml=FakeNvml(fail_after=2))  # reads: probe, begin, then the end fails
    m.begin()
    with pytest.raises(MeterError, match="mid-window"):
        m.end()


def test_nvml_unavailable_cases():
    with pytest.raises(MeterUnavailable, match="cannot open GPU 3"):
        NvmlMeter(3, nvml=FakeNvml())
    meter = open_meter("cuda:3", nvml=FakeNvml())
    assert isinstance(meter, WallClockMeter) and "nvml unavailable" in meter.why
    with pytest.raises(MeterUnavailable):
        open_meter("cuda:3", kind="nvml", nvml=FakeNvml())


# ------------------------------------------------------------------------------------------------
# windows


def test_window_time_only_repeats_min_duration():
    calls = []
    m = measure_calls(lambda: calls.append(time.sleep(0.002)), min_window_s=0.02, repeats=3, warmup=2)
    assert m.energy_j is None and m.power_w is None and m.meter == "wallclock"
    assert len(m.windows) + m.outliers == 3 and all(w.seconds >= 0.02 for w in m.windows)
    assert len(calls) == 2 + sum(w.calls for w in m.windows) + sum(0 for _ in range(m.outliers)) or m.outliers
    assert 0.002 <= m.duration_s < 0.02


def test_window_failed_meter_is_discarded_and_retried():
    meter = ScriptedMeter([MeterError("wrapped"), 1.0, 1.0, 1.0])
    m = measure_calls(lambda: None, meter=meter, min_window_s=0.0, min_calls=10, repeats=3, warmup=0)
    assert m.discarded == 1 and len(m.windows) == 3
    assert m.energy_j == pytest.approx(0.1)  # 1 J over 10 calls per window
    assert "discarded window: wrapped" in m.notes[0]


def test_window_gives_up_instead_of_returning_zero():
    meter = ScriptedMeter([MeterError("stuck")] * 5)
    with pytest.raises(MeasurementFailed, match="stuck"):
        measure_calls(lambda: None, meter=meter, min_window_s=0.0, repeats=2, retries=3, warmup=0)


def test_window_outlier_removed():
    meter = ScriptedMeter([1.0, 1.05, 5.0, 0.95])
    m = measure_calls(lambda: None, meter=meter, min_window_s=0.0, min_calls=1, repeats=4, warmup=0)
    assert m.outliers == 1 and len(m.windows) == 3
    assert m.energy_j == pytest.approx(1.0)
    assert m.energy_spread == pytest.approx(0.1)
