"""The CPU latency benchmark keeps a history of its judged runs in the shipped file, and the stated CPU error says how
those runs spread (issue 12: a stated error is one run's figure, and on a VM whose speed moves between a calibration
and later runs, one run's median is one draw)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from fxenergy.perf import validated


def _summary(median: float, spec_median: float) -> dict:
    row = {"median_ape": median, "mean_ape": median + 0.01, "worst_ape": 3 * median, "spearman": 0.97}
    return {"physical": row, "hef": row, "spec": row | {"median_ape": spec_median}, "baseline": row}


def _run_json(path: Path, median: float, spec_median: float, level: float) -> Path:
    # median measured / predicted = level
    cases = [{"physical_s": p, "measured_s": level * p * f} for p, f in ((0.5, 0.9), (1.0, 1.0), (2.0, 1.1))]
    path.write_text(json.dumps({"cases": cases, "summary": _summary(median, spec_median)}))
    return path


@pytest.fixture
def cl(tmp_path, monkeypatch):
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import cpu_latency

    shipped = tmp_path / "cpu-latency-validated.json"
    shipped.write_text(json.dumps({"schema": 1, "measured_on": "a CPU", "date": "2026-12-01", "cases": 3, "models": 3,
                                   "calibrated": {"median_pct": 11.5, "mean_pct": 12.4, "worst_pct": 39.1, "spearman": 0.976},
                                   "spec_sheet": {"median_pct": 44.8, "mean_pct": 43.4, "worst_pct": 86.4, "spearman": 0.967}}))
    monkeypatch.setattr(cpu_latency, "CPU_LATENCY_FILE", shipped)
    monkeypatch.setattr(validated, "CPU_LATENCY_FILE", shipped)
    validated._cpu_latency.cache_clear()
    yield cpu_latency
    validated._cpu_latency.cache_clear()


def test_one_run_states_no_spread(cl):
    basis = validated.cpu_latency_error("calibrated", "x")["basis"]
    assert "median APE 11.5%" in basis and "judged runs" not in basis


def test_recorded_runs_give_the_spread_of_medians_and_levels(cl, tmp_path):
    a = _run_json(tmp_path / "a.json", 0.114, 0.28, 1.054)
    b = _run_json(tmp_path / "b.json", 0.267, 0.19, 1.365)
    c = _run_json(tmp_path / "c.json", 0.115, 0.45, 0.926)
    cl.record_runs([a, b, c])
    cl.record_runs([b])  # the same file again replaces its entry, at the end
    runs = json.loads(cl.CPU_LATENCY_FILE.read_text())["calibrated_runs"]
    assert [r["json"] for r in runs] == [str(a), str(c), str(b)]
    assert [r["median_pct"] for r in runs] == [11.4, 11.5, 26.7] and runs[2]["level"] == pytest.approx(1.365)
    validated._cpu_latency.cache_clear()
    cal = validated.cpu_latency_error("calibrated", "x")
    # three runs: the band is the median of their medians (11.4, 11.5, 26.7), not the last run's 11.5 or the file's
    assert cal["pct"] == 11.5 and "the median of 3 judged runs' median APEs, 11.5%" in cal["basis"]
    assert "over 3 judged runs" in cal["basis"] and "ranged 11.4-26.7%" in cal["basis"]
    assert "x0.93-x1.36" in cal["basis"]
    spec = validated.cpu_latency_error("spec_sheet", "x")["basis"]
    assert "ranged 19-45%" in spec and "level" not in spec


def test_write_validated_appends_this_run_and_keeps_the_history(cl, tmp_path):
    cl.record_runs([_run_json(tmp_path / "old.json", 0.20, 0.30, 1.2)])
    s = _summary(0.09, 0.25)
    run = cl.run_entry(s, {"level": 0.95}, "/tmp/new.json")
    cl.write_validated(s, [SimpleNamespace(model=m) for m in "abc"], "mode", argv=["--write-validated"], run=run)
    data = json.loads(cl.CPU_LATENCY_FILE.read_text())
    assert data["calibrated"]["median_pct"] == 9.0
    assert [r["json"] for r in data["calibrated_runs"]] == [str(tmp_path / "old.json"), "/tmp/new.json"]
    assert data["calibrated_runs"][-1] | {"date": None} == {
        "date": None, "json": "/tmp/new.json", "median_pct": 9.0, "mean_pct": 10.0, "worst_pct": 27.0,
        "spearman": 0.97, "level": 0.95, "spec_sheet_median_pct": 25.0}


def test_the_band_is_the_typical_run_not_the_last(cl, tmp_path):
    # two runs state the last one's figure; from three on, the median of the runs' medians
    runs = [_run_json(tmp_path / f"{i}.json", m, 0.3 + i / 100, 1.1) for i, m in enumerate((0.20, 0.10))]
    cl.record_runs(runs)
    validated._cpu_latency.cache_clear()
    assert validated.cpu_latency_error("calibrated", "x")["pct"] == 11.5  # the file's last --write-validated figure
    cl.record_runs([_run_json(tmp_path / "2.json", 0.17, 0.33, 1.2)])
    validated._cpu_latency.cache_clear()
    cal = validated.cpu_latency_error("calibrated", "x")
    assert cal["pct"] == 17.0 and "the last run's: median APE 11.5%" in cal["basis"]
    assert validated.cpu_latency_error("spec_sheet", "x")["pct"] == 31.0
