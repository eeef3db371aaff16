"""The persistent analysis cache of ``fxenergy report`` (:mod:`fxenergy.cache`).

A report read from the cache is byte-identical to the one computed (every backend, one device and
several), a changed key misses, a corrupt, foreign or other-owner file is ignored and replaced,
``--no-cache`` neither reads nor writes, and user models and the Python API are never cached.
Every test has an empty cache directory of its own (``tests/conftest.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import fxenergy
import fxenergy.analysis
import fxenergy.models
from fxenergy import cache
from fxenergy.cli import main

RESNET = ["resnet18", "--image-size", "32"]  # symbolic_trace: a root module with submodules
GPT2 = ["gpt2", "--seq-len", "16"]  # record: a dict root of get_attr tensors, tied weights
EFFNET = ["efficientnet_b0", "--image-size", "32"]  # a torchvision function target (stochastic_depth)


def _report(tmp_path: Path, model: list[str], *options: str, name: str = "r.json") -> str:
    out = tmp_path / name
    assert main(["report", *model, *options, "--format", "json", "-o", str(out)]) == 0
    return out.read_text()


def _no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, building or analysing a model fails the test: the report must come from the cache."""

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was built or analysed although its analysis is cached")

    monkeypatch.setattr(fxenergy.models, "build_model", boom)
    monkeypatch.setattr(fxenergy.analysis, "analyse", boom)


def _files() -> list[Path]:
    d = cache.cache_dir()
    return sorted(d.glob("*.json")) if d.exists() else []


@pytest.mark.parametrize("model", [RESNET, GPT2, EFFNET], ids=["resnet18", "gpt2", "efficientnet_b0"])
def test_cached_report_is_byte_identical_for_every_backend(model, tmp_path, monkeypatch):
    all_cases = {
        "default": (),  # a100-80gb-pcie with its default backend and the band of every backend
        "cpu-all": ("--hardware", "xeon-gold-6154", "--predictor", "all"),
        "gpu-all": ("--hardware", "rtx-3090", "--predictor", "all"),
        "devices": ("--hardware", "a30,l4,h100-sxm", "--predictor", "roofline"),
        "learned": ("--hardware", "h100-sxm", "--predictor", "learned"),
        "cpu-physical": ("--hardware", "xeon-gold-5120", "--threads", "2"),
        "none": ("--hardware", "none"),
    }
    keep = all_cases if model is RESNET else ("default", "cpu-all", "gpu-all")  # the suite's time
    cases = {k: v for k, v in all_cases.items() if k in keep}
    computed = {k: _report(tmp_path, model, "--no-cache", *opts, name=f"{k}-0.json") for k, opts in cases.items()}
    assert _files() == []  # --no-cache wrote nothing
    first = _report(tmp_path, model, name="first.json")  # computed, then stored
    assert len(_files()) == 1
    assert first == computed["default"]
    _no_build(monkeypatch)
    for k, opts in cases.items():
        assert _report(tmp_path, model, *opts, name=f"{k}-1.json") == computed[k], k
    # the reports carry figures (not empty ones that would compare equal)
    doc = json.loads(computed["default"])
    assert doc["totals"]["energy_j"] > 0 and len(doc["rows"]) > 5, list(doc)
    assert len(_files()) == 1


def test_training_mode_round_trip(tmp_path, monkeypatch):
    model = ["resnet18", "--image-size", "64", "--batch-size", "2", "--mode", "training"]
    computed = _report(tmp_path, model, "--hardware", "xeon-gold-6154", "--predictor", "all", name="a.json")
    _no_build(monkeypatch)
    assert _report(tmp_path, model, "--hardware", "xeon-gold-6154", "--predictor", "all", name="b.json") == computed


def test_analysis_round_trip_keeps_every_record_and_tensor():
    from fxenergy.models import build_model
    from fxenergy.records import META_KEY

    b = build_model("gpt2", seq_len=8)
    a = fxenergy.analysis.analyse(b.model, b.args, example_kwargs=b.kwargs, name=b.name)
    k = {"model": "gpt2"}
    back = cache.loads(cache.dumps(a, k), k)
    old, new = list(a.graph_module.graph.nodes), list(back.graph_module.graph.nodes)
    assert [(n.name, n.op, [u.name for u in n.users]) for n in old] == [(n.name, n.op, [u.name for u in n.users])
                                                                          for n in new]
    assert all(dict(x.meta.get(META_KEY) or {}) == dict(y.meta.get(META_KEY) or {}) for x, y in zip(old, new))
    assert sum(bool(y.meta.get(META_KEY)) for y in new) == len(new) - 1  # every node but the output has records
    assert back.rows == a.rows and back.working_sets == a.working_sets and dict(back.info) == dict(a.info)
    tensors = [(n, tuple(p.shape), p.dtype, p.requires_grad) for n, p in a.graph_module.named_parameters()]
    assert tensors == [(n, tuple(p.shape), p.dtype, p.requires_grad) for n, p in back.graph_module.named_parameters()]
    with pytest.raises(TypeError):  # immutable, like the analysis it stands for
        fxenergy.records.put_record(new[5], "duration", 1.0)


def test_other_function_targets_come_back_as_named_stand_ins():
    from fxenergy.models import build_model

    b = build_model("efficientnet_b0", image_size=32)
    a = fxenergy.analysis.analyse(b.model, b.args, name=b.name)
    k = {"model": "efficientnet_b0"}
    back = cache.loads(cache.dumps(a, k), k)
    old = [n.target for n in a.graph_module.graph.nodes if getattr(n.target, "__name__", "") == "stochastic_depth"]
    new = [n.target for n in back.graph_module.graph.nodes if getattr(n.target, "__name__", "") == "stochastic_depth"]
    assert old and len(new) == len(old)
    assert (new[0].__module__, new[0].__qualname__) == (old[0].__module__, old[0].__qualname__)
    with pytest.raises(RuntimeError, match="cannot be called"):
        new[0](torch.zeros(1), 0.1, "row")


def test_a_cached_report_imports_neither_transformers_nor_torchvision(tmp_path):
    import subprocess
    import sys

    _report(tmp_path, GPT2)  # computed and stored in this process
    code = ("import sys; from fxenergy.cli import main; "
            f"main(['report', *{GPT2!r}, '--format', 'json', '-o', {str(tmp_path / 'b.json')!r}]); "
            "print(sorted(m for m in ('transformers', 'torchvision', 'torch._dynamo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=os.environ)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    assert (tmp_path / "b.json").read_text() == (tmp_path / "r.json").read_text()


def test_every_key_part_misses(tmp_path):
    base = dict(batch_size=1, seq_len=128, image_size=None, dtype="float32", mode="inference", optimizer="adamw",
                convention="default")
    k0 = cache.key("gpt2", **base)
    assert k0 is not None and cache.key("GPT2", **base) == k0  # the catalogue's own spelling
    changed = [cache.key("gpt2-medium", **base)]
    for field, value in (("batch_size", 2), ("seq_len", 64), ("image_size", 224), ("dtype", "bfloat16"),
                         ("mode", "training"), ("optimizer", "sgd"), ("convention", "seed000")):
        changed.append(cache.key("gpt2", **{**base, field: value}))
    for field in ("code", "torch", "transformers", "torchvision", "python", "model_entry"):
        changed.append({**k0, field: "other"})
    paths = {cache.path_for(k, tmp_path) for k in changed}
    assert cache.path_for(k0, tmp_path) not in paths and len(paths) == len(changed)
    # a file of another key, even under this key's name, is not used
    b = fxenergy.models.build_model("resnet18", image_size=32)
    a = fxenergy.analysis.analyse(b.model, b.args, name=b.name)
    other = {**k0, "code": "other"}
    cache.path_for(k0, tmp_path).write_text(cache.dumps(a, other))
    notes: list[str] = []
    assert cache.load(k0, tmp_path, warn=notes.append) is None
    assert len(notes) == 1 and "another key" in notes[0]
    assert cache.load(other, tmp_path) is None  # stored under k0's name: other's own file is absent


def test_code_hash_follows_every_package_file(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "t.json").write_text("{}")
    h0 = cache.code_hash(pkg)
    (pkg / "sub" / "t.json").write_text('{"a": 1}')
    h1 = cache.code_hash(pkg)
    (pkg / "b.py").write_text("")
    assert len({h0, h1, cache.code_hash(pkg)}) == 3
    assert cache.code_hash() == cache.code_hash()  # fxenergy's own: stable between calls


def test_corrupt_file_is_ignored_with_one_note_and_replaced(tmp_path, capsys):
    expected = _report(tmp_path, RESNET, "--no-cache", name="a.json")
    _report(tmp_path, RESNET, name="b.json")
    (path,) = _files()
    for bad in ("{not json", json.dumps({"schema": "fxenergy-analysis-cache/0"}), ""):
        path.write_text(bad)
        capsys.readouterr()
        assert _report(tmp_path, RESNET, name="c.json") == expected
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "analysis cache" in err[0] and "not used" in err[0], err
        assert cache.loads(path.read_text()) is not None  # rewritten, valid again
    assert _files() == [path]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # atomic writes leave nothing


def test_file_of_another_owner_is_never_loaded(tmp_path, monkeypatch, capsys):
    _report(tmp_path, RESNET, name="a.json")
    (path,) = _files()
    monkeypatch.setattr(cache.os, "getuid", lambda: path.stat().st_uid + 1)
    monkeypatch.setattr(fxenergy.analysis, "analyse", _counting(fxenergy.analysis.analyse, calls := []))
    capsys.readouterr()
    _report(tmp_path, RESNET, name="b.json")
    assert calls == [1]  # analysed again
    assert "not owned by you" in capsys.readouterr().err


def _counting(fn, calls: list):  # noqa: ANN001, ANN202
    def wrapped(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return fn(*args, **kwargs)

    return wrapped


def test_no_cache_neither_reads_nor_writes(tmp_path, monkeypatch, capsys):
    expected = _report(tmp_path, RESNET, name="a.json")
    (path,) = _files()
    path.write_text("{corrupt")
    calls: list[int] = []
    monkeypatch.setattr(fxenergy.analysis, "analyse", _counting(fxenergy.analysis.analyse, calls))
    capsys.readouterr()
    assert _report(tmp_path, RESNET, "--no-cache", name="b.json") == expected
    assert calls == [1] and capsys.readouterr().err == ""  # not read: no note about the corrupt file
    assert path.read_text() == "{corrupt"  # not written


def test_cache_dir_is_created_on_demand_and_follows_the_environment(tmp_path, monkeypatch):
    target = tmp_path / "deep" / "er" / "cache"
    monkeypatch.setenv("FXENERGY_CACHE_DIR", str(target))
    _report(tmp_path, RESNET)
    assert len(list(target.glob("analysis-resnet18-*.json"))) == 1
    assert cache.cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/fxenergy")
    assert cache.cache_dir({"FXENERGY_CACHE_DIR": "/y", "XDG_CACHE_HOME": "/x"}) == Path("/y")
    assert cache.cache_dir({}) == Path("~/.cache/fxenergy").expanduser()


def test_user_models_and_the_api_are_not_cached(tmp_path):
    src = tmp_path / "mine.py"
    src.write_text("import torch\n\ndef build():\n    return torch.nn.Linear(8, 4), (torch.randn(2, 8),), {}\n")
    _report(tmp_path, [f"{src}:build"])
    assert cache.key(f"{src}:build", batch_size=1, seq_len=128, image_size=None, dtype="float32",
                     mode="inference", optimizer="adamw", convention="default") is None
    fxenergy.annotate(torch.nn.Linear(8, 4), torch.randn(2, 8), hardware="a30")
    assert _files() == []


def test_unrepresentable_analysis_is_not_stored(tmp_path):
    b = fxenergy.models.build_model("resnet18", image_size=32)
    a = fxenergy.analysis.analyse(b.model, b.args, name=b.name)
    info = dict(a.info)
    info["odd"] = object()
    odd = fxenergy.analysis.Analysis(a.graph_module, a.rows, a.working_sets, info)
    assert cache.store(odd, {"model": "resnet18"}, tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_unwritable_cache_dir_does_not_stop_the_report(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("FXENERGY_CACHE_DIR", str(blocker / "cache"))  # a directory under a file
    expected = _report(tmp_path, RESNET, "--no-cache", name="a.json")
    capsys.readouterr()
    assert _report(tmp_path, RESNET, name="b.json") == expected
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not written" in err[0]
    assert os.path.isfile(blocker)
