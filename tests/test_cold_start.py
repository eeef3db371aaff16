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
with contextlib.ExitStack() as window:
    if deferred:  # as the one-shot CLI process enters them for a torchvision model
        out["preset"] = window.enter_context(_lean.dynamo_deferred(torchvision=True))
        out["placeholders"] = window.enter_context(_lean.plain_shape_checks())
    else:
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
        out.setdefault("sympy_after", {})[spec] = [  # the real modules (a placeholder is not sympy)
            m for m in ("sympy", _lean._SHAPES) if m in sys.modules and not vars(sys.modules[m]).get("__fxenergy_lean__")]
out["placeholders_left"] = [m for m in ("sympy", _lean._SHAPES) if vars(sys.modules.get(m, sys)).get("__fxenergy_lean__")]
import sympy, torch.fx.experimental.symbolic_shapes as shapes  # the real ones, usable after the window
out["sympy_after_window"] = [sympy.Integer(6) // 4 == 1, shapes.ShapeEnv.__module__, type(sympy.Basic).__name__]
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
    # Neither sympy nor symbolic_shapes imported by the inference cases in the window (plain_shape_checks);
    # training (make_fx) asks symbolic_shapes for more and imports the real ones mid-window.
    assert deferred["placeholders"] is True
    assert not any(deferred["sympy_after"][s] for s in inference)
    assert all(plain["sympy_after"][s] for s in inference)
    assert deferred["placeholders_left"] == []
    expected = [True, "torch.fx.experimental.symbolic_shapes", "type"]  # sympy.Basic the real class, not LazyBasic
    assert deferred["sympy_after_window"] == plain["sympy_after_window"] == expected
    assert deferred["delegates_left"] == 0  # every pre-set cache removed on exit
    assert deferred["compiled"] and plain["compiled"]
    assert (deferred["roi_align_from"], plain["roi_align_from"]) == ("fxenergy._lean", "torch._dynamo.utils")
    assert deferred["placeholders_gone"] and all(deferred["compile_supported"]) and all(plain["compile_supported"])
    assert deferred["traced_after"] == plain["traced_after"] == 4
    assert deferred["models"] == plain["models"]
    assert all(m["macs"] > 0 and m["energy_j"] > 0 for m in deferred["models"].values())


def _report_json(tmp_path, name: str, one_shot: bool, torchvision: bool = True) -> str:  # noqa: ANN001
    out = tmp_path / f"{name}-{one_shot}.json"
    argv = ["report", name, "--format", "json", "--no-cache", "-o", str(out)]
    call = "main()" if one_shot else f"main({argv!r})"  # the command itself, or main([...]) from Python code
    # The one-shot process never imports torch._dynamo (dynamo_deferred), sympy / symbolic_shapes
    # (plain_shape_checks) or triton (import_flop_counter) for a torchvision model; main([...]) from
    # Python code imports all four. The garbage collector is on again after either (the one-shot report
    # turns it off until the model is built).
    # The one-shot command ends the process itself (cli._exit_now, after running atexit handlers), so the
    # checks run as an atexit handler: a failing one prints to stderr, which must stay empty.
    modules = ("assert [m in sys.modules for m in ('torch._dynamo', 'sympy', 'torch.fx.experimental.symbolic_shapes', "
               f"'triton')] == [{not one_shot}] * 4; ") if torchvision else ""
    code = ("import atexit, gc, sys; from fxenergy.cli import main; sys.argv = ['fxenergy', *sys.argv[1:]]\n"
            f"def check():\n    {modules}assert gc.isenabled(); print('checked')\n"
            f"atexit.register(check)\nsys.exit({call})")
    p = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.splitlines()[-1:] == ["checked"]
    assert p.stderr == ""  # no warning either (torch's "triton not found" is filtered out)
    return out.read_text()


@pytest.mark.slow
def test_one_shot_report_is_byte_identical(tmp_path) -> None:  # noqa: ANN001
    """``fxenergy report resnet18`` as the command (deferred) and as ``main([...])`` from Python (not)."""
    assert _report_json(tmp_path, "resnet18", True) == _report_json(tmp_path, "resnet18", False)


@pytest.mark.slow
def test_one_shot_transformers_report_is_byte_identical_and_quiet(tmp_path) -> None:  # noqa: ANN001
    """gpt2 as the command and from Python: same JSON, and nothing on stderr (the one-shot process freezes
    the objects made before the analysis out of the collector's reach; at exit they are handed back, or
    triton's nanobind bindings, imported by transformers, print hundreds of lines of "leaked" objects)."""
    assert _report_json(tmp_path, "gpt2", True, torchvision=False) == _report_json(tmp_path, "gpt2", False,
                                                                                    torchvision=False)


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

    import torch._dynamo  # noqa: F401 - imported now (the test relied on another test of its worker importing it)

    assert delegate(2) == 3 and calls == [1, 2]
    assert getattr(fn, "__dynamo_disable") is not delegate  # torch's own disable wrapper, cached where torch caches it


# --- plain_shape_checks: the placeholder's functions answer plain values as torch's own do ---

_PLAIN_VALUES = (True, False, 0, 1, 7, -3, (), (2, 3), [2, 3], (2, 3, 4), (3, 2), [1], (True, 1), 2.5, None, "x")


def _outcome(fn, *args):  # noqa: ANN001, ANN202
    try:
        r = fn(*args)
    except Exception as e:  # noqa: BLE001 - the same exception type is part of the answer
        return ("raises", type(e).__name__)
    return (type(r).__name__, r)


def test_plain_shape_functions_answer_as_torchs() -> None:
    """Every argument combination of a grid of plain values (and some that are not: floats, None, str,
    mixed tuples): same value and type, or the same exception, as torch's function of that name."""
    import torch
    from torch.fx.experimental import symbolic_shapes as real

    from fxenergy import _lean

    sizes = [torch.Size([2, 3]), torch.Size([])]
    checked = 0
    for name, ours in _lean.PLAIN_SHAPE_FUNCTIONS.items():
        theirs = getattr(real, name)
        arity = 2 if name in ("sym_eq", "sym_and", "sym_or") else 1
        values = [*_PLAIN_VALUES, *sizes]
        grid = [(v,) for v in values] if arity == 1 else [(a, b) for a in values for b in values]
        if name in ("sym_and", "sym_or"):
            grid += [(True,), (False,), (True, True, False), (False, False, False)]
        for args in grid:
            assert _outcome(ours, *args) == _outcome(theirs, *args), (name, args)
            checked += 1
    assert checked > 1000
    for name in _lean.DELEGATED_SHAPE_FUNCTIONS:  # the names the placeholder delegates exist in torch
        assert callable(getattr(real, name))


def test_lazy_basic_is_sympys_basic_once_sympy_is_imported() -> None:
    import sympy

    from fxenergy import _lean

    assert isinstance(sympy.Integer(3), _lean.LazyBasic) and issubclass(sympy.Symbol, _lean.LazyBasic)
    assert not isinstance(3, _lean.LazyBasic) and not issubclass(int, _lean.LazyBasic)


def test_installed_torch_was_checked() -> None:
    """plain_shape_checks and import_flop_counter act only on torch releases whose functions were read
    (CHECKED_TORCH); a new release must be re-read and the tests above re-run before it is added."""
    from fxenergy import _lean

    assert _lean._torch_checked()


_FLOP_SCRIPT = r"""
import json, sys, inspect, torch
from fxenergy import _lean
lean = sys.argv[1] == "lean"
used = _lean.import_flop_counter() if lean else bool(__import__("torch.utils.flop_counter"))
import torch.utils.flop_counter as fc
out = {"used": used, "triton": "triton" in sys.modules,
       "registry": sorted((str(k), getattr(v, "__wrapped__", v).__qualname__) for k, v in fc.flop_registry.items()),
       "uses_of_JITFunction": inspect.getsource(fc).count("_JITFunction")}
# register_flop_formula's one use: does it accept a triton kernel, and refuse anything else, as with triton?
import triton
@triton.jit
def kernel(x):
    pass
out["triton_after_check"] = [isinstance(kernel, fc._JITFunction), isinstance(None, fc._JITFunction),
                             isinstance(torch.ops.aten.mm, fc._JITFunction)]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_flop_counter_without_triton_is_the_same_table(tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("triton")
    script = tmp_path / "flop.py"  # a file: triton.jit reads the kernel's source
    script.write_text(_FLOP_SCRIPT)
    runs = []
    for kind in ("lean", "plain"):
        p = subprocess.run([sys.executable, str(script), kind], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        runs.append((json.loads(p.stdout.strip().splitlines()[-1]), p.stderr))
    (lean, lean_err), (plain, _) = runs
    assert lean["used"] and not lean["triton"] and plain["triton"]
    assert lean_err == ""  # torch's "triton not found" warning filtered out
    assert lean["registry"] == plain["registry"] and len(lean["registry"]) > 20
    # torch 2.15 names _JITFunction three times: the import, the fallback, register_flop_formula's isinstance
    assert lean["uses_of_JITFunction"] == 3
    assert lean["triton_after_check"] == plain["triton_after_check"] == [True, False, False]
