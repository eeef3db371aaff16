"""Calibration: fitting on a tiny benchmark list, the file format, RAPL arithmetic, use in annotate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import no_wait_for_quiet

import fxenergy
from fxenergy.calibrate import (
    SCHEMA,
    Bench,
    MeterUnavailable,
    RaplMeter,
    benchmarks,
    is_calibration_file,
    load_calibration,
    rapl_delta_uj,
    run_calibration,
    save_calibration,
)
from fxenergy.errors import UserInputError
from fxenergy.hardware import detect_local, save_profile

# Two families, five sizes each: enough for fit_power_law (>= 4 points), small enough to run in seconds.
TINY = [Bench("matmul", "mm", torch.mm, ((n, n), (n, n))) for n in (8, 32, 64, 128, 256)] + [
    Bench("elementwise", "add", torch.add, ((n,), (n,))) for n in (2**8, 2**11, 2**14, 2**17, 2**20)
]


@pytest.fixture(scope="module")
def cal():
    with no_wait_for_quiet():  # never wait for a busy machine (pytest -n 2) to calm down
        return run_calibration("cpu", quick=True, benches=TINY, profile=detect_local("cpu"))


@pytest.fixture(scope="module")
def cal_file(cal, tmp_path_factory):
    return save_calibration(cal, tmp_path_factory.mktemp("cal") / "cpu.json")


def test_fits_are_finite_and_positive(cal):
    assert set(cal.params.families) == {"matmul", "elementwise"}
    for fam, (law, basis) in cal.params.families.items():
        assert basis == ("flops" if fam == "matmul" else "bytes")
        for v in (law.eta_max, law.k, law.alpha):
            assert math.isfinite(v) and v > 0
    assert cal.params.peak_flops > 0 and cal.params.peak_bytes_per_s > 0
    assert cal.params.device == cal.profile.name
    assert cal.params.name == f"calibrated-{cal.profile.name}"
    assert len(cal.measurements) == len(TINY)
    assert all(m.median_s > 0 and m.repeats > 0 for m in cal.measurements)
    # work counted by the cost pass: mm of two n x n matrices is 2 n^3 FLOPs; add reads 2n, writes n floats
    mm = {m.shape[0][0]: m for m in cal.measurements if m.op == "mm"}
    assert mm[8].flops == 2 * 8**3 and mm[8].bytes == 3 * 8 * 8 * 4
    add = {m.shape[0][0]: m for m in cal.measurements if m.op == "add"}
    assert add[256].bytes == 3 * 256 * 4 and add[256].flops == 0


def test_peaks_never_below_measured_throughput(cal):
    from fxenergy.calibrate.fitting import normalise_drift

    peaks = cal.params.fitted_on["peaks"]
    # the peaks are of the times the fit saw: put on one machine state (the file keeps them as measured)
    fitted, info = normalise_drift(cal.measurements, cal.speed_trace)
    assert info == cal.params.fitted_on["drift"]
    for m in fitted:
        if m.family == "matmul":
            assert m.flops / m.median_s <= cal.params.peak_flops
        else:
            assert m.bytes / m.median_s <= cal.params.peak_bytes_per_s
    for basis in ("flops", "bytes"):
        p = peaks[basis]
        assert p["value"] == (p["best_measured"] * 1.05 if p["raised"] else p["profile"])


def test_energy_without_meter_comes_from_profile(cal):
    assert cal.energy_source in ("rapl", "profile")  # this machine may have a readable RAPL counter
    assert set(cal.params.energy.elasticity_j_per_s) == {"matmul", "elementwise"}
    assert all(w > 0 for w in cal.params.energy.elasticity_j_per_s.values())
    assert cal.profile.tdp_w is not None  # guessed (and marked estimated) when the detected profile had none


def test_file_round_trips(cal, cal_file):
    profile, params = load_calibration(cal_file)
    assert profile.to_dict() == cal.profile.to_dict()
    assert params.to_dict() == json.loads(json.dumps(cal.params.to_dict()))
    data = json.loads(Path(cal_file).read_text())
    assert data["schema"] == SCHEMA and data["energy_source"] == cal.energy_source
    assert {"family", "op", "shape", "flops", "bytes", "median_s", "repeats"} <= set(data["measurements"][0])
    # the speed trace (canaries at the start, between benchmarks, at the end) and each measurement's canary
    assert len(data["speed_trace"]) >= 2 and data["speed_trace"] == [dict(p) for p in cal.speed_trace]
    assert all(m["canary_gflops"] > 0 and m["canary_gbs"] > 0 and m["t_s"] >= 0 for m in data["measurements"])
    assert is_calibration_file(cal_file)


def test_is_calibration_file_false_for_others(tmp_path):
    prof = save_profile(detect_local("cpu"), tmp_path / "profile.json")
    (tmp_path / "bad.json").write_text("{not json")
    assert not is_calibration_file(prof)
    assert not is_calibration_file(tmp_path / "bad.json")
    assert not is_calibration_file(tmp_path / "missing.json")


@pytest.mark.parametrize("edit, key", [
    (lambda d: d.update(schema="fxenergy.calibration/99"), "schema"),
    (lambda d: d.update(surprise=1), "surprise"),
    (lambda d: d.pop("hef"), "hef"),
    (lambda d: d.update(energy_source="guess"), "energy_source"),
    (lambda d: d["hef"].update(device="other"), "hef.device"),
])
def test_bad_file_refused_with_one_line(cal, tmp_path, edit, key):
    data = cal.to_dict()
    edit(data)
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserInputError) as e:
        load_calibration(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and key in msg


def test_missing_file_refused(tmp_path):
    with pytest.raises(UserInputError, match="not found"):
        load_calibration(tmp_path / "nope.json")


def test_annotate_with_calibrated_profile_and_params(cal_file, tmp_path):
    profile, params = load_calibration(cal_file)
    params_file = tmp_path / "hef.json"
    params_file.write_text(json.dumps(params.to_dict()))
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    res = fxenergy.annotate(model, torch.empty(4, 64, device="meta"), hardware=profile, predictor="hef",
                            params=str(params_file))
    worked = [r for r in res.rows if not r.free]
    assert worked and all(math.isfinite(r.duration_s) and r.duration_s > 0 for r in worked)
    assert math.isfinite(res.totals.energy_j) and res.totals.energy_j > 0


def test_cuda_unavailable_is_a_user_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserInputError, match="CUDA"):
        run_calibration("cuda", benches=TINY)


def test_builtin_benchmarks_cover_every_family():
    fams = {b.family for b in benchmarks(quick=True)}
    assert fams == {"matmul", "bmm", "convolution", "elementwise", "normalization", "softmax", "reduction",
                    "pooling", "embedding"}
    assert len(benchmarks(quick=True)) < len(benchmarks(quick=False))


# --- RAPL ---------------------------------------------------------------------------------------------


def _domain(root: Path, name: str, energy: int, max_range: int) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d


@pytest.mark.parametrize("start, end, max_range, expected", [
    (100, 350, 1000, 250),  # no wrap
    (990, 10, 1000, 20),  # wrapped once: 10 + 1000 - 990
    (0, 0, 1000, 0),
])
def test_rapl_delta(start, end, max_range, expected):
    assert rapl_delta_uj(start, end, max_range) == expected


def test_rapl_meter_reads_packages_and_handles_wrap(tmp_path):
    import time

    p0 = _domain(tmp_path, "intel-rapl:0", 262_143_000_000, 262_143_999_999)
    p1 = _domain(tmp_path, "intel-rapl:1", 5_000_000, 262_143_999_999)
    _domain(tmp_path, "intel-rapl:0:0", 1, 10)  # a sub-domain (core): must not be counted again
    meter = RaplMeter(tmp_path)
    assert len(meter.domains) == 2
    meter.begin()
    (p0 / "energy_uj").write_text("1000000\n")  # wrapped: 999_999 uJ to the top, then 1_000_000 more
    (p1 / "energy_uj").write_text("8000000\n")  # + 3 J
    time.sleep(0.01)  # 5 J in 10 ms is 500 W: a plausible window
    assert sum(meter.end().values()) == pytest.approx((999_999 + 1_000_000 + 3_000_000) / 1e6)


def test_rapl_meter_unavailable(tmp_path, monkeypatch):
    with pytest.raises(MeterUnavailable, match="no RAPL"):
        RaplMeter(tmp_path)
    _domain(tmp_path, "intel-rapl:0", 1, 10)
    real_read = Path.read_text

    def deny(self, *a, **k):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return real_read(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", deny)
    with pytest.raises(MeterUnavailable, match="root only"):
        RaplMeter(tmp_path)


def test_cli_report_accepts_calibration_file(cal, cal_file, capsys):
    """`report --hardware FILE` with a calibration file uses its profile and its fitted curves."""
    from fxenergy.cli import main

    code = main(["report", "alexnet", "--hardware", str(cal_file), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out)
    # CPUs default to the physical backend, which reads the file's kernel-class curves (issue 12)
    assert d["info"]["predictor"] == "physical" and str(cal_file) in d["info"]["parameter_set"]
    assert d["info"]["hardware"] == cal.profile.name
    assert d["totals"]["energy_j"] > 0 and d["totals"]["duration_s"] > 0
    # with the calibrated curves, the calibrated row of the shipped CPU latency run is the stated time error
    assert d["info"]["expected_error"]["quantity"] == "time"
    assert "after `fxenergy calibrate --quick`" in d["info"]["expected_error"]["basis"]


def test_compare_predictors_keeps_the_calibration_curves(cal_file):
    # issue 10: with --hardware cal.json --predictor all, HEF must use the file's own curves
    from fxenergy.api import compare_predictors

    _, params = load_calibration(cal_file)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU())
    results = compare_predictors(model, torch.randn(4, 64), hardware=str(cal_file))
    assert "hef" in results and "roofline" in results
    assert results["hef"].info["parameter_set"] == params.name


def test_power_windows_use_measure_meters_and_retry_a_failed_window():
    """calibrate's power windows run on fxenergy.measure's meter interface: a window whose meter fails
    is taken again, and the mean power is the window's joules over its seconds."""
    from conftest import ScriptedMeter

    from fxenergy.calibrate.meters import _power_windows
    from fxenergy.measure import MeterError

    bench = Bench("elementwise", "add", torch.add, ((64,), (64,)))
    meter = ScriptedMeter([MeterError("wrapped twice"), 1.0, 2.0])
    rows = _power_windows(meter, [bench], torch.device("cpu"), 0.01, None)
    assert [r["family"] for r in rows] == ["idle", "elementwise"]
    assert [r["energy_j"] for r in rows] == [1.0, 2.0]
    assert all(r["mean_w"] == r["energy_j"] / r["window_s"] for r in rows)
