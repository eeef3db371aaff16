"""Result invariants (totals = sum of rows, every grouping) and the renderers."""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import fields

import pytest
import torch
import torchvision
from conftest import meta

import fxenergy
from fxenergy.report import render, table_data, to_csv
from fxenergy.result import GROUP_BY, SCHEMA_VERSION, Totals

SUMMED = ("macs", "flops", "elementwise_flops", "bytes_read", "bytes_written", "param_bytes_read")


@pytest.fixture(scope="module")
def resnet_training():
    with torch.device("meta"):
        m = torchvision.models.resnet18()
    return fxenergy.annotate(m, meta(2, 3, 64, 64), mode="training", name="resnet18")


@pytest.fixture(scope="module")
def mobilenet():
    with torch.device("meta"):
        m = torchvision.models.mobilenet_v2()
    return fxenergy.annotate(m, meta(1, 3, 224, 224), name="mobilenet_v2")


def test_totals_are_row_sums(resnet_training):
    r = resnet_training
    for k in SUMMED:
        assert getattr(r.totals, k) == sum(getattr(row, k) for row in r.rows)
    assert r.totals.nodes == len(r.rows)


@pytest.mark.parametrize("by", GROUP_BY)
def test_every_grouping_sums_to_totals(resnet_training, by):
    groups = resnet_training.group(by, depth=2 if by == "module" else None)
    for k in SUMMED:
        assert sum(getattr(g.totals, k) for g in groups) == getattr(resnet_training.totals, k)


def test_training_groups_separate_phases(resnet_training):
    keys = [g.key for g in resnet_training.group("layer")]
    assert "conv1" in keys and "conv1 [backward]" in keys and "conv1 [optimizer]" in keys
    assert {g.key for g in resnet_training.group("phase")} == {"forward", "backward", "optimizer"}


@pytest.mark.parametrize("top", [None, 5])
def test_csv_rows_sum_to_printed_total(mobilenet, top):
    td = table_data(mobilenet, "layer", top=top)
    rows = list(csv.DictReader(io.StringIO(to_csv(td))))
    total = rows.pop()
    assert total["key"] == "Total"
    if top:
        assert len(rows) == top + 1 and rows[-1]["key"].endswith("others)")
    for col in ("macs", "flops", "elementwise_flops", "bytes_moved"):
        assert sum(int(x[col]) for x in rows) == int(total[col]) == getattr(mobilenet.totals, col)
    assert abs(sum(float(x["flops_share"]) for x in rows) - 1) < 1e-9


def test_json_schema(mobilenet):
    d = json.loads(render(mobilenet, "json", by="module", depth=1))
    assert d["schema"] == SCHEMA_VERSION
    assert d["totals"]["macs"] == mobilenet.totals.macs
    assert set(d["totals"]) == {f.name for f in fields(Totals)}
    assert len(d["rows"]) == len(mobilenet.rows)
    assert sum(g["macs"] for g in d["groups"]["items"]) == mobilenet.totals.macs
    assert d["info"]["model"] == "mobilenet_v2" and d["working_sets"]["forward_bytes"] > 0


def test_table_and_markdown_render(mobilenet):
    text = render(mobilenet, "table", by="module", depth=1)
    assert "features" in text and "Total" in text and "working sets" in text
    md = render(mobilenet, "markdown", by="op")
    assert "| **Total** |" in md and "convolution" in md


def test_working_sets_seed003():
    # MLP 100 -> 50 -> 10, batch 4, fp32: the sets of seed 003 section 6 by hand
    m = torch.nn.Sequential(torch.nn.Linear(100, 50), torch.nn.ReLU(), torch.nn.Linear(50, 10))
    r = fxenergy.annotate(m, torch.randn(4, 100))
    params = (100 * 50 + 50 + 50 * 10 + 10) * 4
    ws = r.working_sets
    assert ws.forward_bytes == params
    # b: params + grads + one value per unit per datum (4 * (50 + 50 + 10) outputs of the three layers)
    assert ws.backward_bytes == 2 * params + 4 * (50 + 50 + 10) * 4
    # largest t_l: the first linear, 4*100 inputs + 4*50 outputs
    assert ws.inter_layer_max_bytes == (4 * 100 + 4 * 50) * 4
    assert ws.batch_bytes == (4 * 100 + 4 * 10) * 4


def test_unmodeled_shows_in_report():
    class KthValue(torch.nn.Module):
        def forward(self, x):
            return torch.kthvalue(x, 2).values

    text = render(fxenergy.annotate(KthValue(), meta(3, 9)), "table")
    assert "unmodeled op kthvalue" in text and "unknown, not zero" in text


def test_predictor_and_hardware_options_validated():
    m, x = torch.nn.Linear(2, 2), torch.randn(1, 2)
    with pytest.raises(fxenergy.UserInputError, match="predictor"):
        fxenergy.annotate(m, x, predictor="oracle")
    with pytest.raises(fxenergy.UserInputError, match="hardware"):
        fxenergy.annotate(m, x, hardware="toaster-9000")
    assert fxenergy.annotate(m, x, hardware="a100-80gb-pcie").info["hardware"] == "a100-80gb-pcie"


def test_summary_states_the_backends_validated_error():
    """The learned GPU backend ships a validated error per device: the summary shows it as a range around the
    figures and says what it rests on; a backend that ships none (roofline) shows no such line."""
    from fxenergy.perf.validated import expected_error
    from fxenergy.report.table import summary_lines

    m = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.GELU(), torch.nn.Linear(512, 256))
    x = torch.randn(8, 256)
    r = fxenergy.annotate(m, x, hardware="a30", predictor="learned")
    pct, basis = expected_error("a30")
    assert r.info["expected_error"] == {"pct": pct, "quantity": "time", "basis": basis}
    lines = dict(summary_lines(r))
    lo, hi = r.totals.energy_j * (1 - pct / 100), r.totals.energy_j * (1 + pct / 100)
    from fxenergy.report.table import human

    assert lines["expected error"].startswith(f"±{pct:.0f}% ({human(lo, 'joules')} … {human(hi, 'joules')}")
    assert basis in lines["expected error"] and "time error" in lines["expected error"]
    assert "expected error" not in dict(summary_lines(fxenergy.annotate(m, x, hardware="a30", predictor="roofline")))


def test_uncalibrated_cpu_states_its_spec_sheet_time_error(monkeypatch):
    """`report --hardware local` on a CPU that hides its TDP (a VM) gives a figure, with the spec-sheet time error
    of the shipped CPU latency run and a note that energy rests on a guessed TDP; a profile whose fitted set
    carries its own energy validation (xeon-gold-5120) keeps that instead."""
    from fxenergy.hardware import detect_local
    from fxenergy.perf.validated import CPU_LATENCY_FILE
    from fxenergy.report.table import summary_lines

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    shipped = json.loads(CPU_LATENCY_FILE.read_text())
    m, x = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU()), torch.randn(8, 256)
    r = fxenergy.annotate(m, x, hardware=detect_local("cpu"), predictor="physical")
    exp = r.info["expected_error"]
    # the band is the typical judged run's: the median of the runs' spec-sheet medians (perf.validated.TYPICAL_MIN_RUNS)
    runs = [r["spec_sheet_median_pct"] for r in shipped.get("calibrated_runs", []) if "spec_sheet_median_pct" in r]
    typical = round(statistics.median(runs), 1) if len(runs) >= 3 else shipped["spec_sheet"]["median_pct"]
    assert exp["quantity"] == "time" and exp["pct"] == typical
    assert "uncalibrated" in exp["basis"] and "energy not validated" in exp["energy"]
    assert r.totals.energy_j > 0 and "energy not validated" in dict(summary_lines(r))["expected error"]
    xeon = fxenergy.annotate(m, x, hardware="xeon-gold-5120", predictor="physical").info["expected_error"]
    assert xeon["quantity"] == "energy" and "leave-one-architecture-out" in xeon["basis"]


def test_result_energy_and_duration_are_the_totals():
    r = fxenergy.annotate(torch.nn.Linear(64, 64), meta(8, 64), hardware="a30", predictor="roofline")
    assert r.energy_j == r.totals.energy_j == sum(x.energy_j for x in r.rows) and r.energy_j > 0
    assert r.duration_s == r.totals.duration_s > 0
    assert fxenergy.annotate(torch.nn.Linear(64, 64), meta(8, 64), predictor="none").energy_j is None
