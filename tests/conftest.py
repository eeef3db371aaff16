from __future__ import annotations

import contextlib
import functools
import os
import re
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


# Tests that share work must run on one worker, one after the other: the scheduler below hands each
# group to one worker as a unit, and everything else one test at a time, largest groups first.
_SHARED_FIXTURE_FILES = {"tests/test_calibrate.py": "calibrate",  # its module-scoped tiny calibration (~10 s)
                         "tests/test_cache_fit_data.py": "cache-fit"}  # reads the del Rey data once (~16 s)
_TORCHVISION_BATCH1 = re.compile(r"tests/test_torchvision_all\.py::test_annotates_and_holds_the_bounds\[(\w+)\]"
                                 r"|tests/test_learned_gpu_sanity\.py::test_torchvision_sane\[(\w+)-1\]")


def xdist_group_of(nodeid: str) -> str | None:
    """The group of a test id, or None: a file with a costly module fixture, or a torchvision classifier's
    batch-1 tests, which share :func:`torchvision_analysis`."""
    path = nodeid.split("::", 1)[0]
    if path in _SHARED_FIXTURE_FILES:
        return _SHARED_FIXTURE_FILES[path]
    m = _TORCHVISION_BATCH1.fullmatch(nodeid)
    return f"tv-{m.group(1) or m.group(2)}" if m else None


def pytest_xdist_make_scheduler(config, log):  # noqa: ANN001, ANN201
    """``-n 2`` (pyproject.toml) with the default ``--dist load``: schedule by :func:`xdist_group_of`.

    This is what ``--dist loadgroup`` with ``xdist_group`` marks would do, but that is silently inert with
    pytest 9 and pytest-xdist 3.8 (the group travels as a nodeid suffix that pytest 9 no longer lets it
    set: pytest-xdist issue #1386), so the groups are read from the test ids here. Other ``--dist``
    modes are left to pytest-xdist.
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid) or nodeid

    return GroupScheduling(config, log)


@pytest.fixture(autouse=True)
def _own_analysis_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets an empty analysis cache of its own (``fxenergy report`` reads and writes
    ``$FXENERGY_CACHE_DIR``; subprocesses inherit it): no test reads another's, or the user's, cache."""
    monkeypatch.setenv("FXENERGY_CACHE_DIR", str(tmp_path_factory.mktemp("fxenergy-cache")))


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


@functools.lru_cache(maxsize=2)
def torchvision_analysis(name: str):  # noqa: ANN201 - an fxenergy.analysis.Analysis
    """The analysis of torchvision classifier ``name`` at batch 1 and its default image size (built on
    meta), as ``fxenergy.annotate`` makes it first. Analyses are immutable (predictions read them through
    a GraphView), so the tests of one :func:`xdist_group_of` group capture each classifier once; the
    cache keeps the last two, which is all that a group's consecutive tests need."""
    from fxenergy.analysis import analyse
    from fxenergy.models import build_model

    b = build_model(name)
    return analyse(b.model, b.args, example_kwargs=b.kwargs, name=name)


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
