"""Any model a user builds: 20 transformers architectures from their DEFAULT configs (issue 10).

Each is built the way a user would (``ModelClass(ConfigClass())``, cache on, ModelOutput returned) on
the meta device, with a short sequence, and must annotate: every parameter read on the traced path
(no silently missing branch) and MACs at least those of its largest projection. An architecture
that cannot be captured must fail with one line that says why and what to do; none does today.
"""

from __future__ import annotations

import pytest
import torch
from hf_archs import ARCHS, SEQ, build

import fxenergy
from fxenergy.errors import FxEnergyError

pytestmark = pytest.mark.slow  # default configs are full size: a few seconds each on 2 cores


@pytest.mark.parametrize("arch,model_cls,config_cls,task", ARCHS, ids=[a[0] for a in ARCHS])
def test_default_config_annotates(arch, model_cls, config_cls, task):
    model, kwargs = build(model_cls, config_cls, task)
    assert getattr(model.config, "use_cache", False) in (True, False)  # the user's config is left alone
    cache_before = getattr(model.config, "use_cache", None)
    try:
        result = fxenergy.annotate(model, (), example_kwargs=kwargs)
    except FxEnergyError as e:  # allowed only as one actionable line
        msg = str(e)
        assert "\n" not in msg and any(w in msg for w in ("use ", "pass ", "build ", "check ")), msg
        pytest.fail(f"{arch} did not annotate: {msg}")
    assert getattr(model.config, "use_cache", None) == cache_before
    assert result.totals.macs > 0 and result.totals.bytes_moved > 0
    assert not result.info["analysis_notes"], result.info["analysis_notes"]
    # the largest 2-D weight is multiplied by at least one token (or patch) per sequence
    largest = max((p for p in model.parameters() if p.dim() == 2), key=lambda p: p.numel())
    if "embed" not in _name_of(model, largest) and task != "vision":
        assert result.totals.macs >= largest.numel(), (result.totals.macs, largest.shape)


def _name_of(model: torch.nn.Module, p: torch.nn.Parameter) -> str:
    return next(n for n, q in model.named_parameters() if q is p)


def test_seq_is_short():
    assert SEQ <= 16
