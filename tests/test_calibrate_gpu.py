"""fxenergy calibrate --device cuda: the learned model's per-family correction, fitted with a fake timer.

No GPU here: the CUDA-event timer itself is untested on hardware; these tests cover the fitting, the
file round-trip, its use by the learned backend and the refusal without CUDA.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from conftest import no_wait_for_quiet

from fxenergy.calibrate import Bench, run_calibration, save_calibration
from fxenergy.calibrate.gpu import (
    GPU_BENCHES,
    check_cuda,
    fit_learned_correction,
    load_learned_correction,
    run_learned_calibration,
)
from fxenergy.errors import UserInputError
from fxenergy.hardware import load_profile
from fxenergy.perf.model import LearnedGPUModel

DEVICE = "a100-80gb-pcie"
FACTORS = {"gemm": 1.3, "conv": 0.9, "elementwise": 0.8, "reduction": 1.1}


def fake_timer(model: LearnedGPUModel, power_w: float | None = None):  # noqa: ANN201
    """Measured = the model's prediction x a known per-family factor (and a fixed board power)."""

    def timer(bench):  # noqa: ANN001, ANN202
        t_k, _ = model.kernel_durations_s([bench.kernel()])
        t = max(float(t_k[0]), model.floor_s(bench.family)) * FACTORS[bench.family]
        return t, (None if power_w is None else power_w * t)

    return timer


def test_benches_cover_every_timed_family():
    assert {b.family for b in GPU_BENCHES} == set(FACTORS)


def test_fit_recovers_known_factors_and_power():
    model = LearnedGPUModel(load_profile(DEVICE))
    sec = run_learned_calibration(model.profile, timer=fake_timer(model, power_w=200.0))
    for fam, f in FACTORS.items():
        assert sec["duration_log_scale"][fam] == pytest.approx(math.log(f), abs=1e-6)
    dev = model.device
    frac = (200.0 - dev.idle_w) / (dev.power_limit_w - dev.idle_w)
    assert all(-1 <= v <= 1 for v in sec["power_offset"].values()) and sec["power_offset"]
    # the corrected model's power at a bench's utilisation is the measured 200 W
    corrected = LearnedGPUModel(model.profile, correction=sec)
    b = next(x for x in GPU_BENCHES if x.family == "gemm")
    (t,), (tb,) = corrected.kernel_durations_s([b.kernel()])
    a, slope = model.power_line("gemm")
    assert a + slope * min(tb / t, 1.0) + sec["power_offset"]["gemm"] == pytest.approx(frac, abs=0.15)


def test_correction_scales_durations_but_never_below_bound():
    prof = load_profile(DEVICE)
    base = LearnedGPUModel(prof)
    fast = LearnedGPUModel(prof, correction={"duration_log_scale": {"gemm": -1.0}})
    ks = [b.kernel() for b in GPU_BENCHES if b.family == "gemm"]
    t0, tb = base.kernel_durations_s(ks)
    t1, _ = fast.kernel_durations_s(ks)
    assert (t1 <= t0).all() and (t1 >= tb * (1 - 1e-9)).all()
    assert any(x < y for x, y in zip(t1, t0))
    assert "calibrated on this GPU" in " ".join(fast.notes())


def test_bad_measurements_refused():
    model = LearnedGPUModel(load_profile(DEVICE))
    with pytest.raises(UserInputError):
        fit_learned_correction(model, GPU_BENCHES[:2], [1e-3, float("nan")])


def test_no_cuda_is_a_one_line_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(UserInputError, match="no CUDA device"):
        check_cuda("cuda")
    with pytest.raises(UserInputError):
        run_learned_calibration(load_profile(DEVICE))


def test_cli_refuses_without_cuda(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    from fxenergy.cli import main

    assert main(["calibrate", "--device", "cuda", "-o", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA" in err[0]


def test_file_round_trip_and_report_uses_it(tmp_path):
    import fxenergy
    from fxenergy.resolve import resolve

    prof = load_profile(DEVICE)
    tiny = [Bench("matmul", "mm", torch.mm, ((n, n), (n, n))) for n in (8, 32, 64, 128, 256)]
    with no_wait_for_quiet():  # never wait for a busy machine (pytest -n 2) to calm down
        cal = run_calibration("cpu", quick=True, benches=tiny, profile=prof)  # the HEF part, timed on CPU
    model = LearnedGPUModel(prof)
    cal = dataclasses.replace(cal, learned=run_learned_calibration(prof, timer=fake_timer(model)))
    path = save_calibration(cal, tmp_path / "gpu.json")
    assert json.loads(path.read_text())["learned"]["device"] == DEVICE
    corr = load_learned_correction(path)
    assert corr["duration_log_scale"]["gemm"] == pytest.approx(math.log(1.3), abs=1e-6)
    setup = resolve(str(path))
    assert setup.predictor == "learned" and setup.backend.correction is not None
    x = torch.randn(64, 1024)
    lin = torch.nn.Linear(1024, 4096)
    cal_r = fxenergy.annotate(lin, (x,), hardware=str(path))
    plain = fxenergy.annotate(lin, (x,), hardware=DEVICE)
    assert cal_r.totals.duration_s == pytest.approx(plain.totals.duration_s * 1.3, rel=0.05)  # an addmm: gemm x 1.3
    assert any("calibrated on this GPU" in n for n in cal_r.info["energy_notes"])


def test_out_of_range_correction_refused(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"schema": "fxenergy.calibration/1", "learned": {"duration_log_scale": {"gemm": 5.0}}}))
    with pytest.raises(UserInputError, match="out of range"):
        load_learned_correction(p)
