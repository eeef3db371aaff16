from __future__ import annotations

import pytest
import torch
import transformers

import fxenergy
from fxenergy.testing import exported, flop_counter, tiny_llama  # noqa: F401 - re-exported for the tests


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(*shape, dtype=dtype, device="meta")


def macs_by_type(result: fxenergy.Result) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in result.rows:
        out[r.module_type] = out.get(r.module_type, 0) + r.macs
    return out


@pytest.fixture(scope="session")
def gpt2_small() -> transformers.PreTrainedModel:
    cfg = transformers.GPT2Config(n_layer=2, use_cache=False)
    with torch.device("meta"):
        return transformers.GPT2LMHeadModel._from_config(cfg, attn_implementation="sdpa").eval()


class ScriptedMeter:
    """A meter of fxenergy.measure's interface giving scripted per-window joules; an exception
    instance in the script is raised by end() (a failed window)."""

    name, domains, measures_energy = "fake", ("pkg",), True

    def __init__(self, script):
        self.script = list(script)

    def begin(self):
        pass

    def poll(self):
        pass

    def end(self):
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return {"pkg": item}

    def close(self):
        pass
