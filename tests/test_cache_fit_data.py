"""The shipped del Rey cache-model artifacts (scripts/fit_cache.py) load and match a refit on the data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fxenergy.hardware import load_profile
from fxenergy.predictors.cache import CachePredictor
from fxenergy.predictors.interface import load_artifact

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
GPUS = ("rtx-3090", "rtx-3070", "gtx-750-ti")


def _script():
    spec = importlib.util.spec_from_file_location("fit_cache", ROOT / "scripts" / "fit_cache.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("gpu", GPUS)
def test_artifact_loads_and_names_its_data(gpu):
    art = load_artifact("cache", f"cache-{gpu}")
    p = CachePredictor.from_json(art)
    assert p.hardware == gpu
    levels = [c.level for c in load_profile(gpu).caches] + ["RAM"]
    assert set(p.constants_) == {"k_e", "k_p", "k_o", "k_d"} | {f"{x}_{n}" for x in "am" for n in levels}
    assert all(v >= 0 for v in p.constants_.values())
    f = art["fitted_on"]
    assert "training-delrey" in f["dataset"] and "seaa2023_ect @6fa5af6" in f["source"]
    assert f["rows_used"] == sum(f["rows_per_architecture"].values()) > 0
    assert {"in_sample", "cv5"} <= set(f["errors_pct"])


@pytest.fixture(scope="module")
def refit_rows():
    if not (DATA / "training-delrey" / "dl-training-energy-consumption-dataset.csv").is_file():
        pytest.skip(f"del Rey training data not found at {DATA / 'training-delrey'} (../shared/data absent)")
    mod = _script()
    runs, dropped = mod.read_runs(DATA)
    assert dropped == {"nasnet_mobile": 90, "xception": 60}
    return mod, mod.table_rows(runs)


@pytest.mark.parametrize("gpu", GPUS)
def test_artifact_reproduces_recorded_in_sample_error(refit_rows, gpu):
    mod, rows = refit_rows
    sub = [r for r in rows if r["profile"] == gpu]
    art = load_artifact("cache", f"cache-{gpu}")
    rec = art["fitted_on"]["errors_pct"]["in_sample"]
    assert len(sub) == art["fitted_on"]["rows_used"] == rec["rows"]
    # the shipped constants reproduce the recorded table row
    errs = mod.ape(CachePredictor.from_json(art), sub)
    assert np.mean(errs) == pytest.approx(rec["mean_abs_pct_error"], abs=1e-3)
    assert np.median(errs) == pytest.approx(rec["median_abs_pct_error"], abs=1e-3)
    # and a refit gives the same error (the fit is deterministic)
    refit = mod.ape(mod._fit(sub, gpu), sub)
    assert np.mean(refit) == pytest.approx(rec["mean_abs_pct_error"], abs=1e-2)
