"""Every torchvision classification model annotates, with no unmodeled op; and on that one analysis (batch
1, the model's default size) every backend holds its physical bounds (tests/test_bounds.py, issue 12)."""

from __future__ import annotations

import pytest
import torchvision
from conftest import torchvision_analysis
from test_bounds import check_every_backend

NAMES = torchvision.models.list_models(module=torchvision.models)


def test_there_are_many():
    assert len(NAMES) >= 80


@pytest.mark.parametrize("name", NAMES)
def test_annotates_and_holds_the_bounds(name):
    a = torchvision_analysis(name)  # what fxenergy.annotate does first: captured once (shared, conftest.py)
    r = a.result()
    assert r.info["capture_method"] == "symbolic_trace"
    assert r.totals.macs > 0
    assert r.unmodeled == []
    assert check_every_backend(a) == []
