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
