"""Seed 000 layer-wise predictor: features from the graph, JSON round trip, unmodeled notes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fxenergy.capture import capture
from fxenergy.errors import UserInputError
from fxenergy.predictors.interface import NotFittedError, load_artifact
from fxenergy.predictors.layerwise import CANDIDATES, LayerwisePredictor, fit_candidate, layer_of_node, seed000_macs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cpu-layers-getzner"


def test_features_from_graph():
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                            torch.nn.Flatten(), torch.nn.Linear(128, 10))
    gm = capture(m, torch.randn(2, 3, 16, 16)).graph_module
    got = {n.name: layer_of_node(n) for n in gm.graph.nodes if n.op == "call_module"}
    conv = got["_0"][1]
    assert got["_0"][0] == "Conv2d" and conv["kernel_size"] == 3 and conv["stride"] == 2 and conv["padding"] == 1
    # seed 000 Table 3: k²·Hout·Wout·cin·cout·B + bias (cout·Hout·Wout·B) = 9*8*8*3*8*2 + 8*8*8*2 = 27648 + 1024
    assert conv["macs"] == 27648 + 1024
    assert got["_2"] == ("MaxPool2d", {"batch_size": 2, "image_size": 8, "kernel_size": 2, "in_channels": 8,
                                      "stride": 2, "padding": 0, "macs": 4 * 4 * 4 * 8 * 2 / 2})
    assert got["_4"][1]["macs"] == 2 * 128 * 10 + 2 * 10  # B·in·out + B·out


def test_vgg11_conv_macs_table3():
    import torchvision
    gm = capture(torchvision.models.vgg11(), torch.randn(1, 3, 224, 224)).graph_module
    convs = [layer_of_node(n)[1]["macs"] for n in gm.graph.nodes if n.op == "call_module" and layer_of_node(n)
             and layer_of_node(n)[0] == "Conv2d"]
    assert sum(convs) == 7492882432  # seed 000 Table 3, VGG11, B = 1


@pytest.mark.skipif(not DATA.exists(), reason="../shared/data not present")
def test_macs_match_getzner_data():
    import csv
    with open(DATA / "conv2d.csv") as fh:
        for r in list(csv.DictReader(fh))[:50]:
            f = {k: float(r[k]) for k in ("batch_size", "image_size", "kernel_size", "in_channels", "out_channels",
                                          "stride", "padding")}
            assert seed000_macs("Conv2d", f) == pytest.approx(float(r["macs"]), rel=1e-12)


@pytest.mark.parametrize("cand", CANDIDATES, ids=lambda c: c.name)
def test_json_chain_matches_sklearn(cand):
    rng = np.random.default_rng(1)
    X = rng.integers(1, 100, size=(60, 3)).astype(float)
    y = 1e-6 * X.prod(axis=1) + 1e-3
    names = ("macs",) if cand.features == "macs" else ("a", "b", "macs")
    Xs = X[:, -1:] if cand.features == "macs" else X
    reg, sk = fit_candidate(cand, names, Xs, y)
    expected = sk.predict(Xs)
    if cand.target == "minmax":
        expected = np.maximum(expected, 0)
    np.testing.assert_allclose(reg.predict(Xs), expected, rtol=1e-9)
    back = type(reg).from_dict(json.loads(json.dumps(reg.to_dict())))
    np.testing.assert_array_equal(back.predict(Xs), reg.predict(Xs))


def test_shipped_artifacts_and_unmodeled_note():
    p = LayerwisePredictor.from_json(load_artifact("layerwise", "layerwise-xeon-gold-5120"))
    # sizes inside the fitted domain: Sigmoid MACs 192 x 4096 = 7.9e5 >= the data's smallest (6.8e5)
    m = torch.nn.Sequential(torch.nn.Linear(9216, 4096), torch.nn.Sigmoid(), torch.nn.LayerNorm(4096),
                            torch.nn.Linear(4096, 8))
    e = p.predict(capture(m, torch.randn(192, 9216, device="meta")).graph_module, None)
    assert e.node_energy_j["_0"] > 0 and e.node_energy_j["_1"] > 0 and e.node_energy_j["_2"] == 0
    assert any("LayerNorm" in n for n in e.notes)
    for name in ("layerwise-a30", "layerwise-rtx-2080-ti"):
        assert {"Conv2d", "BatchNorm2d", "ReLU", "Linear"} <= set(LayerwisePredictor.from_json(
            load_artifact("layerwise", name)).regressors_)


def test_schema_refused_and_unfitted():
    doc = load_artifact("layerwise", "layerwise-a30")
    with pytest.raises(UserInputError, match="schema"):
        LayerwisePredictor.from_json({**doc, "schema": "fxenergy.predictor/99"})
    with pytest.raises(NotFittedError):
        LayerwisePredictor().predict_layer("Linear", {"batch_size": 1, "input_size": 2, "output_size": 3})


def test_out_of_domain_refused_with_the_layer_named():
    from fxenergy.predictors.layerwise import OutOfDomainError

    p = LayerwisePredictor.from_json(load_artifact("layerwise", "layerwise-xeon-gold-5120"))
    m = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Sigmoid())  # 16 x 64 x 32 MACs: far below the data
    with pytest.raises(OutOfDomainError, match=r"_0 \(Linear macs"):
        p.predict(capture(m, torch.randn(16, 64, device="meta")).graph_module, None)


def test_training_refused_and_cpu_falls_back_to_physical():
    import torchvision

    import fxenergy

    x = torch.randn(2, 3, 224, 224, device="meta")
    # issue 12: resnet18 training at batch 2 on an A30 was 418 J; now a clear refusal
    with pytest.raises(UserInputError, match="layerwise refuses training mode"):
        fxenergy.annotate(torchvision.models.resnet18(), x, hardware="a30", predictor="layerwise", mode="training")
    # inference far outside the Xeon data (batch 1 AlexNet-sized layers are in range, a tiny MLP is not)
    r = fxenergy.annotate(torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU()), torch.randn(4, 64),
                          hardware="xeon-gold-5120", predictor="layerwise")
    assert r.info["predictor"] == "physical"
    assert any("layerwise refused" in n for n in r.info["energy_notes"])
    assert r.totals.energy_j > 0
