"""Every torchvision classification model annotates, with no unmodeled op; and on that one analysis (batch
1, the model's default size) every backend holds its physical bounds (tests/test_bounds.py, issue 12)."""

from __future__ import annotations

import pytest
import torchvision
from test_bounds import check_every_backend

from fxenergy.analysis import analyse
from fxenergy.models import build_model

NAMES = torchvision.models.list_models(module=torchvision.models)


def test_there_are_many():
    assert len(NAMES) >= 80


@pytest.mark.parametrize("name", NAMES)
def test_annotates_and_holds_the_bounds(name):
    b = build_model(name)
    a = analyse(b.model, b.args, name=name)  # what fxenergy.annotate does first: captured once
    r = a.result()
    assert r.info["capture_method"] == "symbolic_trace"
    assert r.totals.macs > 0
    assert r.unmodeled == []
    assert check_every_backend(a) == []
