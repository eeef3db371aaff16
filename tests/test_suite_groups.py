"""The suite's scheduling groups (tests/conftest.py) still match the tests they are meant to keep together.

A renamed test or file would not fail anything else: its group would silently dissolve and the suite
would capture each classifier twice again (docs/validation.md, "Test-suite time").
"""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import xdist_group_of


def test_groups_of_ids():
    assert xdist_group_of("tests/test_calibrate.py::test_file_round_trips") == "calibrate"
    assert xdist_group_of("tests/test_torchvision_all.py::test_annotates_and_holds_the_bounds[resnet18]") == "tv-resnet18"
    assert xdist_group_of("tests/test_learned_gpu_sanity.py::test_torchvision_sane[resnet18-1]") == "tv-resnet18"
    assert xdist_group_of("tests/test_learned_gpu_sanity.py::test_torchvision_sane[resnet18-32]") is None
    assert xdist_group_of("tests/test_bounds.py::test_training_bounds_hold[resnet18-1]") is None


def test_groups_match_the_collected_suite(request):
    ids = [item.nodeid for item in request.session.items]
    files = {i.split("::", 1)[0] for i in ids}
    needed = {"tests/test_torchvision_all.py", "tests/test_learned_gpu_sanity.py", "tests/test_calibrate.py"}
    if not needed <= files:
        pytest.skip("runs when the whole suite is collected")
    groups = Counter(xdist_group_of(i) for i in ids)
    tv = {g: n for g, n in groups.items() if g and g.startswith("tv-")}
    # every classifier's test_torchvision_all case; 40+ of them with the learned sweep's batch-1 case too
    assert len(tv) >= 80 and set(tv.values()) <= {1, 2} and sum(n == 2 for n in tv.values()) >= 40
    assert groups["calibrate"] == sum(i.startswith("tests/test_calibrate.py::") for i in ids)
