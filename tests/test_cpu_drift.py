"""A CPU calibration's speed trace and the drift correction (issue 12, session cpu15): measurements taken while the
machine ran slow are put back on the run's typical state before fitting; files without a trace fit as before."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from fxenergy.calibrate import fitting
from fxenergy.calibrate.files import Calibration, load_calibration, save_calibration
from fxenergy.calibrate.fitting import fit_cpu_perf, normalise_drift
from fxenergy.calibrate.timing import Measurement, SpeedTrace, speed_canary
from fxenergy.hardware import detect_local
from fxenergy.predictors.hef_law import HEFEnergy, HEFParameters

PEAK = 200e9


def _dense(b: int, c: int, side: int, t_s: float, slow: float) -> Measurement:
    flops = 2 * b * c * c * 9 * side * side
    nbytes = 4 * (2 * b * c * side * side + c * c * 9)
    true_s = flops / 100e9 + 20e-6  # the law the machine follows at its typical speed
    return Measurement("convolution", "conv2d dense k3", ((b, c, side, side), (c, c, 3, 3), (c,)),
                       {"stride": 1, "padding": 1, "groups": 1}, flops, 0, nbytes, true_s * slow, 5, 10, t_s=t_s)


def _linear(m: int, k: int, t_s: float) -> Measurement:
    flops = 2 * m * k * k
    return Measurement("matmul", "linear", ((m, k), (k, k), (k,)), {}, flops, 0, 4 * (2 * m * k + k * k),
                       flops / 120e9 + 10e-6, 5, 10, t_s=t_s)


def _trace(slow_from_s: float, slow_to_s: float, gflops: float = 160.0, gbs: float = 30.0) -> list[dict[str, float]]:
    """Canaries every 1.5 s over 0..120 s, at half speed (both canaries) between the two times."""
    return [{"t_s": t, "gflops": gflops / (2 if slow_from_s <= t <= slow_to_s else 1),
             "gbs": gbs / (2 if slow_from_s <= t <= slow_to_s else 1)} for t in np.arange(0.0, 120.1, 1.5)]


def _family_at_half_speed() -> list[Measurement]:
    """Linears timed at full speed (0-50 s), then every dense convolution while the machine ran at half speed (70-100 s)."""
    lin = [_linear(m, k, 2.0 + i) for i, (m, k) in enumerate((m, k) for m in (8, 64, 256, 1024) for k in (256, 768, 2048))]
    conv = [_dense(b, c, s, 70.0 + 2 * i, slow=2.0)
            for i, (b, c, s) in enumerate((b, c, s) for b in (1, 4, 16) for c, s in ((64, 56), (128, 28), (256, 14)))]
    return lin + conv


def test_a_family_timed_at_half_speed_recovers_its_law() -> None:
    ms = _family_at_half_speed()
    trace = _trace(65.0, 105.0)  # the slow phase: 27 of 81 canaries, so the run's median is the full speed
    fixed, info = normalise_drift(ms, trace)
    assert info["applied"] and info["reference_gflops"] == 160.0
    for before, after in zip(ms, fixed):
        want = 0.5 if before.family == "convolution" else 1.0
        assert after.median_s == pytest.approx(before.median_s * want, rel=1e-9)
    # fitted on the corrected rows, the convolution law prices the rows at their true (typical-state) time; fitted on
    # the raw rows it is 2x slow
    for rows, want in ((fixed, 1.0), (ms, 2.0)):
        perf = fit_cpu_perf(rows, PEAK, 50e9, threads=2, dispatch_s=5e-6)
        conv = [m for m in ms if m.family == "convolution"]
        work = np.array([m.flops for m in conv], dtype=float)
        truth = np.array([m.median_s / 2 for m in conv])
        pred = perf.laws["conv_dense"].duration_s(work, PEAK) + np.array(
            [fitting.param_bytes(m) for m in conv]) * perf.weight_s_per_byte.get("conv_dense", 0.0)
        assert np.median(pred / truth) == pytest.approx(want, rel=0.1)


def test_a_machine_at_its_typical_speed_changes_nothing() -> None:
    ms = _family_at_half_speed()
    fixed, info = normalise_drift(ms, _trace(1e9, 1e9))
    assert info["factor_min"] == info["factor_max"] == 1.0
    assert [m.median_s for m in fixed] == [m.median_s for m in ms]


def test_dram_sized_memory_rows_follow_the_copy_canary_and_factors_are_clamped() -> None:
    n = 2**24  # a 3 x 64 MiB add: beyond the last-level cache
    big = Measurement("elementwise", "add", ((n,), (n,)), {}, 0, n, 12 * n, 0.02, 5, 3, t_s=60.0)
    small = Measurement("elementwise", "add", ((1024,), (1024,)), {}, 0, 1024, 12 * 1024, 2e-6, 5, 100, t_s=60.0)
    # the copy canary at half its typical value around 60 s, the matmul canary steady
    trace = [{"t_s": t, "gflops": 160.0, "gbs": 15.0 if 50 <= t <= 70 else 30.0} for t in np.arange(0.0, 120.1, 1.5)]
    (b2, s2), info = normalise_drift([big, small], trace)
    assert b2.median_s == pytest.approx(0.01) and s2.median_s == small.median_s
    assert info["rows_by_canary"] == {"gflops": 1, "gbs": 1}
    # a canary at a fifth of the reference: the factor stops at the clamp
    trace = [{"t_s": t, "gflops": 32.0 if 50 <= t <= 70 else 160.0, "gbs": 30.0} for t in np.arange(0.0, 120.1, 1.5)]
    (_, s3), info = normalise_drift([big, small], trace)
    assert s3.median_s == pytest.approx(small.median_s * fitting.DRIFT_CLAMP[0]) and info["clamped"] == 1
    assert "WARNING" in fitting.drift_note(info)  # a run whose factors hit the clamp says it is not to be trusted


def test_the_note_warns_only_where_the_factors_span_too_much() -> None:
    ms = _family_at_half_speed()
    half = normalise_drift(ms, _trace(65.0, 105.0))[1]  # factors 0.5 and 1: a 2x span
    steady = normalise_drift(ms, _trace(1e9, 1e9))[1]
    assert "WARNING" in fitting.drift_note(half) and "WARNING" not in fitting.drift_note(steady)
    assert "factors 1.00-1.00" in fitting.drift_note(steady)


def test_old_files_without_a_trace_fit_as_before() -> None:
    ms = [Measurement(**{**m.to_dict(), "shape": m.shape, "t_s": None}) for m in _family_at_half_speed()]
    fixed, info = normalise_drift(ms, ())
    assert fixed == ms and not info["applied"] and "no speed trace" in info["why"]
    untimed, info = normalise_drift(ms, _trace(65.0, 105.0))  # a trace but rows without times: unchanged
    assert untimed == ms and not info["applied"] and info["rows_untimed"] == len(ms)


def test_speed_trace_interpolates_and_stamps() -> None:
    tr = SpeedTrace(points=[{"t_s": 0.0, "gflops": 100.0, "gbs": 20.0}, {"t_s": 10.0, "gflops": 200.0, "gbs": 40.0}])
    assert tr.at(2.5) == (125.0, 25.0) and tr.at(-1.0) == (100.0, 20.0) and tr.at(99.0) == (200.0, 40.0)
    m = _linear(8, 256, 5.0)
    (stamped,) = tr.stamp([m])
    assert (stamped.canary_gflops, stamped.canary_gbs) == (150.0, 30.0)
    c = speed_canary()
    assert c["canary_gflops"] > 0 and c["canary_copy_gbs"] > 0


def test_trace_and_canaries_round_trip_through_the_file(tmp_path: Path) -> None:
    profile = detect_local("cpu")
    ms = SpeedTrace(points=_trace(65.0, 105.0)).stamp(_family_at_half_speed())
    params = HEFParameters("calibrated-x", "test", profile.name, PEAK, 50e9, {}, HEFEnergy(0.0, {}, 10.0))
    cal = Calibration(profile, params, tuple(ms), "profile", "2026-12-01T00:00:00+00:00", "0",
                      speed_trace=tuple(_trace(65.0, 105.0)))
    path = save_calibration(cal, tmp_path / "cal.json")
    load_calibration(path)  # the new key is allowed
    data = json.loads(path.read_text())
    assert data["speed_trace"] == _trace(65.0, 105.0)
    back = [Measurement.from_dict(d) for d in data["measurements"]]
    assert back == list(ms) and back[-1].canary_gflops == 80.0
    # a file of before the trace: no key, and measurements without the three fields
    old = Calibration(profile, params, tuple(_family_at_half_speed()), "profile", "2026-12-01T00:00:00+00:00", "0")
    data = json.loads(save_calibration(old, tmp_path / "old.json").read_text())
    assert "speed_trace" not in data and "t_s" in data["measurements"][0]
    for d in data["measurements"]:
        d.pop("t_s")
    assert all(Measurement.from_dict(d).t_s is None for d in data["measurements"])


def test_refit_ab_on_the_same_measurements(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import cpu_refit

    ms = _family_at_half_speed()
    perf = fit_cpu_perf(ms, PEAK, 50e9, threads=2, dispatch_s=5e-6)
    doc = {"measurements": [m.to_dict() for m in ms], "hef": {"fitted_on": {}},
           "cpu_perf": {**perf.to_dict(), "power": {}}, "created": "x"}
    no_trace = cpu_refit.refit(doc)
    assert no_trace["cpu_perf"]["laws"] == cpu_refit.refit(doc, drift=False)["cpu_perf"]["laws"]
    assert not no_trace["cpu_perf"]["fitted_on"]["drift"]["applied"]
    with_trace = cpu_refit.refit({**doc, "speed_trace": _trace(65.0, 105.0)})
    assert with_trace["cpu_perf"]["fitted_on"]["drift"]["applied"]
    assert with_trace["cpu_perf"]["laws"] != no_trace["cpu_perf"]["laws"]


def test_sustained_canary_times_kernels_back_to_back_for_its_window() -> None:
    """The sustained canary (session cpu17) runs its kernels for the whole window and reports their median and 10th
    percentile: the percentile never above the median, and at least one call of each kernel however short the window."""
    from fxenergy.calibrate.timing import sustained_canary

    s = sustained_canary(0.15)
    assert s["sustained_s"] >= 0.15 and s["sustained_calls"] >= 2
    assert 0 < s["sustained_gflops_p10"] <= s["sustained_gflops"]
    assert 0 < s["sustained_gbs_p10"] <= s["sustained_gbs"]
    assert sustained_canary(0.0)["sustained_calls"] == 1


def test_speed_trace_takes_sustained_canaries_at_its_start_every_interval_and_on_demand(monkeypatch) -> None:
    from fxenergy.calibrate import timing

    monkeypatch.setattr(timing, "speed_canary", lambda: {"canary_gflops": 150.0, "canary_copy_gbs": 30.0})
    calls: list[float] = []

    def sustained(duration_s: float) -> dict[str, float]:
        calls.append(duration_s)
        return {"sustained_gflops": 120.0 + len(calls), "sustained_gflops_p10": 90.0, "sustained_gbs": 25.0}

    monkeypatch.setattr(timing, "sustained_canary", sustained)
    now = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])
    tr = timing.SpeedTrace(every_s=1.5, sustained_every_s=15.0, sustained_s=0.5)
    for t_s, kw in ((0.0, {}), (5.0, {}), (16.0, {}), (17.0, {"sustained": True})):  # first; not due; due; asked for
        now[0] = t_s
        tr.take(**kw)
    assert [("sustained_gflops" in p) for p in tr.points] == [True, False, True, True]
    assert calls == [0.5, 0.5, 0.5]
    assert tr.summary()["sustained_gflops_min_median_max"] == [121.0, 122.0, 123.0]
    off = timing.SpeedTrace(sustained_every_s=None)
    off.take()
    assert "sustained_gflops" not in off.points[0] and len(calls) == 3
