"""One conformance suite for every registered backend that can fit (sklearn ``estimator_checks`` style)."""

from __future__ import annotations

import json
import math

import pytest

import fxenergy.predictors.cache  # noqa: F401 - registers "cache"
import fxenergy.predictors.layerwise  # noqa: F401 - registers "layerwise"
from fxenergy.errors import UserInputError
from fxenergy.predictors.interface import NotFittedError, fittable_backends

BACKENDS = sorted(fittable_backends())


def test_ours_are_registered():
    assert {"cache", "layerwise"} <= set(BACKENDS)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    cls = fittable_backends()[request.param]
    data, gm, profile = cls.conformance_example()
    return cls, data, gm, profile


def _energies(est):
    return [est.overhead_j, *est.node_energy_j.values()]


def test_unfitted_raises(backend):
    cls, data, gm, profile = backend
    with pytest.raises(NotFittedError):
        cls().predict(gm, profile)
    with pytest.raises(NotFittedError):
        cls().to_json()


def test_fit_returns_self_and_is_idempotent(backend):
    cls, data, gm, profile = backend
    p = cls()
    assert p.fit(data) is p
    first = p.predict(gm, profile)
    second = p.fit(data).predict(gm, profile)
    assert dict(first.node_energy_j) == pytest.approx(dict(second.node_energy_j))
    assert first.overhead_j == pytest.approx(second.overhead_j)


def test_json_round_trip_keeps_predictions(backend):
    cls, data, gm, profile = backend
    p = cls().fit(data)
    doc = json.loads(json.dumps(p.to_json()))
    assert {"backend", "schema", "fxenergy_version", "hardware", "params", "fitted_on"} <= set(doc)
    q = cls.from_json(doc)
    assert dict(q.predict(gm, profile).node_energy_j) == pytest.approx(dict(p.predict(gm, profile).node_energy_j), rel=1e-12)
    with pytest.raises(UserInputError):
        cls.from_json({**doc, "schema": "unknown/0"})


def test_predictions_finite_non_negative(backend):
    cls, data, gm, profile = backend
    est = cls().fit(data).predict(gm, profile)
    assert est.node_energy_j
    assert all(math.isfinite(e) and e >= 0 for e in _energies(est))


def test_entry_point_backend_loads_and_distributions_are_read_once(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """A third-party backend declared in an installed distribution's entry points is registered; the
    distributions are read once per process (resolving backends asks ~15 times per report)."""
    from importlib import metadata

    from fxenergy.predictors import PREDICTORS
    from fxenergy.predictors import interface as itf

    (tmp_path / "fxe_plugin_mod.py").write_text("class Backend:\n    requires = ()\n")
    info = tmp_path / "fxe_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fxe-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{itf.ENTRY_POINT_GROUP}]\nfxe-test-plugin = fxe_plugin_mod:Backend\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    itf._group_entry_points.cache_clear()
    try:
        assert itf.load_entry_point_predictors() == ["fxe-test-plugin"]
        assert PREDICTORS["fxe-test-plugin"].__name__ == "Backend"

        def no_rescan(**_: object) -> None:
            raise AssertionError("installed distributions read again")

        monkeypatch.setattr(metadata, "entry_points", no_rescan)
        assert itf.load_entry_point_predictors() == []  # read once; already registered
    finally:
        PREDICTORS.pop("fxe-test-plugin", None)
        itf._LOADED_ENTRY_POINTS.discard("fxe-test-plugin")
        itf._group_entry_points.cache_clear()
