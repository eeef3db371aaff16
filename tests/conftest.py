from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import pytest
import torch
import transformers

import fxenergy
from fxenergy.testing import exported, flop_counter, tiny_llama  # noqa: F401 - re-exported for the tests

# FXENERGY_TEST_TIMELINE=FILE: each test's worker, start and end (epoch s) appended to FILE, to see how
# pytest-xdist spreads the suite over its workers (docs/validation.md, "Test-suite time").
_TIMELINE = os.environ.get("FXENERGY_TEST_TIMELINE")
if _TIMELINE:

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):  # noqa: ANN001, ANN201
        t0 = time.time()
        yield
        with open(_TIMELINE, "a") as f:
            f.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}\t{t0:.3f}\t{time.time():.3f}\t{item.nodeid}\n")


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(*shape, dtype=dtype, device="meta")


def macs_by_type(result: fxenergy.Result) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in result.rows:
        out[r.module_type] = out.get(r.module_type, 0) + r.macs
    return out


@contextlib.contextmanager
def no_wait_for_quiet() -> Iterator[None]:
    """Calibration in a test never waits for a busy machine to calm down (``pytest -n 2`` keeps it busy).

    Patches the ``wait_for_quiet`` that the calibration timer itself looks up (the globals of
    ``_Timer.__call__``), wherever that module lives: patching the package's re-export
    (``fxenergy.calibrate.wait_for_quiet``) silently stopped working when calibrate became a package,
    and each tiny test calibration then slept up to its 30 s wait budget.
    """
    from fxenergy.calibrate.timing import _Timer

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(_Timer.__call__.__globals__, "wait_for_quiet", lambda *a, **k: 0.0)
        yield


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
