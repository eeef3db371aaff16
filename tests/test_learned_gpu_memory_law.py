"""The achieved-bandwidth law of the memory families (fxenergy.perf.memory_law, issue 11, gpu8)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fxenergy.errors import UserInputError
from fxenergy.hardware import load_profile
from fxenergy.perf.device import device_spec
from fxenergy.perf.features import bounds_s
from fxenergy.perf.kernels import memory_kernel
from fxenergy.perf.memory_law import MemoryLaw, fit_memory_law, law_kinds
from fxenergy.perf.model import LearnedGPUModel, load_perf_params

PARAMS = Path(__file__).resolve().parents[1] / "fxenergy" / "predictors" / "params" / "learned-gpu.json"
NEW_GPUS = ("h100-sxm", "l4", "l40s", "rtx-4090", "b200")


def _kernels() -> list:
    out = []
    for n in (2**10, 2**14, 2**18, 2**22, 2**26, 2**29):
        cols = 1024 if n >= 1024 else n
        out += [memory_kernel("elementwise", n // cols, cols, torch.float32, 12.0 * n, float(n)),
                memory_kernel("reduction", n // cols, cols, torch.float32, 8.0 * n, 5.0 * n, layer_norm=True),
                memory_kernel("reduction", n // cols, cols, torch.float32, 8.0 * n, 5.0 * n, softmax=True),
                memory_kernel("reduction", max(n // 4096, 1), 4096, torch.float32, 8.0 * n, 5.0 * n, softmax=True)]
    return out


def test_kinds_split_softmax_rows_at_1024():
    ks = [memory_kernel("reduction", 8, c, torch.float32, 64.0 * c, 5.0 * c, softmax=s)
          for c, s in ((512, False), (1024, True), (1025, True))]
    assert list(law_kinds(ks)) == [0, 1, 2]


def test_fit_recovers_a_synthetic_law():
    rng = np.random.default_rng(1)
    true = MemoryLaw(eta=0.8, g=0.5, m_softmax_short=0.7, m_softmax_long=1.3, harness_lead=0.2)
    n = 4000
    t_dram = 10 ** rng.uniform(-5.5, -2, n)
    ws = 2.0 ** rng.uniform(-4, 6, n)
    kinds = rng.integers(0, 3, n)
    floor = np.full(n, 20e-6)
    meas = (true.harness_lead * floor + true.kernel_s(t_dram, ws, kinds)) * np.exp(rng.normal(0, 0.03, n))
    got = fit_memory_law(meas, t_dram, t_dram, ws, kinds, floor)
    for f in ("eta", "g", "m_softmax_short", "m_softmax_long", "harness_lead"):
        assert getattr(got, f) == pytest.approx(getattr(true, f), rel=0.1), f


def test_law_json_round_trip_and_range():
    law = MemoryLaw(0.75, 0.6, 0.6, 0.8, 0.3)
    assert MemoryLaw.from_json(law.to_json()) == law
    with pytest.raises(ValueError):
        MemoryLaw.from_json({**law.to_json(), "eta": 1.5})  # above the spec-sheet bandwidth
    with pytest.raises(KeyError):
        MemoryLaw.from_json({"eta": 0.7})


def test_a_file_with_a_bad_law_is_refused(tmp_path):
    art = json.loads(PARAMS.read_text())
    art["params"]["memory_law"]["elementwise"]["eta"] = 0.0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(art))
    with pytest.raises(UserInputError, match="malformed"):
        load_perf_params(str(bad))


def test_shipped_file_prices_memory_families_by_the_law_and_forests_remain_for_older_files():
    params = load_perf_params()
    assert set(params.memory_law) == {"elementwise", "reduction"}
    assert {"elementwise", "reduction"} <= set(params.forests)  # what a reader without the law uses
    ks = _kernels()
    prof = load_profile("h100-sxm")
    with_law = LearnedGPUModel(prof, params).kernel_durations_s(ks)[0]
    trees = LearnedGPUModel(prof, dataclasses.replace(params, memory_law={})).kernel_durations_s(ks)[0]
    assert not np.allclose(with_law, trees)
    # reductions the law was not fitted on (batch norm, pooling, sums) keep the forest
    other = [memory_kernel("reduction", 32 * 256, 56 * 56, torch.float32, 8.0 * 32 * 256 * 3136, 2.0 * 32 * 256 * 3136)]
    assert LearnedGPUModel(prof, params).kernel_durations_s(other)[0] == pytest.approx(
        LearnedGPUModel(prof, dataclasses.replace(params, memory_law={})).kernel_durations_s(other)[0])
    # a streaming elementwise kernel far larger than L2 on a GPU never measured: the law exactly
    law = params.memory_law["elementwise"]
    dev = device_spec(prof)
    big = ks[-4]
    expect = big.bytes / dev.bandwidth_bytes_per_s / (law.eta * (1 + law.g / (1 + big.bytes / dev.l2_bytes)))
    assert with_law[-4] == pytest.approx(expect, rel=1e-9)


@pytest.mark.parametrize("gpu", NEW_GPUS)
def test_new_gpus_stay_between_the_bound_and_a_few_times_it(gpu):
    """GPUs outside the kernel data: every memory kernel between its roofline bound and 4x it (the law
    reaches eta of the spec bandwidth, fitted ~0.5-0.8), bigger working sets never faster per byte."""
    prof = load_profile(gpu)
    ks = _kernels()
    t, tb = LearnedGPUModel(prof).kernel_durations_s(ks)
    assert np.all(np.isfinite(t)) and np.all(t >= tb * (1 - 1e-12))
    assert np.all(t <= 4.0 * tb), (gpu, (t / tb).max())
    assert np.allclose(tb, bounds_s(ks, device_spec(prof)))
    per_byte = (t / np.array([k.bytes for k in ks])).reshape(-1, 4)  # one column per kind, rows by size
    assert np.all(np.diff(per_byte, axis=0) >= -1e-18)


def test_measured_dies_get_their_own_law_or_curve_and_bad_entries_are_refused(tmp_path):
    params = load_perf_params()
    ks = _kernels()
    for gpu in ("v100-pcie-32gb", "p4"):
        prof = load_profile(gpu)
        own = LearnedGPUModel(prof, params).kernel_durations_s(ks)[0]
        pooled = LearnedGPUModel(prof, dataclasses.replace(params, chip_memory_law={})).kernel_durations_s(ks)[0]
        assert not np.allclose(own, pooled), gpu  # the die's own law or curve changes its memory kernels
    assert LearnedGPUModel(load_profile("p4"), params).memory_law("reduction") is not params.memory_law["reduction"]
    art = json.loads(PARAMS.read_text())
    key = next(k for k in art["params"]["chip_memory_law"] if k != "check")
    art["params"]["chip_memory_law"][key]["reduction"] = {"eta": 0.5}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(art))
    with pytest.raises(UserInputError, match="malformed"):
        load_perf_params(str(bad))
