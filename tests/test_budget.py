"""Energy budgets: configuration parsing, ``fxenergy check`` exit codes, baselines, exports, pre-commit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fxenergy
from fxenergy.budget import BASELINE_SCHEMA, load_config, parse_config
from fxenergy.cli import main as cli_main
from fxenergy.errors import UserInputError

MODEL = textwrap.dedent("""
    import torch
    from torch import nn
    WIDTH = 16
    def build():
        return nn.Sequential(nn.Linear(32, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 4)), (torch.randn(8, 32),)
""")
GOOD = {"name": "mlp", "model": "net.py:build", "max_energy_j": 1.0}


def _toml_value(v: object) -> str:
    return json.dumps(v)  # strings, ints, floats and booleans: JSON spelling is valid TOML


def write_project(tmp: Path, *budgets: dict, pyproject: bool = True, extra: str = "") -> Path:
    (tmp / "net.py").write_text(MODEL)
    prefix = "tool.fxenergy." if pyproject else ""
    text = (f"[tool.fxenergy]\n{extra}\n" if pyproject else f"{extra}\n")
    for b in budgets:
        text += f"[[{prefix}budget]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in b.items())
    path = tmp / ("pyproject.toml" if pyproject else "fxenergy.toml")
    path.write_text(text)
    return path


def run_check(tmp: Path, *args: str, monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.chdir(tmp)
    try:
        code = cli_main(["check", *args])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------ parsing
def test_parse_defaults_and_relative_baseline(tmp_path):
    cfg = load_config(write_project(tmp_path, GOOD))
    (b,) = cfg.budgets
    assert (b.name, b.batch_size, b.dtype, b.hardware, b.mode, b.predictor) == (
        "mlp", 1, "float32", "a100-80gb-pcie", "inference", None)
    assert cfg.baseline == (tmp_path / "fxenergy-baseline.json").resolve()
    assert b.key == "budget[0]" and cfg.where(b.key) == "pyproject.toml: tool.fxenergy.budget[0]"


def test_standalone_file_same_schema(tmp_path):
    cfg = load_config(write_project(tmp_path, GOOD, pyproject=False, extra='baseline = "b.json"'))
    assert cfg.prefix == "" and cfg.baseline.name == "b.json"


BAD = [
    ({"model": "net.py:build", "max_energy_j": 1}, "budget[0].name", "missing"),
    ({"name": "m", "max_energy_j": 1}, "budget[0].model", "missing"),
    ({"name": "m", "model": "net.py:build"}, "budget[0].max_energy_j", "missing"),
    ({**GOOD, "max_energy_j": -3}, "budget[0].max_energy_j", "must be a positive number, got -3"),
    ({**GOOD, "max_energy_j": "1 J"}, "budget[0].max_energy_j", "positive number"),
    ({**GOOD, "max_energy_j": True}, "budget[0].max_energy_j", "positive number"),
    ({**GOOD, "max_flops": 0}, "budget[0].max_flops", "positive number"),
    ({**GOOD, "max_increase_pct": -1}, "budget[0].max_increase_pct", "number >= 0"),
    ({**GOOD, "batch_size": 0}, "budget[0].batch_size", "positive integer"),
    ({**GOOD, "batch_size": 2.5}, "budget[0].batch_size", "positive integer"),
    ({**GOOD, "dtype": "float64"}, "budget[0].dtype", "must be one of"),
    ({**GOOD, "mode": "train"}, "budget[0].mode", "must be one of"),
    ({**GOOD, "name": 3}, "budget[0].name", "non-empty string"),
    ({**GOOD, "hardware": "h9000"}, "budget[0].hardware", "unknown"),
    ({**GOOD, "predictor": "magic"}, "budget[0].predictor", "unknown predictor"),
    ({**GOOD, "predictor": "hef", "params": "nope"}, "budget[0].params", "parameter set 'nope'"),
    ({**GOOD, "predictor": "roofline", "params": "hef-seed004-a100"}, "budget[0].params", "takes no parameter set"),
    ({**GOOD, "hardware": "a30", "predictor": "hef", "params": "hef-seed004-a100"}, "budget[0].params",
     "fitted for a100-80gb-pcie, not a30"),
    ({**GOOD, "force": "yes"}, "budget[0].force", "true or false"),
    ({**GOOD, "max_energy": 1}, "budget[0].max_energy", "unknown key"),
]


@pytest.mark.parametrize("budget,key,message", BAD, ids=[f"{k}:{m[:18]}" for _, k, m in BAD])
def test_bad_budget_exit_2_one_line(tmp_path, monkeypatch, capsys, budget, key, message):
    write_project(tmp_path, budget)
    code, out, err = run_check(tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"fxenergy: error: pyproject.toml: tool.fxenergy.{key}: ")
    assert message in err


def test_duplicate_names_and_unknown_top_key(tmp_path):
    with pytest.raises(UserInputError, match=r"^pyproject.toml: tool.fxenergy.budget\[1\].name: duplicate name 'mlp'"):
        load_config(write_project(tmp_path, GOOD, GOOD))
    with pytest.raises(UserInputError, match=r"^pyproject.toml: tool.fxenergy.budgets: unknown key"):
        load_config(write_project(tmp_path, GOOD, extra="budgets = 1"))


@pytest.mark.parametrize("model,needle", [
    ("missing.py:build", "model file"),
    ("net.py:nothing", "is not defined"),
    ("no_such_model_xyz", "unknown model"),
    ("no_such_pkg.mod:build", "cannot import 'no_such_pkg.mod'"),
])
def test_model_that_cannot_be_built(tmp_path, monkeypatch, capsys, model, needle):
    write_project(tmp_path, {**GOOD, "model": model})
    code, _, err = run_check(tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("fxenergy: error: pyproject.toml: tool.fxenergy.budget[0].model: ") and needle in err


def test_no_config_and_bad_toml(tmp_path, monkeypatch, capsys):
    code, _, err = run_check(tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "no budget configuration" in err
    (tmp_path / "fxenergy.toml").write_text("[[budget]\n")
    code, _, err = run_check(tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and err.startswith("fxenergy: error: fxenergy.toml: not valid TOML") and err.count("\n") == 1


# ------------------------------------------------------------------------------------ property-based
_names = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8)
_valid_budget = st.fixed_dictionaries(
    {"name": _names, "model": st.sampled_from(["resnet18", "net.py:build", "pkg.mod:make"]),
     "max_energy_j": st.floats(1e-9, 1e6)},
    optional={"batch_size": st.integers(1, 512), "seq_len": st.integers(1, 4096), "image_size": st.integers(1, 1024),
              "dtype": st.sampled_from(["float32", "float16", "bfloat16"]),
              "mode": st.sampled_from(["inference", "training"]), "predictor": st.sampled_from(["hef", "roofline"]),
              "max_flops": st.floats(1, 1e18), "max_increase_pct": st.floats(0, 1e3)},
)
_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_settings
@given(st.lists(_valid_budget, min_size=1, max_size=4, unique_by=lambda b: b["name"]))
def test_valid_budgets_round_trip(budgets):
    cfg = parse_config({"budget": budgets}, "pyproject.toml")
    assert [b.name for b in cfg.budgets] == [b["name"] for b in budgets]
    for parsed, raw in zip(cfg.budgets, budgets):
        for k, v in raw.items():
            assert getattr(parsed, k) == v


_KEYS = ["name", "model", "max_energy_j", "batch_size", "seq_len", "image_size", "dtype", "mode", "max_flops",
         "max_increase_pct", "hardware", "predictor"]
_bad_value = st.one_of(st.integers(-10**6, 0), st.floats(-1e9, 0), st.just(True), st.just(False), st.just(""),
                       st.just([]), st.just({}), st.text(max_size=3).map(lambda s: s + "!?"))


@_settings
@given(st.integers(0, 2), st.sampled_from(_KEYS), _bad_value)
def test_invalid_values_always_one_line_with_file_and_key(index, key, value):
    # any non-empty string is a valid name, and a model is only resolved when the check runs
    assume(not (key in ("name", "model") and isinstance(value, str) and value.strip()))
    assume(not (key == "max_increase_pct" and value == 0 and not isinstance(value, bool)))  # 0% is allowed
    budgets = [{**GOOD, "name": f"b{i}"} for i in range(3)]
    budgets[index][key] = value
    with pytest.raises(UserInputError) as e:
        parse_config({"budget": budgets}, "/some/dir/pyproject.toml")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"pyproject.toml: tool.fxenergy.budget[{index}].{key}: ")


# ------------------------------------------------------------------------------------ check
def test_check_passes_then_fails_with_layer_diff(tmp_path, monkeypatch, capsys):
    write_project(tmp_path, {**GOOD, "max_increase_pct": 5})
    code, out, _ = run_check(tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and "all 1 budget(s) hold" in out and "no baseline" in out

    code, out, _ = run_check(tmp_path, "--update-baseline", monkeypatch=monkeypatch, capsys=capsys)
    text = (tmp_path / "fxenergy-baseline.json").read_text()
    base = json.loads(text)
    assert code == 0 and base["schema"] == BASELINE_SCHEMA
    assert text == json.dumps(base, indent=2, sort_keys=True) + "\n"  # deterministic: sorted keys
    entry = base["budgets"]["mlp"]
    assert entry["totals"]["flops"] == 2 * (8 * 32 * 16 + 8 * 16 * 4)  # 2 * (8*32*16 + 8*16*4) = 9216
    assert sum(entry["layers"].values()) == pytest.approx(entry["totals"]["energy_j"], rel=1e-6)
    run_check(tmp_path, "--update-baseline", monkeypatch=monkeypatch, capsys=capsys)
    assert (tmp_path / "fxenergy-baseline.json").read_text() == text  # idempotent

    (tmp_path / "net.py").write_text(MODEL.replace("WIDTH = 16", "WIDTH = 65536"))
    code, out, _ = run_check(tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and "OVER" in out and "over baseline" in out
    assert "layers that grew most against the baseline" in out and "0 (Linear)" in out

    code, out, _ = run_check(tmp_path, "--format", "json", monkeypatch=monkeypatch, capsys=capsys)
    doc = json.loads(out)
    assert code == 1 and doc["passed"] is False
    (b,) = doc["budgets"]
    assert b["increase_pct"] > 5 and b["layer_diffs"][0]["diff_j"] > 0
    assert b["layer_diffs"] == sorted(b["layer_diffs"], key=lambda d: -d["diff_j"])


def test_over_absolute_limit_without_baseline(tmp_path, monkeypatch, capsys):
    write_project(tmp_path, {**GOOD, "max_energy_j": 1e-9, "max_flops": 10}, pyproject=False)
    code, out, _ = run_check(tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and "J > limit" in out and "FLOPs" in out and "largest layers" in out


def test_module_callable_model(tmp_path, monkeypatch, capsys):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "models.py").write_text(MODEL)
    write_project(tmp_path, {**GOOD, "model": "mypkg.models:build"})
    code, out, err = run_check(tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    sys.modules.pop("mypkg.models", None), sys.modules.pop("mypkg", None)


# ------------------------------------------------------------------------------------ exports
@pytest.fixture(scope="module")
def result():
    m = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    return fxenergy.annotate(m, torch.randn(8, 32), hardware="a100-80gb-pcie", name="mlp")


def test_render_html_self_contained(result):
    from fxenergy.report.html import render_html

    html = render_html(result, "layer", None)
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "<table>" in html
    assert "<script" not in html and "src=" not in html and "href=" not in html
    assert html.count("<rect") == len([g for g in result.group("layer") if g.totals.energy_j])  # one bar each


def test_save_plot_and_dataframe(result, tmp_path):
    from fxenergy.report.frame import to_dataframe
    from fxenergy.report.plot import save_plot

    save_plot(result, tmp_path / "p.png", top=2)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    df = to_dataframe(result)
    assert len(df) == len(result.rows) and df["macs"].sum() == result.totals.macs  # 8*32*16 + 8*16*4 = 4608
    assert df["energy_j"].sum() == pytest.approx(result.totals.energy_j)


@pytest.mark.parametrize("module,func,args", [("pandas", "fxenergy.report.frame:to_dataframe", ()),
                                              ("matplotlib", "fxenergy.report.plot:save_plot", ("x.png",))])
def test_optional_extras_missing(result, monkeypatch, module, func, args):
    import importlib

    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    mod, _, name = func.partition(":")
    with pytest.raises(UserInputError, match=f"needs {module}|need {module}"):
        getattr(importlib.import_module(mod), name)(result, *args)


# ------------------------------------------------------------------------------------ pre-commit
def _pre_commit() -> list[str]:
    exe = Path(sys.executable).with_name("pre-commit")
    if not exe.exists():
        pytest.skip("pre-commit is not installed (uv sync --group dev)")
    return [str(exe)]


def _check_command() -> str:
    return f"{sys.executable} -m fxenergy check"


def test_shipped_hook_manifest_is_valid():
    root = Path(__file__).resolve().parents[1]
    p = subprocess.run([*_pre_commit(), "validate-manifest", str(root / ".pre-commit-hooks.yaml")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "id: fxenergy-budget" in (root / ".pre-commit-hooks.yaml").read_text()


def test_pre_commit_hook_passes_then_fails(tmp_path):
    """Run the hook through the real ``pre-commit`` in a scratch git repository.

    The shipped hook (.pre-commit-hooks.yaml) is ``language: python``: pre-commit would pip-install
    this whole repository, torch included, into a fresh virtualenv — minutes and gigabytes, far too
    heavy for a test. So this test declares the same hook as ``repo: local`` with
    ``language: unsupported`` (pre-commit >= 4.4's name for ``system``) and runs this interpreter's
    fxenergy; the shipped manifest is checked separately with ``pre-commit validate-manifest``.
    """
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    pc = _pre_commit()
    (tmp_path / "net.py").write_text(MODEL)
    write_project(tmp_path, {**GOOD, "max_increase_pct": 10}, pyproject=False)
    (tmp_path / ".pre-commit-config.yaml").write_text(textwrap.dedent(f"""
        repos:
          - repo: local
            hooks:
              - id: fxenergy-budget
                name: fxenergy energy budgets
                entry: {_check_command()}
                language: unsupported
                pass_filenames: false
                files: \\.py$|pyproject\\.toml|fxenergy\\.toml
    """))
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PRE_COMMIT_HOME": str(tmp_path / ".cache"),
           "GIT_CONFIG_NOSYSTEM": "1"}

    def git(*a: str) -> None:
        subprocess.run(["git", *a], cwd=tmp_path, env=env, check=True, capture_output=True)

    with pytest.MonkeyPatch.context() as mp:  # the baseline, in this process (a fresh one costs 4-7 s here)
        mp.chdir(tmp_path)
        assert cli_main(["check", "--update-baseline"]) == 0
    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    git("add", ".")
    ok = subprocess.run([*pc, "run", "--all-files"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Passed" in ok.stdout

    (tmp_path / "net.py").write_text(MODEL.replace("WIDTH = 16", "WIDTH = 65536"))  # ~3x the energy
    git("add", ".")
    bad = subprocess.run([*pc, "run", "--all-files"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "Failed" in bad.stdout
    assert "OVER" in bad.stdout and "over baseline" in bad.stdout and "0 (Linear)" in bad.stdout
