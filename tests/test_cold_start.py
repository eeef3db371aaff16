"""Cold start of ``fxenergy report``: what the one-shot CLI process skips changes no number.

The CLI builds bundled transformers models inside ``without_unused_extras`` (transformers sees scipy
and torchvision as absent, so it does not import them). Its effect is on first imports only, so the
comparison runs two fresh processes: one builds each model as the CLI does, one as the Python API
does, and every total of the analysis must be equal.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from fxenergy.models import _hf

# One bundled config per family of transformers modeling modules: causal LM, encoder, seq2seq, vision,
# and a Llama-type decoder (the 7B layers analysed at 8 tokens; the test stays under ~30 s).
ONE_PER_TYPE = ("gpt2", "bert-base-uncased", "t5-small", "vit-base-patch16-224", "llama-2-7b")

_SCRIPT = r"""
import json, sys
lean = sys.argv[1] == "lean"
from fxenergy.models import build_model
from fxenergy.analysis import analyse
out = {"models": {}}
for name in sys.argv[2:]:
    b = build_model(name, seq_len=8, lean_imports=lean)
    if name == sys.argv[2]:
        out["after_build"] = {m: m in sys.modules for m in ("scipy", "torchvision")}
    t = analyse(b.model, b.args, example_kwargs=b.kwargs, name=b.name).result().totals
    out["models"][name] = {k: getattr(t, k) for k in ("nodes", "macs", "flops", "elementwise_flops", "bytes_read",
                                                       "bytes_written", "param_bytes_read")}
    out["models"][name]["params"] = sum(p.numel() for p in b.model.parameters())
import scipy.optimize, torchvision  # importable again once the build is done
out["importable_after"] = True
print(json.dumps(out))
"""


def _start(kind: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _SCRIPT, kind, *ONE_PER_TYPE], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _result(p: subprocess.Popen) -> dict:
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_lean_build_skips_extras_and_changes_no_total() -> None:
    procs = _start("lean"), _start("full")  # two fresh processes: the effect is on first imports only
    lean, full = (_result(p) for p in procs)
    assert lean["after_build"] == {"scipy": False, "torchvision": False}  # what the saving is made of
    assert full["after_build"] == {"scipy": True, "torchvision": True}  # ...and transformers does import them
    assert lean["importable_after"] and full["importable_after"]
    assert lean["models"] == full["models"]
    assert all(m["macs"] > 0 and m["nodes"] > 0 for m in lean["models"].values())


def test_without_unused_extras_hides_then_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    absent = "fxenergy_never_imported_pkg"
    monkeypatch.setattr(_hf, "UNUSED_EXTRAS", ("json", absent))  # json is imported: left alone
    with _hf.without_unused_extras() as hidden:
        assert hidden == (absent,)
        assert importlib.util.find_spec(absent) is None and sys.modules[absent] is None
        assert sys.modules["json"] is json
    assert absent not in sys.modules and sys.modules["json"] is json


def test_without_unused_extras_restores_on_error(monkeypatch: pytest.MonkeyPatch) -> None:
    absent = "fxenergy_never_imported_pkg2"
    monkeypatch.setattr(_hf, "UNUSED_EXTRAS", (absent,))
    with pytest.raises(RuntimeError), _hf.without_unused_extras():
        raise RuntimeError("build failed")
    assert absent not in sys.modules


# --- torch._dynamo deferred (fxenergy._lean): the one-shot `report` of a torchvision model never imports it ---

# torchvision models whose capture exercises different paths: plain convolutions, depthwise convolutions and
# squeeze-excitation, shifted-window attention with stochastic depth (a torchvision function target), ViT's
# MultiheadAttention, an auxiliary head, and resnet18 in training mode (the make_fx joint graph) LAST:
# its backward imports torch._dynamo, so the window's delegates are also checked with it imported.
TORCHVISION_CASES = (("resnet18", "inference"), ("mobilenet_v3_small", "inference"), ("swin_t", "inference"),
                     ("vit_b_16", "inference"), ("inception_v3", "inference"), ("resnet18", "training"))

_DEFERRED_SCRIPT = r"""
import contextlib, dataclasses, json, sys
deferred = sys.argv[1] == "deferred"
import torch
from fxenergy import _lean
from fxenergy.analysis import analyse, predict
from fxenergy.api import predictor_band
from fxenergy.models import build_model
from fxenergy.resolve import resolve
out = {"models": {}}
window = _lean.dynamo_deferred(torchvision=True) if deferred else contextlib.nullcontext()
with window as preset:
    out["preset"] = preset
    if not deferred:
        import torchvision.models  # the normal import (the deferred window imported it with the placeholders)
    for spec in sys.argv[2:]:
        name, mode = spec.split(":")
        b = build_model(name, batch_size=2)
        a = analyse(b.model, b.args, example_kwargs=b.kwargs, mode=mode, name=b.name)
        t = a.result().totals
        setup = resolve("a100-80gb-pcie", "auto", None)
        p = predict(a, setup)
        r = a.result(p)
        m = {k: getattr(t, k) for k in ("nodes", "macs", "flops", "elementwise_flops", "bytes_read", "bytes_written",
                                         "param_bytes_read")}
        m["params"] = sum(x.numel() for x in b.model.parameters())
        m["rows"] = [dataclasses.astuple(row) for row in r.rows]  # every column, duration and energy included
        m["energy_j"] = r.totals.energy_j
        m["duration_s"] = r.totals.duration_s
        m["band_j"] = predictor_band(a, setup, p)
        out["models"][spec] = m
        out.setdefault("dynamo_after", {})[spec] = "torch._dynamo" in sys.modules
left = [fn for fn, _ in _lean.disable_wrappers() if getattr(getattr(fn, "__dynamo_disable", None), "__fxenergy_lean__", False)]
out["delegates_left"] = len(left)
# torch stays usable in this process: dynamo imports, compiles, and torch.fx's disabled tracer still runs
import torch._dynamo, torch._dynamo.utils, torchvision.ops.roi_align
ra = sys.modules["torchvision.ops.roi_align"]  # the module (the package attribute of that name is the function)
out["placeholders_gone"] = type(sys.modules["torch._dynamo"]).__name__ == "module" and hasattr(torch._dynamo, "disable")
# roi_align's is_compile_supported (the placeholder's delegate in the deferred process) answers as torch's does
out["roi_align_from"] = ra.is_compile_supported.__module__
out["compile_supported"] = [ra.is_compile_supported(d) == torch._dynamo.utils.is_compile_supported(d)
                            for d in ("cpu", "cuda", "meta")]
f = torch.compile(lambda x: torch.sin(x) + 1, backend="eager")
out["compiled"] = f(torch.ones(3)).tolist() == (torch.sin(torch.ones(3)) + 1).tolist()
gm = torch.fx.symbolic_trace(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()))
out["traced_after"] = len(gm.graph.nodes)
print(json.dumps(out))
"""


def _run_deferred(kind: str) -> subprocess.Popen:
    specs = [f"{n}:{m}" for n, m in TORCHVISION_CASES]
    return subprocess.Popen([sys.executable, "-c", _DEFERRED_SCRIPT, kind, *specs], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_dynamo_deferred_changes_no_number_and_leaves_torch_usable() -> None:
    procs = _run_deferred("deferred"), _run_deferred("plain")  # fresh processes: the effect is on first imports
    deferred, plain = (_result(p) for p in procs)
    inference = [f"{n}:{m}" for n, m in TORCHVISION_CASES if m == "inference"]
    # What the saving is made of: never imported while building and analysing in inference mode (the
    # report's default), which the normal path does (torchvision's import, meta weight init, tracing).
    assert not any(deferred["dynamo_after"][s] for s in inference)
    assert all(plain["dynamo_after"].values())
    # Training mode (last) imports it inside the window (make_fx's backward): the delegates then call
    # torch's own disable wrappers, and the numbers below must still be equal.
    assert deferred["dynamo_after"]["resnet18:training"]
    assert deferred["preset"] > 50  # torch's wrappers were found (0 would mean the mechanism silently did nothing)
    assert deferred["delegates_left"] == 0  # every pre-set cache removed on exit
    assert deferred["compiled"] and plain["compiled"]
    assert (deferred["roi_align_from"], plain["roi_align_from"]) == ("fxenergy._lean", "torch._dynamo.utils")
    assert deferred["placeholders_gone"] and all(deferred["compile_supported"]) and all(plain["compile_supported"])
    assert deferred["traced_after"] == plain["traced_after"] == 4
    assert deferred["models"] == plain["models"]
    assert all(m["macs"] > 0 and m["energy_j"] > 0 for m in deferred["models"].values())


def _report_json(tmp_path, name: str, one_shot: bool) -> str:  # noqa: ANN001
    out = tmp_path / f"{name}-{one_shot}.json"
    argv = ["report", name, "--format", "json", "--no-cache", "-o", str(out)]
    call = "main()" if one_shot else f"main({argv!r})"  # the command itself, or main([...]) from Python code
    code = ("import sys; from fxenergy.cli import main; sys.argv = ['fxenergy', *sys.argv[1:]]; "
            f"rc = {call}; assert ('torch._dynamo' in sys.modules) is {not one_shot}; sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return out.read_text()


@pytest.mark.slow
def test_one_shot_report_is_byte_identical(tmp_path) -> None:  # noqa: ANN001
    """``fxenergy report resnet18`` as the command (deferred) and as ``main([...])`` from Python (not)."""
    assert _report_json(tmp_path, "resnet18", True) == _report_json(tmp_path, "resnet18", False)


def test_installed_torchvision_was_checked() -> None:
    """The placeholders are used only for torchvision releases checked by the tests above; a new release
    must be re-checked (its import may ask torch._dynamo for more) and added to CHECKED_TORCHVISION."""
    pytest.importorskip("torchvision")
    from fxenergy import _lean

    assert _lean._torchvision_checked()


def test_delegate_is_a_plain_call_until_dynamo_then_torchs_own() -> None:
    from fxenergy import _lean

    calls = []

    def fn(x: int) -> int:
        calls.append(x)
        return x + 1

    delegate = _lean._delegate(fn, True)
    saved = sys.modules.pop("torch._dynamo", None)
    try:
        assert delegate(1) == 2 and not hasattr(fn, "__dynamo_disable")  # no dynamo: fn itself, nothing cached
    finally:
        if saved is not None:
            sys.modules["torch._dynamo"] = saved

    assert delegate(2) == 3 and calls == [1, 2]
    assert getattr(fn, "__dynamo_disable") is not delegate  # torch's own disable wrapper, cached where torch caches it
