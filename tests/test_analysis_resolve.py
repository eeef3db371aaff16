"""Analyse once, predict many; the one resolver; the fast model catalogue; inapplicable options warn."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import fxenergy
from fxenergy.analysis import GraphView, analyse, predict
from fxenergy.api import compare_hardware, compare_predictors
from fxenergy.cli import main as cli_main
from fxenergy.errors import UserInputError
from fxenergy.records import DURATION, ENERGY, META_KEY, NodeEnergy, get_record, put_record
from fxenergy.resolve import applicable_predictors, resolve


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


X = torch.randn(8, 64)


def test_analysis_is_immutable_and_hardware_free():
    a = analyse(_mlp(), X)
    predict(a, resolve("a30", "roofline"))
    for node in a.graph_module.graph.nodes:
        assert get_record(node, DURATION) is None and get_record(node, ENERGY) is None
    node = next(n for n in a.graph_module.graph.nodes if META_KEY in n.meta)
    with pytest.raises(TypeError, match="immutable Analysis"):  # the records are frozen: a pass cannot write into the analysis
        put_record(node, ENERGY, NodeEnergy(1.0, "x"))
    assert a.result().totals.energy_j is None


def test_one_analysis_many_predictions_match_annotate():
    a = analyse(_mlp(), X)
    for hw, pred in (("a30", "roofline"), ("a30", "hef"), ("l4", "roofline"), ("xeon-gold-5120", "layerwise")):
        via_analysis = a.result(predict(a, resolve(hw, pred)))
        direct = fxenergy.annotate(_mlp(), X, hardware=hw, predictor=pred)
        assert via_analysis.totals.energy_j == pytest.approx(direct.totals.energy_j, rel=1e-12)
        assert via_analysis.totals.duration_s == pytest.approx(direct.totals.duration_s, rel=1e-12)
        assert via_analysis.totals.energy_j == pytest.approx(sum(r.energy_j for r in via_analysis.rows))


def test_graph_view_writes_stay_in_the_view():
    a = analyse(_mlp(), X)
    view = GraphView(a.graph_module)
    node = next(n for n in view.graph.nodes if get_record(n, DURATION) is None and META_KEY in n._node.meta)
    put_record(node, ENERGY, NodeEnergy(2.0, "test"))
    assert get_record(node, ENERGY).energy_j == 2.0
    assert view.records(ENERGY) == {node.name: NodeEnergy(2.0, "test")}
    assert GraphView(a.graph_module).records(ENERGY) == {}  # another prediction sees nothing


def test_compare_traces_once(monkeypatch):
    import fxenergy.capture as capture_mod

    calls = []

    original = capture_mod.capture

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(capture_mod, "capture", counting)
    rs = compare_hardware(_mlp(), X, hardware=["a30", "h100-sxm", "l4"], predictor="roofline")
    assert list(rs) == ["a30", "h100-sxm", "l4"] and len(calls) == 1
    assert len({r.totals.energy_j for r in rs.values()}) == 3  # three devices, three predictions
    calls.clear()
    by_backend = compare_predictors(_mlp(), X, hardware="a30")
    applicable = set(applicable_predictors(resolve("a30").profile))
    assert len(calls) == 1 and set(by_backend) <= applicable
    # a backend left out refused (layer-wise: batch 8 is outside the A30 data's batch 32) and is named
    for missing in applicable - set(by_backend):
        assert all(any(n.startswith(f"{missing}: not shown") for n in r.info["energy_notes"]) for r in by_backend.values())


def test_comparison_says_a_refused_backend_once():
    from fxenergy.report.table import comparison_data

    by_backend = compare_predictors(_mlp(), X, hardware="a30")
    notes = comparison_data(by_backend).notes
    refused = [n for n in notes if ": not shown:" in n]
    assert refused, "the A30 comparison of this MLP refuses at least one backend"
    assert len(refused) == len(set(refused))  # each refusal once, not once per backend shown
    assert not any(n.startswith(f"{name}: ") for n in refused for name in by_backend)
    own = [n for n in notes if n.startswith("learned: ")]  # a backend's own notes keep its name
    assert own and all(n[len("learned: "):] not in notes for n in own)


def test_foreign_parameter_set_refused_unless_forced():
    with pytest.raises(UserInputError, match="fitted for a100-80gb-pcie, not a30.*--force"):
        resolve("a30", "hef", "hef-seed004-a100")
    s = resolve("a30", "hef", "hef-seed004-a100", force=True)
    assert s.parameter_set == "hef-seed004-a100" and "applied to a30 (--force)" in s.notes[0]
    with pytest.raises(UserInputError, match="fitted for"):
        resolve("a30", "layerwise", "layerwise-xeon-gold-5120")


def test_cli_force_is_noted_in_the_header(capsys):
    assert cli_main(["report", "resnet18", "--hardware", "a30", "--params", "hef-seed004-a100"]) == 2
    assert "--force" in capsys.readouterr().err
    assert cli_main(["report", "resnet18", "--hardware", "a30", "--params", "hef-seed004-a100", "--force",
                     "--format", "markdown"]) == 0
    assert "applied to a30 (--force)" in capsys.readouterr().out


def test_cli_multi_hardware_columns(capsys):
    code = cli_main(["report", "resnet18", "--hardware", "a30,l4", "--predictor", "roofline", "--format", "json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["energy_j"]) == {"a30", "l4"}
    for hw, r in doc["results"].items():
        assert r["info"]["hardware"] == hw
        assert r["totals"]["energy_j"] == pytest.approx(doc["energy_j"][hw])


def test_image_size_on_text_model_warns_one_line(capsys):
    assert cli_main(["report", "gpt2", "--seq-len", "8", "--image-size", "224", "--hardware", "none",
                     "--format", "csv"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--image-size does not apply to gpt2" in err


def test_swin_v2_t_at_224_is_not_refused():
    from fxenergy.models import build_model

    built = build_model("swin_v2_t", image_size=224)
    assert built.args[0].shape == (1, 3, 224, 224)


def test_too_small_image_refused_by_the_trace_with_why():
    # the weights' min_size no longer refuses at build time: what fails to trace is refused, saying why
    from fxenergy.errors import CaptureError
    from fxenergy.models import build_model

    built = build_model("inception_v3", image_size=32)
    with pytest.raises(CaptureError, match="Kernel size can.t be greater than actual input size") as exc:
        fxenergy.annotate(built.model, built.args)
    assert "\n" not in str(exc.value)


def test_model_catalogue_matches_installed_torchvision():
    from fxenergy.models._torchvision import catalogue_entries
    from fxenergy.models.catalog import torchvision_entries

    assert torchvision_entries() == catalogue_entries(), (
        "fxenergy/models/catalogue-torchvision.json is stale: regenerate it from "
        "fxenergy.models._torchvision.catalogue_entries()")


def test_a_model_that_does_not_fit_the_device_is_said_so():
    """1.07 GB of weights fit a P4's 8 GiB for inference; training with AdamW needs 4x (weights, gradients, two
    moments): 4.3 GB still fits, and 2.3 GB of weights (9.2 GB to train) do not."""
    def notes(n: int, mode: str) -> list[str]:
        with torch.device("meta"):
            model = nn.Linear(n, n, bias=False)
        a = analyse(model, torch.empty(2, n, device="meta"), mode=mode)
        return [x for x in predict(a, resolve("p4", "roofline")).notes if "cannot hold" in x]

    assert notes(16384, "inference") == [] and notes(16384, "training") == []
    (note,) = notes(24000, "training")  # 2.304 GB of weights
    assert "9.216 GB" in note and "p4's 8 GiB" in note and "gradients and optimizer state" in note
    assert notes(24000, "inference") == []
