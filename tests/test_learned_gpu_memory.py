"""Memory kernels of the learned GPU model: NeuSight's timing harness, the softmax flag, in-sample biases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fxenergy.hardware import load_profile
from fxenergy.perf.device import device_spec
from fxenergy.perf.features import MEMORY_FEATURES, features
from fxenergy.perf.fitting import harness_time, lead_fraction, op_floors, uncensored
from fxenergy.perf.kernels import SOFTMAX_OPS, family_of_op, memory_kernel
from fxenergy.perf.model import LearnedGPUModel

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "gpu-kernels-neusight"
PARAMS = ROOT / "fxenergy" / "predictors" / "params" / "learned-gpu.json"


def test_harness_is_a_max_of_the_floor_and_lead_plus_kernel():
    t = np.array([1e-6, 20e-6, 200e-6])
    out = harness_time(t, 30e-6, 0.4)
    assert np.allclose(out, [30e-6, 32e-6, 212e-6])
    assert list(uncensored(np.array([30e-6, 37e-6, 38e-6]), 30e-6)) == [False, False, True]


def test_lead_fraction_recovers_a_synthetic_harness():
    rng = np.random.default_rng(0)
    rows, devs, floors, tbs = [], [], [], []
    for d, floor, lead, r in (("a", 26e-6, 0.45, 1.3), ("b", 40e-6, 0.5, 1.1), ("c", 30e-6, 0.4, 1.2)):
        tb = 10 ** rng.uniform(-6, -2.5, 3000)
        meas = harness_time(r * tb, floor, lead) * np.exp(rng.normal(0, 0.02, tb.size))
        rows.append(meas)
        tbs.append(tb)
        floors.append(np.full(tb.size, floor))
        devs += [d] * tb.size
    lead, per = lead_fraction(np.concatenate(rows), np.concatenate(tbs), np.full(len(devs), 100.0),
                              np.concatenate(floors), devs)
    assert abs(per["a"] - 0.45) < 0.05 and abs(per["b"] - 0.5) < 0.05 and abs(per["c"] - 0.4) < 0.05
    assert abs(lead - 0.45) < 0.05
    # too few streaming rows on a device: NaN there, the others decide
    _, per = lead_fraction(rows[0][:3], tbs[0][:3], np.full(3, 100.0), floors[0][:3], ["z"] * 3)
    assert np.isnan(per["z"])


def test_op_floors_are_per_device_and_op():
    secs = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    f = op_floors(secs, ["x", "x", "x", "x", "y", "y"], ["add", "add", "add", "relu", "add", "add"])
    assert f[("x", "relu")] == 10.0 and f[("x", "add")] < 1.2 and f[("y", "add")] < 21.0


def test_softmax_is_a_feature_of_memory_kernels():
    assert all(family_of_op(o) == "reduction" for o in SOFTMAX_OPS)
    dev = device_spec(load_profile("a100-40gb-pcie"))
    n = 8192 * 1024
    ks = [memory_kernel("reduction", 8192, 1024, torch.float32, 8 * n, 5 * n, softmax=s) for s in (True, False)]
    X, tb = features(ks, dev, geometry=False)
    col = MEMORY_FEATURES.index("softmax")
    assert list(X[:, col]) == [1.0, 0.0]
    assert np.allclose(np.delete(X[0], col), np.delete(X[1], col)) and tb[0] == tb[1]


@pytest.mark.skipif(not DATA.is_dir(), reason="gpu-kernels-neusight not found (../shared/data absent)")
def test_shipped_model_prices_big_a100_memory_kernels_without_the_old_bias():
    """In-sample (these rows are in the fit): A100 softmax over transformer shapes was priced 62% slow
    (median log bias +0.48) and gelu +0.17 when rows near the harness floor were dropped."""
    import pandas as pd

    from fxenergy.perf.datasets import _neusight_kernels

    shipped = json.loads(PARAMS.read_text())
    harness = shipped["fitted_on"]["memory_harness"]
    model = LearnedGPUModel(load_profile("a100-40gb-pcie"))
    for op, lo in (("softmax", 0.1), ("gelu", 0.1)):
        df = pd.read_csv(DATA / "kernels" / op / "NVIDIA_A100-PCIE-40GB.csv")
        df = df[(df["B"] * df["H"] >= 2**22) & ((op != "softmax") | ((df["H"] >= 256) & (df["H"] <= 2048)))]
        ks = _neusight_kernels(op, df)
        t, tb = model.kernel_durations_s(ks)
        assert np.all(t >= tb)
        # the harness as fitted: a memory law's lead correction (a timing term, not the kernel's) on top
        fam = "reduction" if op == "softmax" else "elementwise"
        law = model.memory_law(fam)  # the A100 die's own law where fitted, else the pooled one
        lead = harness["lead_fraction"] + (law.harness_lead if law is not None else 0.0)
        pred = harness_time(t, harness["op_floor_s"][f"a100-40gb-pcie:{op}"], lead)
        bias = float(np.median(np.log(pred / (df["Latency"].to_numpy() / 1e3))))
        assert abs(bias) < lo, (op, bias)
