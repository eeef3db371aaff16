"""Sanity of the learned GPU backend on the A30, A100 80GB PCIe and H100 SXM: each graph is captured once
and predicted on the three devices. No node's power outside [idle, power limit], no duration below its
roofline bound, no zero or non-finite total.

Every one of the 80 torchvision classifiers runs in the suite, each at one batch size (batch 1 and 32
alternate down the list, so both batch sizes are covered by 40 models each), plus the smaller
transformers configs: a capture costs about a second here and the whole suite must stay under ~5
minutes on 2 cores. ``FXENERGY_FULL_SANITY=1`` runs all 80 classifiers at both batch sizes and every
bundled config (the run recorded in docs/validation.md)."""

from __future__ import annotations

import os

import pytest
import torchvision
from conftest import torchvision_analysis
from test_learned_gpu import check_graph

import fxenergy
from fxenergy.hardware import load_profile
from fxenergy.models import build_model, list_models
from fxenergy.perf.model import LearnedGPUModel

DEVICES = ("a30", "a100-80gb-pcie", "h100-sxm")
FULL = os.environ.get("FXENERGY_FULL_SANITY") == "1"
VISION = torchvision.models.list_models(module=torchvision.models)
TEXT = [m.name for m in list_models() if m.family != "torchvision"]
CASES = [(n, b) for n in VISION for b in (1, 32)]
if not FULL:
    CASES = [(n, (1, 32)[i % 2]) for i, n in enumerate(VISION)]
    TEXT = [n for n in TEXT if n in ("gpt2", "bert-base-uncased", "t5-small", "vit-base-patch16-224")]
_MODELS = {d: LearnedGPUModel(load_profile(d)) for d in DEVICES}


def _sweep(built) -> None:  # noqa: ANN001
    r = fxenergy.annotate(built.model, built.args, example_kwargs=built.kwargs)
    for d in DEVICES:
        check_graph(r.graph_module, _MODELS[d])


def test_every_classifier_is_covered():
    assert len(VISION) >= 80 and {n for n, _ in CASES} == set(VISION) and {b for _, b in CASES} == {1, 32}


@pytest.mark.slow
@pytest.mark.parametrize(("name", "batch"), CASES)
def test_torchvision_sane(name, batch):
    if batch == 1:  # the batch-1 analysis test_torchvision_all.py checks too: captured once for both
        for d in DEVICES:
            check_graph(torchvision_analysis(name).graph_module, _MODELS[d])
        return
    _sweep(build_model(name, batch_size=batch))


@pytest.mark.slow
@pytest.mark.parametrize("name", TEXT)
def test_transformers_sane(name):
    _sweep(build_model(name, batch_size=2, seq_len=128))
