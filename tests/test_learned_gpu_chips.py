"""Per-chip corrections of the learned GPU model, and the per-tile utilisation model (fxenergy.perf.tiles)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from fxenergy.hardware import load_profile
from fxenergy.perf.device import device_spec
from fxenergy.perf.features import _peaks, bounds_s, chip_key, correction_log
from fxenergy.perf.fitting import fit_correction, fit_tile_mlp
from fxenergy.perf.kernels import gemm_kernel
from fxenergy.perf.model import LearnedGPUModel, load_perf_params
from fxenergy.perf.tiles import TILES, TileMLP, tile_inputs

BIG = [gemm_kernel(1, 8192, 4096, 1024, torch.float32, bias=True), gemm_kernel(1, 8192, 1024, 4096, torch.float32)]


def test_chip_key_groups_skus_of_one_die():
    assert chip_key(load_profile("v100-pcie-32gb")) == chip_key(load_profile("v100-sxm2-32gb")) == "volta:80"
    assert chip_key(load_profile("a30")) != chip_key(load_profile("a100-80gb-pcie"))
    assert chip_key(load_profile("h100-sxm")) == "hopper:132"


def test_fit_correction_recovers_a_constant_and_drops_thin_bins():
    rng = np.random.default_rng(0)
    tb = 10 ** rng.uniform(-5, -2, 3000)
    curve = fit_correction(np.full(3000, 0.2) + rng.normal(0, 0.01, 3000), tb)
    assert curve is not None and np.allclose(curve["log_factor"], 0.2, atol=0.01)
    assert all(n >= 30 for n in curve["rows"])
    assert np.allclose(correction_log(curve, np.array([1e-9, 1e-4, 10.0])), 0.2, atol=0.01)
    assert fit_correction(np.zeros(10), tb[:10]) is None


def test_shipped_correction_applies_to_the_measured_die_only_and_keeps_the_bound():
    params = load_perf_params()
    bare = dataclasses.replace(params, chip_correction={})
    assert "volta:80" in params.chip_correction and "gemm" in params.chip_correction["volta:80"]
    for name in ("v100-pcie-32gb", "v100-sxm2-32gb"):  # the V100 die was measured: its own curve
        prof = load_profile(name)
        t, tb = LearnedGPUModel(prof, params).kernel_durations_s(BIG)
        t0, _ = LearnedGPUModel(prof, bare).kernel_durations_s(BIG)
        assert np.all(t >= tb) and not np.allclose(t, t0)
    prof = load_profile("h100-sxm")  # never measured: the pooled forests alone
    assert np.allclose(LearnedGPUModel(prof, params).kernel_durations_s(BIG)[0],
                       LearnedGPUModel(prof, bare).kernel_durations_s(BIG)[0])
    prof = load_profile("a100-80gb-pcie")  # TF32 kernels are not what the curves were fitted on
    tf = LearnedGPUModel(prof, params, matmul_precision="high").kernel_durations_s(BIG)[0]
    assert np.allclose(tf, LearnedGPUModel(prof, bare, matmul_precision="high").kernel_durations_s(BIG)[0])


def test_tile_model_never_goes_below_the_roofline_and_fits_a_known_utilisation():
    dev = device_spec(load_profile("v100-pcie-32gb"))
    rng = np.random.default_rng(1)
    ks = [gemm_kernel(int(b), int(m), int(n), int(k), torch.float32)
          for b, m, n, k in zip(rng.integers(1, 64, 300), 2 ** rng.integers(5, 12, 300), 2 ** rng.integers(5, 12, 300),
                                2 ** rng.integers(5, 12, 300), strict=True)]
    mat, tc = _peaks(ks, dev, "highest", False)
    X, t0, wv = tile_inputs(ks, dev, mat, tc)
    assert X.shape[:2] == (300, len(TILES))
    truth = t0[:, 0] - np.log(0.6)  # a GPU running the 128x128 tile at 60% utilisation
    js = fit_tile_mlp(X, t0, wv, truth, steps=300, hidden=8)
    model = TileMLP(js)
    pred = model.predict_log_s(ks, dev, mat, tc)
    assert np.all(np.exp(pred) >= bounds_s(ks, dev, "highest", False) * (1 - 1e-9))
    assert np.median(np.abs(pred - truth)) < 0.15
