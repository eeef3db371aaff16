"""Small GEMMs on GPUs (gpu10): NeuSight's timing harness kept out of the GEMM fit, and the dispatch floor of
a setting (host + eager PyTorch) per family, read from that GPU's own per-operator rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from fxenergy.hardware import load_profile
from fxenergy.perf import nicolai
from fxenergy.perf.fitting import CENSOR_MULT, GEMM_BOUND_MULT, gemm_fit_rows
from fxenergy.perf.kernels import gemm_kernel
from fxenergy.perf.model import LearnedGPUModel, load_perf_params


def test_gemm_rows_are_chosen_by_their_bound_not_by_their_time():
    floor = 50e-6
    # (measured, bound): a small GEMM that ran slow, the same GEMM fast, one at the harness floor, a mid-size one
    meas = np.array([3.0, 1.3, 1.0, 1.3]) * floor
    bound = np.array([0.05, 0.05, 0.5, 0.5]) * floor
    keep = gemm_fit_rows(meas, bound, floor)
    # the outcome does not decide: both small rows are out (the bound is below GEMM_BOUND_MULT floors), however slow
    assert not keep[0] and not keep[1]
    assert not keep[2], "a row at the harness floor is censored: it only bounds the kernel from above"
    assert keep[3]
    assert 0.05 < GEMM_BOUND_MULT <= 0.5 and CENSOR_MULT > 1


def test_small_gemm_is_not_priced_as_the_harness():
    """A 32x1000x512 classifier head on the A30: the A30's own loop (not in the fit) measures 27.8 us per call,
    dispatch included, so its kernel takes no longer. The forest fitted on rows selected by their measured time
    priced the kernel at 98 us (the size of NeuSight's harness)."""
    model = LearnedGPUModel(load_profile("a30"))
    t, tb = model.kernel_durations_s([gemm_kernel(1, 32, 1000, 512, torch.float32, bias=True)])
    assert tb[0] < t[0] < 1.25 * 27.8e-6


def test_setting_floor_is_the_median_of_the_lowest_bound_decile():
    n = 40
    df = pd.DataFrame({"time_per_iter_s": np.r_[np.full(4, 30e-6), np.linspace(100e-6, 500e-6, n - 4)],
                       "profile": ["p"] * n, "op_type": ["Linear"] * n})
    pred = {"t_bound": np.r_[np.full(4, 1e-6), np.linspace(20e-6, 200e-6, n - 4)],
            "family": np.array(["gemm"] * n, dtype=object)}
    floors = nicolai.setting_floors(df, pred, np.ones(n, bool))
    # the 4 smallest-bound rows plus the next one (at least 5): median 30 us, whatever the big rows measured
    assert floors["p"]["gemm"] == 30e-6
    comp = {"dispatch_floor_s": 8e-6, "dispatch_floors": floors}
    assert nicolai.floor_for(comp, "p", "gemm") == 30e-6
    assert nicolai.floor_for(comp, "other", "gemm") == 8e-6


def _nicolai_floors() -> dict[str, dict[str, float]]:
    """The setting floors fitted on every Nicolai row (the shipped kernel model; no GPU needed)."""
    from fxenergy.perf.datasets import data_root, load_nicolai_ops

    if not (data_root() / "gpu-operators-nicolai").is_dir():
        pytest.skip("../shared/data/gpu-operators-nicolai is not there")
    import json

    from fxenergy.predictors.interface import load_artifact

    df = load_nicolai_ops()
    params = json.loads(json.dumps(load_artifact("learned", "learned-gpu")["params"]))
    pred = nicolai.row_predictions(df, params)
    return nicolai.setting_floors(df, pred, np.ones(len(df), bool))


def test_each_setting_has_its_own_floor_per_family():
    floors = _nicolai_floors()
    a30, rtx = floors["a30"], floors["rtx-2080-ti"]
    # the RTX 2080 Ti's host issues every kind of call ~2-3x slower than the A30's (gpu-operators-nicolai)
    for key in nicolai.FLOOR_FAMILIES:
        assert 1.5 * a30[key] < rtx[key], key
    # a cuBLAS call costs the host more than a plain elementwise launch; a batch norm more than a pooling layer
    assert a30["gemm"] > 2 * a30["elementwise"]
    assert a30["batch_norm"] > 2 * a30["reduction"]


def test_setting_floors_price_a_call_when_the_file_has_them():
    import fxenergy
    from fxenergy.analysis import GraphView
    from fxenergy.records import DURATION, get_record

    base = load_perf_params()
    floors = {"a30": {"gemm": 28e-6, "elementwise": 7.8e-6}, "rtx-2080-ti": {"gemm": 73e-6, "elementwise": 23e-6}}
    p = replace(base, dispatch_floors=floors)
    gm = fxenergy.annotate(torch.nn.Linear(512, 1000), torch.randn(32, 512), hardware="a30").graph_module
    t = {}
    for hw in ("a30", "rtx-2080-ti", "h100-sxm"):
        view = GraphView(gm)
        LearnedGPUModel(load_profile(hw), p).annotate(view)
        t[hw] = max(d.duration_s for n in view.graph.nodes if (d := get_record(n, DURATION)) is not None)
    # the small head costs its setting's gemm floor; a GPU outside the file keeps the pooled floor
    assert t["a30"] >= 28e-6 and t["rtx-2080-ti"] >= 73e-6
    assert t["h100-sxm"] < 28e-6
    assert p.floor_s("h100-sxm", "gemm") == base.dispatch_floor_s
    assert p.floor_s("a30", "batch_norm") == base.dispatch_floor_s  # a key the file lacks: the pooled floor
    assert p.floor_s("a30", "copy") == 7.8e-6  # copies and gathers dispatch as elementwise launches
