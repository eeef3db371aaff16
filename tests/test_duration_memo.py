"""DurationPass computes one duration per (shared ATen call tuple, cost) and gives it to every node
that has both (a replayed layer's copies): the durations must equal those computed node by node."""

from __future__ import annotations

import pytest
import torch

from fxenergy.analysis import GraphView, analyse
from fxenergy.hardware import load_profile
from fxenergy.passes.durations import DurationPass
from fxenergy.predictors.hef_law import load_hef_parameters
from fxenergy.records import COST, DURATION, TRACE, get_record
from fxenergy.testing import tiny_gpt2


@pytest.mark.parametrize("model", ["roofline", "hef"])
def test_shared_durations_equal_per_node_durations(model):
    a = analyse(tiny_gpt2(4), (torch.randint(0, 1000, (1, 16)),))
    assert a.info["capture_replayed_calls"] > 0  # there are shared call tuples to reuse
    profile = load_profile("a30")
    params = load_hef_parameters("hef-fitted-a30") if model == "hef" else None
    p = DurationPass(profile, model, params)
    view = GraphView(a.graph_module)
    p(view)
    got = view.records(DURATION)
    want = {}
    for n in a.graph_module.graph.nodes:
        tr, cost = get_record(n, TRACE), get_record(n, COST)
        if tr is not None and tr.phase != "input" and not cost.free:
            want[n.name] = p.node_duration(tr, cost)
    assert got == want and len(got) > 50
    shared = len(got) - len({id(d) for d in got.values()})
    assert shared > 0  # some nodes did get a duration computed once for several
