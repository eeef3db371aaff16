"""benchmarks/cpu_class_context_fit.py can find a class priced low in whole models when there is one (issue 12, session
14): its negative result on the development timings means something only if the fit has the power to see an effect."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import cpu_class_context_fit as ctx  # noqa: E402


def _rows(norm_factor: float, seed: int = 0) -> list[dict]:
    """Three timing files at levels 1.0 / 1.2 / 0.9; 12 models whose batch norm takes 5-37% of the predicted time and
    runs ``norm_factor`` x its prediction; 3% timing noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for run, level in (("r0", 1.0), ("r1", 1.2), ("r2", 0.9)):
        for i in range(12):
            conv, norm, relu = 0.01 * (1 + i), 0.01 * (1 + i) * (0.05 + 0.05 * i), 0.0005
            measured = level * (conv + norm_factor * norm + relu) * float(np.exp(rng.normal(0, 0.03)))
            rows.append({"run": run, "model": f"m{i}", "measured_s": measured,
                         "by_class_s": {"conv_dense": conv, "normalization": norm, "inplace": relu}})
    return rows


def test_a_class_priced_low_is_found_and_mending_it_helps_held_out_models():
    rows = _rows(2.0)
    runs, groups = ["r0", "r1", "r2"], sorted(set(ctx.GROUPS.values()))
    levels, k = ctx.fit(rows, groups, runs)
    assert k[groups.index("norm")] == pytest.approx(2.0, rel=0.1)
    assert np.exp(levels) == pytest.approx([1.0, 1.2, 0.9], rel=0.1)
    fixed = np.abs(ctx.leave_one_model_out(rows, groups, runs, free=False))
    free = np.abs(ctx.leave_one_model_out(rows, groups, runs, free=True))
    assert np.median(free) < 0.5 * np.median(fixed)


def test_no_effect_gives_multipliers_near_one():
    rows = _rows(1.0, seed=1)
    runs, groups = ["r0", "r1", "r2"], sorted(set(ctx.GROUPS.values()))
    _, k = ctx.fit(rows, groups, runs)
    assert k[groups.index("norm")] == pytest.approx(1.0, abs=0.15)


def _timed(factor) -> list[dict]:
    """9 cases x 9 files, priced 1 s each; measured = the file's level x factor(case, file)."""
    return [{"run": f"r{j}", "model": f"m{i}", "batch": 1, "size": 224, "measured_s": 1.3 ** j * factor(i, j),
             "by_class_s": {"conv_dense": 1.0}} for i in range(9) for j in range(9)]


def test_the_error_splits_into_a_persistent_part_and_the_machine_s_run_to_run_part():
    # the machine only: each case meets every one of nine factors once over the nine files (each file's median is 1)
    moves = [1.1] * 4 + [1.0] + [1 / 1.1] * 4
    d = ctx.persistent_and_spread(_timed(lambda i, j: moves[(i + j) % 9]))
    assert d["cases"] == 9 and d["persistent_sd"] == pytest.approx(0.0, abs=1e-12)
    assert d["run_to_run_only_median_ape"] == pytest.approx(1 - 1 / 1.1) and d["run_to_run_sd"] > 0.08
    # the model only: case m0 is priced 20% high in every file
    d = ctx.persistent_and_spread(_timed(lambda i, j: 1 / 1.2 if i == 0 else 1.0))
    assert d["run_to_run_sd"] == pytest.approx(0.0, abs=1e-12) and d["persistent_sd"] > 0.05
    assert d["persistent_only_median_ape"] == pytest.approx(0.0, abs=1e-12)
