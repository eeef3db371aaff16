"""Run-level training estimate, carbon, baselines, offline and online estimators (issue 9)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import fxenergy
from fxenergy.cli import main
from fxenergy.errors import UserInputError
from fxenergy.training import carbon_intensity, estimate_training, steps_per_epoch
from fxenergy.training.carbon import DEFAULT_PUE
from fxenergy.training.run import Overheads


def small_net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 8 * 8, 10))


@pytest.fixture(scope="module")
def est():
    return estimate_training(small_net(), torch.randn(16, 3, 8, 8), epochs=3, train_samples=100, val_samples=40,
                             hardware="rtx-3090", region="ESP", pue=1.2)


def test_shared_analyses_capture_each_step_once_and_change_nothing(est, monkeypatch):
    """Analyse once, predict many: a second device reuses the first call's captures (4 steps: full and
    partial training, full and partial evaluation) and gets the same figures as a call of its own."""
    import fxenergy.analysis

    captures = []
    real = fxenergy.analysis.analyse
    monkeypatch.setattr(fxenergy.analysis, "analyse", lambda *a, **k: captures.append(k["mode"]) or real(*a, **k))
    model, batch = small_net(), torch.randn(16, 3, 8, 8)
    kw = dict(epochs=3, train_samples=100, val_samples=40, region="ESP", pue=1.2)
    memo: dict = {}
    first = estimate_training(model, batch, hardware="a30", analyses=memo, **kw)
    assert sorted(captures) == ["inference", "inference", "training", "training"] and len(memo) == 4
    shared = estimate_training(model, batch, hardware="rtx-3090", analyses=memo, **kw)
    assert len(captures) == 4  # nothing captured again
    assert shared.energy_kwh == pytest.approx(est.energy_kwh, rel=1e-12) and shared.hours == pytest.approx(est.hours)
    assert first.hardware == "a30" and shared.hardware == "rtx-3090" and first.energy_kwh != shared.energy_kwh
    estimate_training(small_net(), batch, hardware="rtx-3090", analyses=memo, **kw)  # another model: its own
    assert len(captures) == 8


def test_steps_per_epoch_counts_the_last_partial_batch():
    assert steps_per_epoch(1000, 64) == (16, 40)
    assert steps_per_epoch(1000, 64, drop_last=True) == (15, 64)
    assert steps_per_epoch(1024, 64) == (16, 64)
    assert steps_per_epoch(5, 5) == (1, 5)


def test_estimate_equals_the_step_costs_times_the_step_counts(est):
    # Recompute the run from independent annotate calls: 6 full steps of 16 + one of 4 per epoch, and
    # evaluation 2 x 16 + 8, plus the host->device copies at idle power (25% of TDP: no idle_w in the profile).
    m, x = small_net(), torch.randn(16, 3, 8, 8)

    def e(batch, mode):
        r = fxenergy.annotate(m, x[:batch], mode=mode, hardware="rtx-3090")
        return r.totals.energy_j

    per_epoch = 6 * e(16, "training") + e(4, "training") + 2 * e(16, "inference") + e(8, "inference")
    h2d_j = (100 + 40) * 3 * 8 * 8 * 4 / 12e9 * 0.25 * 350
    assert est.train_steps_per_epoch == 7 and est.last_train_batch == 4
    assert est.val_steps_per_epoch == 3 and est.last_val_batch == 8
    # plus the fitted overheads of the rtx-3090 (predictors/params/cache-rtx-3090.json): k_p per pass over the data
    # (a training and an evaluation pass per epoch) and k_e per run
    k_p, k_e = est.overheads.k_p_j, est.overheads.k_e_j
    assert est.total_energy_j == pytest.approx(3 * (per_epoch + h2d_j + 2 * k_p) + k_e, rel=1e-9)
    assert est.per_epoch_energy_j * 3 == pytest.approx(est.total_energy_j, rel=1e-12)


def test_rows_sum_to_the_totals_and_units_convert(est):
    assert sum(p.energy_j for p in est.phases) == pytest.approx(est.total_energy_j)
    assert sum(r.energy_j for r in est.layers) == pytest.approx(est.total_energy_j)
    phases = {p.phase for p in est.phases}
    assert {"forward", "backward", "optimizer", "eval", "data loading"} <= phases
    assert all(p.energy_j > 0 for p in est.phases)  # nothing silently zero
    assert est.energy_kwh == pytest.approx(est.total_energy_j / 3.6e6)
    assert est.hours == pytest.approx(est.total_duration_s / 3600)
    spain = carbon_intensity("ESP")
    assert est.gco2e == pytest.approx(est.energy_kwh * spain.g_per_kwh * 1.2)
    d = json.loads(est.to_json())
    assert d["totals"]["gco2e"] == pytest.approx(est.gco2e) and d["carbon"]["year"] == spain.year


def test_overheads_and_epochs_scale_as_eq7():
    m, x = small_net(), torch.randn(16, 3, 8, 8)
    kw = dict(train_samples=64, hardware="rtx-3090", region="FRA")
    base = estimate_training(m, x, epochs=2, overheads=Overheads(), **kw)
    more = estimate_training(m, x, epochs=4, overheads=Overheads(k_p_j=5.0, k_e_j=100.0, epoch_overhead_s=2.0), **kw)
    # 4 epochs: twice the steps, + k_e once, + k_p once per epoch (one pass, no validation), + 2 s idle per epoch
    idle = 0.25 * 350
    assert more.total_energy_j == pytest.approx(2 * base.total_energy_j + 100 + 4 * 5 + 4 * 2 * idle, rel=1e-9)
    assert more.total_duration_s == pytest.approx(2 * base.total_duration_s + 4 * 2.0, rel=1e-9)


def test_power_limit_slows_the_step_by_the_dvfs_rule():
    m, x = small_net(), torch.randn(16, 3, 8, 8)
    free = estimate_training(m, x, epochs=1, train_samples=32, hardware="rtx-3090")
    e, t = free.train_step_energy_j, free.train_step_duration_s
    p, idle = e / t, 0.25 * 350
    cap = idle + 0.5 * (p - idle)
    capped = estimate_training(m, x, epochs=1, train_samples=32, hardware="rtx-3090", power_limit_w=cap)
    s = 0.5 ** (1 / 3)
    assert capped.train_step_duration_s == pytest.approx(t / s)
    assert capped.train_step_energy_j == pytest.approx(cap * t / s)
    loose = estimate_training(m, x, epochs=1, train_samples=32, hardware="rtx-3090", power_limit_w=p * 1.01)
    assert loose.total_energy_j == pytest.approx(free.total_energy_j)


@pytest.mark.parametrize("kw, msg", [
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(epochs=-3), "epochs must be a positive integer"),
    (dict(train_samples=0), "train_samples must be a positive integer"),
    (dict(val_samples=-1), "val_samples must be an integer >= 0"),
    (dict(train_samples=8), "batch size 16 is larger than the training set"),
    (dict(region="Atlantis"), "unknown region 'Atlantis'"),
    (dict(pue=0.5), "PUE must be a number >= 1"),
    (dict(power_limit_w=-5), "power limit must be a positive number"),
])
def test_bad_input_is_one_line(kw, msg):
    args = dict(epochs=1, train_samples=100, hardware="rtx-3090") | kw
    with pytest.raises(UserInputError, match=msg) as e:
        estimate_training(small_net(), torch.randn(16, 3, 8, 8), **args)
    assert "\n" not in str(e.value)


def test_carbon_regions():
    assert carbon_intensity("spain").region == "ESP"
    assert carbon_intensity("esp").g_per_kwh == carbon_intensity("ESP").g_per_kwh
    world = carbon_intensity(None)
    assert 100 < world.g_per_kwh < 1000 and world.year >= 2021
    cloud = carbon_intensity("gcp:europe-west1")
    assert cloud.g_per_kwh > 0 and "google" in cloud.source.lower()
    assert carbon_intensity("ESP", g_per_kwh=50).g_per_kwh == 50
    assert DEFAULT_PUE == 1.58


@pytest.fixture()
def factory(tmp_path):
    f = tmp_path / "net.py"
    f.write_text("import torch\ndef build():\n    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), "
                 "torch.nn.LazyLinear(5) if False else torch.nn.Linear(4 * 14 * 14, 5))\n")
    return f"{f}:build"


def test_cli_train_estimate_json(factory, capsys, tmp_path):
    out = tmp_path / "t.json"
    code = main(["train-estimate", factory, "--epochs", "2", "--train-samples", "50", "--val-samples", "10",
                 "--batch-size", "8", "--image-size", "16", "--hardware", "rtx-3070", "--region", "gcp:europe-west1",
                 "--format", "json", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    d = json.loads(out.read_text())
    assert d["run"]["train_steps_per_epoch"] == 7 and d["run"]["last_train_batch"] == 2
    assert d["per_epoch"]["energy_j"] * 2 == pytest.approx(d["totals"]["energy_j"])
    assert d["carbon"]["region"] == "gcp:europe-west1"


def test_cli_table_has_per_epoch_and_carbon(factory, capsys):
    code = main(["train-estimate", factory, "--epochs", "1", "--train-samples", "20", "--batch-size", "8",
                 "--image-size", "16", "--hardware", "rtx-3070", "--pue", "1.0", "--carbon-intensity", "100"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "per epoch:" in out and "gCO2e" in out and "x 100 g/kWh" in out


@pytest.mark.parametrize("argv, msg", [
    (["--epochs", "0"], "--epochs must be a positive integer"),
    (["--train-samples", "-5"], "--train-samples must be a positive integer"),
    (["--batch-size", "500"], "larger than the training set"),
    (["--region", "Narnia"], "unknown region"),
])
def test_cli_bad_input_exit_2_nothing_written(factory, capsys, tmp_path, argv, msg):
    out = tmp_path / "t.json"
    base = ["train-estimate", factory, "--epochs", "1", "--train-samples", "20", "--batch-size", "8",
            "--image-size", "16", "--hardware", "rtx-3070", "-o", str(out)]
    code = main(base + argv)
    err = capsys.readouterr().err
    assert code == 2 and msg in err and err.count("\n") == 1
    assert not out.exists() and not list(tmp_path.glob(".t.json*"))


# ---------------------------------------------------------------- baselines
def test_baselines_follow_their_formulas():
    from fxenergy.hardware import load_profile

    m, x = small_net(), torch.randn(4, 3, 8, 8)
    roof = fxenergy.annotate(m, x, hardware="rtx-3090", predictor="roofline")
    t = roof.totals.duration_s
    ml = fxenergy.annotate(m, x, hardware="rtx-3090", predictor="mlco2")
    assert ml.totals.duration_s == pytest.approx(t)
    assert ml.totals.energy_j == pytest.approx(350 * t)
    ga = fxenergy.annotate(m, x, hardware="rtx-3090", predictor="green-algorithms")
    assert ga.totals.energy_j == pytest.approx((350 + 24 * 0.3725) * t)
    # FLOPs x TDP/peak: the rule itself, on the same durations ...
    from fxenergy.analysis import GraphView, analyse
    from fxenergy.passes.durations import DurationPass
    from fxenergy.predictors.baselines import FlopsOnlyPredictor
    from fxenergy.predictors.bounds import PhysicalBoundsError

    profile = load_profile("rtx-3090")
    view = GraphView(analyse(m, x).graph_module)
    DurationPass(profile, "roofline")(view)
    est = FlopsOnlyPredictor().predict(view, profile)  # type: ignore[arg-type]
    flops = roof.totals.flops + roof.totals.elementwise_flops
    assert sum(est.node_energy_j.values()) == pytest.approx(flops * 350 / 35.6e12)
    # ... which on a net this small is below idle power x run time: refused, not printed (issue 12)
    with pytest.raises(PhysicalBoundsError, match="idle"):
        fxenergy.annotate(m, x, hardware="rtx-3090", predictor="flops")
    from fxenergy.resolve import applicable_predictors

    assert {"mlco2", "green-algorithms", "flops"} <= set(applicable_predictors(load_profile("rtx-3090")))


# ---------------------------------------------------------------- offline estimators
def test_offline_json_reproduces_kernel_ridge():
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.preprocessing import StandardScaler

    from fxenergy.training.offline import OfflineEstimator

    rng = np.random.default_rng(0)
    x = rng.uniform(1, 10, size=(40, 9))
    x[20:] = x[:20]  # duplicate points: merged support, same predictions
    y = x[:, 0] * 3 + np.sin(x[:, 1])
    xs = StandardScaler().fit(x)
    ym, ysd = y.mean(), y.std()
    krr = KernelRidge(kernel="rbf", gamma=0.2, alpha=0.01).fit(xs.transform(x), (y - ym) / ysd)
    est = OfflineEstimator.from_sklearn(krr, xs, ym, ysd, x, "power_w", {"dataset": "synthetic"})
    assert len(est.dual_coef) == 20
    q = rng.uniform(1, 10, size=(5, 9))
    want = ym + ysd * krr.predict(xs.transform(q))
    np.testing.assert_allclose(est.predict_rows(q), want, rtol=1e-9)
    again = OfflineEstimator.from_json(json.loads(json.dumps(est.to_json())))
    np.testing.assert_allclose(again.predict_rows(q), want, rtol=1e-9)


def test_shipped_offline_estimators_predict_in_domain():
    from fxenergy.training.offline import offline_training_energy

    r = offline_training_energy(hardware="rtx-3090", ram_gb=16, gflops=0.06402816, train_samples=23807, val_samples=10203,
                                batch_size=32, input_size=128, duration_s=3600.0, epochs=90)
    assert 60 < r["power_w"] < 350  # between a plausible idle and the TDP
    assert r["power_based_j"] == pytest.approx(r["power_w"] * 3600)
    assert r["epoch_energy_j"] > 0 and not r["notes"]
    out = offline_training_energy(hardware="rtx-3090", ram_gb=16, gflops=0.064, train_samples=23807,
                                  val_samples=10203, batch_size=256, input_size=128)
    assert any("batch_size" in n for n in out["notes"])  # outside the fitted range is said


def test_offline_fit_on_delrey_beats_the_seed(shared_data_dir=None):
    from pathlib import Path

    from fxenergy.training.offline import load_offline, read_delrey, split_delrey

    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (data / "training-delrey").is_dir():
        pytest.skip(f"del Rey training data not found at {data / 'training-delrey'} (../shared/data absent)")
    _, test = split_delrey(read_delrey(data))
    power = load_offline("power")
    pred = power.predict_rows(np.array([r.features for r in test])) * np.array([r.duration_s for r in test])
    true = np.array([r.energy_j for r in test])
    rmse_kj = math.sqrt(np.mean((pred - true) ** 2)) / 1e3
    assert rmse_kj < 27.76  # seed 002 Table 10, offline power-based
    assert rmse_kj == pytest.approx(power.fitted_on["test_rmse_kj"], rel=1e-6)


# ---------------------------------------------------------------- online estimators
def _trace(n=40, warm=True):
    from fxenergy.training.online import EpochRecord

    recs = []
    for i in range(n):
        p = 200.0 * (1 - (0.4 * math.exp(-i / 2) if warm else 0))
        t = 10.0 * (1.5 if i == 0 else 1.0)
        recs.append(EpochRecord(i + 1, t, p * t))
    return recs


def test_eq1_eq2_on_a_steady_trace_are_exact_after_warmup():
    from fxenergy.training.online import project

    recs = _trace(40, warm=False)
    truth = sum(r.energy_j for r in recs)
    p = project(recs[:14], 40, window=5)  # rule: stable from epoch 10
    assert p.stable_from == 10 and p.window == 5
    assert p.epoch_energy_based_j == pytest.approx(truth)
    assert p.power_based_j == pytest.approx(truth)
    assert p.band_j[0] <= truth <= p.band_j[1]
    assert project(recs[:13], 40, window=5) is None  # not yet w stable epochs


def test_eq2_counts_the_unstable_epochs_apart():
    from fxenergy.training.online import project

    recs = _trace(30, warm=True)
    p = project(recs[:12], 30, window=3, stable_from=10)
    e_u = sum(r.energy_j for r in recs[:9])
    e_w = sum(r.energy_j for r in recs[9:12])
    assert p.epoch_energy_based_j == pytest.approx(e_w * 21 / 3 + e_u)


def test_fluss_finds_a_step_change():
    from fxenergy.training.online import fluss_regime, stabilising_epoch

    x = np.r_[np.full(8, 100.0) + np.arange(8) % 2, np.full(24, 200.0) + np.arange(24) % 3]
    assert 5 <= fluss_regime(x, 3) <= 9  # subsequences of 3 straddle the change at 8
    assert stabilising_epoch(x[:5], method="fluss") == (None, "fluss")  # too few epochs to tell
    assert stabilising_epoch(x, method="rule") == (10, "rule")


def test_tracker_projects_and_stops_on_budget():
    from fxenergy.training.online import TrainingTracker

    class FakeMeter:
        name = "fake"

        def __init__(self):
            self.j = 0.0

        def read_j(self):
            return self.j

    clock = iter(float(i) for i in range(1000))
    meter = FakeMeter()
    tr = TrainingTracker(planned_epochs=50, window=2, stable_from=2, meter=meter, energy_budget_j=4000.0,
                         clock=lambda: next(clock))
    with tr:
        for _ in range(50):
            meter.j += 100.0
            p = tr.epoch_end()
            if tr.should_stop:
                break
    assert p.epochs_seen == 3 and p.epoch_energy_based_j == pytest.approx(5000.0)
    assert tr.should_stop and tr.measured_energy_j == pytest.approx(300.0)


def test_tracker_outside_a_loop_is_an_error():
    from fxenergy.training.online import TrainingTracker, WallClockMeter

    tr = TrainingTracker(planned_epochs=5, meter=WallClockMeter())
    with pytest.raises(UserInputError, match="outside a training loop"):
        tr.epoch_end()
    with pytest.raises(UserInputError, match="planned_epochs must be a positive integer"):
        TrainingTracker(planned_epochs=0, meter=WallClockMeter())


def test_transformers_callback_stops_training():
    from transformers import TrainerControl, TrainerState, TrainingArguments  # noqa: F401

    from fxenergy.training.online import TrainingTracker, WallClockMeter, transformers_callback

    tr = TrainingTracker(planned_epochs=100, window=1, stable_from=1, meter=WallClockMeter(), assumed_power_w=1e6,
                         energy_budget_j=1.0)
    cb = transformers_callback(tr)
    control = TrainerControl()
    cb.on_train_begin(None, None, control)
    cb.on_epoch_end(None, None, control)
    assert control.should_training_stop
