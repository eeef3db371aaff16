"""Every torchvision classification model annotates, with no unmodeled op."""

from __future__ import annotations

import pytest
import torchvision

import fxenergy
from fxenergy.models import build_model

NAMES = torchvision.models.list_models(module=torchvision.models)


def test_there_are_many():
    assert len(NAMES) >= 80


@pytest.mark.parametrize("name", NAMES)
def test_annotates(name):
    b = build_model(name)
    r = fxenergy.annotate(b.model, b.args, name=name)
    assert r.info["capture_method"] == "symbolic_trace"
    assert r.totals.macs > 0
    assert r.unmodeled == []
