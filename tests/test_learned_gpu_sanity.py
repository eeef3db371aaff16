"""Sanity of the learned GPU backend on the A30, A100 80GB PCIe and H100 SXM: each graph is captured once
and predicted on the three devices. No node's power outside [idle, power limit], no duration below its
roofline bound, no zero or non-finite total.

The suite runs every 8th torchvision classifier at batch 1 and 32 and the smaller transformers configs
(the whole suite must stay under ~5 minutes on 2 cores); ``FXENERGY_FULL_SANITY=1`` runs all 80
classifiers x {1, 32} and every bundled config (about 15 CPU-minutes; see docs/validation.md)."""

from __future__ import annotations

import os

import pytest
import torchvision
from test_learned_gpu import check_graph

import fxenergy
from fxenergy.hardware import load_profile
from fxenergy.models import build_model, list_models
from fxenergy.perf.model import LearnedGPUModel

DEVICES = ("a30", "a100-80gb-pcie", "h100-sxm")
FULL = os.environ.get("FXENERGY_FULL_SANITY") == "1"
VISION = torchvision.models.list_models(module=torchvision.models)
TEXT = [m.name for m in list_models() if m.family != "torchvision"]
if not FULL:
    VISION = VISION[::8]
    TEXT = [n for n in TEXT if n in ("gpt2", "bert-base-uncased", "t5-small", "vit-base-patch16-224")]
_MODELS = {d: LearnedGPUModel(load_profile(d)) for d in DEVICES}


def _sweep(built) -> None:  # noqa: ANN001
    r = fxenergy.annotate(built.model, built.args, example_kwargs=built.kwargs)
    for d in DEVICES:
        check_graph(r.graph_module, _MODELS[d])


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 32])
@pytest.mark.parametrize("name", VISION)
def test_torchvision_sane(name, batch):
    _sweep(build_model(name, batch_size=batch))


@pytest.mark.slow
@pytest.mark.parametrize("name", TEXT)
def test_transformers_sane(name):
    _sweep(build_model(name, batch_size=2, seq_len=128))
