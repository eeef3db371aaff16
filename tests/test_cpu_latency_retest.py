"""The test-retest floor of the judged CPU latency benchmark (benchmarks/cpu_latency_retest.py, issue 12): an oracle
that knows the other runs' times of the same cases, scored like the model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import cpu_latency_retest as rt  # noqa: E402

CASES = [("a", 1, 224), ("b", 4, 224), ("c", 16, None), ("d", 1, 64)]


def _runs(*per_run: list[float]) -> dict:
    return {f"r{i}": dict(zip(CASES, times)) for i, times in enumerate(per_run)}


def test_a_machine_that_repeats_itself_up_to_its_speed_leaves_no_floor():
    base = [0.01, 0.04, 0.2, 0.005]
    rows = rt.oracle_floor(_runs(base, [2 * t for t in base], [0.5 * t for t in base]))
    # r0's oracle is the geometric mean of 2x and 0.5x, i.e. r0 itself
    assert rows[0]["median_ape"] == pytest.approx(0.0, abs=1e-12) and rows[0]["spearman"] == pytest.approx(1.0)
    # r1 (2x) against the geometric mean of 1x and 0.5x: off by 1 - 2^-1.5 raw, exact with the level removed
    assert rows[1]["median_ape"] == pytest.approx(1 - 2 ** -1.5)
    assert rows[1]["level_removed_worst_ape"] == pytest.approx(0.0, abs=1e-12)
    assert rows[1]["level_removed_level"] == pytest.approx(2 ** 1.5)


def test_one_case_that_moves_is_the_floor_s_worst():
    base = [0.01, 0.04, 0.2, 0.005]
    moved = [0.01, 0.04, 0.3, 0.005]  # case c 1.5x slower in this run only
    rows = rt.oracle_floor(_runs(base, base, moved))
    assert rows[2]["worst_ape"] == pytest.approx(1 / 3) and rows[2]["median_ape"] == pytest.approx(0.0, abs=1e-12)
    # the oracle of r0 averages a run where c was slow: sqrt(1.5) x 0.2 against 0.2
    assert rows[0]["worst_ape"] == pytest.approx(1.5 ** 0.5 - 1)


def test_it_needs_two_runs_of_the_same_cases():
    with pytest.raises(ValueError, match="at least two runs"):
        rt.oracle_floor(_runs([0.1, 0.2, 0.3, 0.4]))
    with pytest.raises(ValueError, match="share 0 cases"):
        rt.oracle_floor({"x": {("a", 1, 1): 1.0}, "y": {("b", 1, 1): 1.0}})
    run = {"cases": [{"model": "a", "batch": 1, "size": 224, "measured_s": 0.5}]}
    assert rt.measured_by_case(run) == {("a", 1, 224): 0.5}
    assert rt.measured_by_case([["a", 1, 224, 0.25, 0.0, {}]]) == {("a", 1, 224): 0.25}  # development timings


def test_the_calibrations_level_against_the_typical_time():
    # two judged runs, the second 10% slower, each predicting every case at t0 / 1.2 (t0: the first run's time);
    # a run's figure is its predictions against the OTHER runs' times: r0 against r1 (1.1 x 1.2), r1 against r0 (1.2)
    runs = _runs([0.01, 0.04, 0.2, 0.005], [0.011, 0.044, 0.22, 0.0055])
    docs = {name: {"cases": [{"model": m, "batch": b, "size": s, "physical_s": t / 1.2 if name == "r0" else t / 1.1 / 1.2}
                             for (m, b, s), t in r.items()]} for name, r in runs.items()}
    got = rt.below_typical(runs, docs, rt.oracle_floor(runs))
    assert got["per_run"] == pytest.approx([1.32, 1.2]) and got["below"] == 4 and got["cases"] == 4
    assert got["median_ratio"] == pytest.approx(1.2 * 1.1 ** 0.5)  # typical = geometric mean of the two runs
    assert rt.below_typical(runs, {"r0": [], "r1": []}, []) is None  # development timings carry no predictions
