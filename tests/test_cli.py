"""The command line: success paths and one-line errors with exit code 2."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from fxenergy.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_csv(capsys):
    code, out, err = run(capsys, "report", "resnet18", "--format", "csv", "--batch-size", "2")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[-1]["key"] == "Total"
    assert int(rows[-1]["macs"]) == 2 * 1_814_073_344  # resnet18 forward MACs at batch 2


def test_report_json_to_file(tmp_path, capsys):
    target = tmp_path / "r.json"
    code, out, err = run(capsys, "report", "distilbert-base-uncased", "--seq-len", "16", "--format", "json",
                         "--group-by", "module", "--depth", "2", "-o", str(target))
    assert code == 0, err
    d = json.loads(target.read_text())
    assert d["info"]["model"] == "distilbert-base-uncased" and d["groups"]["by"] == "module"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_report_table_training(capsys):
    code, out, err = run(capsys, "report", "mobilenet_v3_small", "--mode", "training", "--image-size", "64",
                         "--group-by", "phase")
    assert code == 0, err
    assert "backward" in out and "optimizer" in out and "Total" in out


def test_models_lists_names(capsys):
    code, out, _ = run(capsys, "models")
    names = {line.split()[0] for line in out.splitlines()}
    assert {"gpt2", "llama-2-70b", "resnet50", "vit_b_16"} <= names


def test_hardware_list_and_show(capsys):
    code, out, _ = run(capsys, "hardware", "list")
    assert code == 0 and "a100-80gb-pcie" in out
    code, out, _ = run(capsys, "hardware", "show", "v100-sxm2-32gb", "--json")
    assert code == 0 and json.loads(out)["kind"] == "gpu"


BAD = [
    (["report", "resnet-18"], "resnet18"),  # unknown name: suggests the close match
    (["report", "resnet18", "--batch-size", "0"], "positive integer"),
    (["report", "resnet18", "--dtype", "float8"], "invalid choice"),
    (["report", "resnet18", "--group-by", "colour"], "invalid choice"),
    (["report", "resnet18", "--group-by", "layer", "--depth", "2"], "--group-by module"),
    (["report", "gpt2", "--seq-len", "5000"], "1024"),
    (["report", "vgg11", "--image-size", "16"], "too small"),
    (["report", "resnet18", "--hardware", "toaster"], "hardware"),
    (["report", "resnet18", "--predictor", "oracle"], "predictor"),
    (["report", "resnet18", "-o", "/nonexistent/dir/x.json", "--format", "json"], "does not exist"),
    (["nonsense"], "invalid choice"),
]


def exit_code(argv):
    try:
        return main(argv)
    except SystemExit as e:  # argparse's own errors
        return e.code


@pytest.mark.parametrize("argv, needle", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_one_line_exit_2(capsys, argv, needle):
    code = exit_code(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


UNTRACEABLE = """
import torch
class M(torch.nn.Module):
    def forward(self, x):
        return x * 2 if x.sum() > 0 else x
def make():
    return M(), (torch.randn(2, 3),)
"""


def test_wrong_input_shape_file_model(tmp_path, capsys):
    f = tmp_path / "m.py"
    f.write_text("import torch\ndef make():\n    return torch.nn.Linear(8, 4), (torch.randn(2, 5),)\n")
    code, out, err = run(capsys, "report", f"{f}:make")
    assert code == 2 and "could not capture" in err and "shape" in err
    assert len(err.strip().splitlines()) == 1


def test_untraceable_file_model(tmp_path, capsys):
    f = tmp_path / "m.py"
    f.write_text(UNTRACEABLE)
    code, out, err = run(capsys, "report", f"{f}:make")
    assert code == 2 and "symbolic_trace:" in err and "export:" in err
    assert len(err.strip().splitlines()) == 1


def test_debug_shows_traceback(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(UNTRACEABLE)
    p = subprocess.run([sys.executable, "-m", "fxenergy", "--debug", "report", f"{f}:make"], capture_output=True, text=True)
    assert p.returncode != 0 and "Traceback" in p.stderr


def test_console_entry_point_runs():
    p = subprocess.run([sys.executable, "-m", "fxenergy", "report", "alexnet", "--format", "markdown", "--top", "3"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "| **Total** |" in p.stdout


def test_predictor_all_json(capsys):
    # batch 32: the batch of the A30 layer-wise data (at batch 4 layer-wise refuses: outside its data)
    code, out, err = run(capsys, "report", "resnet18", "--hardware", "a30", "--batch-size", "32", "--predictor", "all",
                         "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert set(d["energy_j"]) >= {"roofline", "hef", "layerwise"}
    banded = [v for n, v in d["energy_j"].items() if n not in ("mlco2", "green-algorithms", "flops")]  # baselines
    assert d["band_j"]["min"] == min(banded) and d["band_j"]["max"] == max(banded)
    assert {"mlco2", "green-algorithms", "flops"} <= set(d["energy_j"])
    for name, res in d["results"].items():
        assert res["totals"]["energy_j"] == d["energy_j"][name]
