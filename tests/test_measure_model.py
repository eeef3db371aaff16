"""fxenergy measure: a real run of a small model beside its prediction; rows sum to the totals."""

from __future__ import annotations

import json

import pytest

from fxenergy.cli import main
from fxenergy.measure.model import measure_model

FACTORY = '''
import torch
from torch import nn

def build():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    return m, (torch.randn(2, 3, 16, 16),)
'''


@pytest.fixture
def factory(tmp_path):
    f = tmp_path / "tiny.py"
    f.write_text(FACTORY)
    return f"{f}:build"


class FixedMeter:
    """2 J per window, whatever ran: checks that layer energy is the window's, apportioned by time."""

    name, domains, measures_energy = "fake", ("package-0",), True

    def begin(self):
        pass

    def poll(self):
        pass

    def end(self):
        return {"package-0": 2.0}

    def close(self):
        pass


def test_measure_json_time_only(factory, capsys):
    assert main(["measure", factory, "--hardware", "xeon-gold-5120", "--window", "0", "--repeats", "2",
                 "--layer-runs", "2", "--meter", "none", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["measured"]["meter"].startswith("time only") and d["measured"]["energy_j"] is None
    assert d["measured"]["duration_s"] > 0 and d["predicted"]["duration_s"] > 0 and d["predicted"]["energy_j"] > 0
    keys = [x["key"] for x in d["layers"]]
    assert keys[:5] == ["0", "1", "2", "3", "4"]  # nn.Sequential children, as report --group-by layer names them
    assert all(x["measured_s"] > 0 for x in d["layers"])
    assert d["layer_totals"]["measured_s"] == pytest.approx(sum(x["measured_s"] for x in d["layers"]))
    assert d["layer_totals"]["predicted_s"] == pytest.approx(d["predicted"]["duration_s"])


def test_measure_energy_apportioned_by_time(factory):
    mm = measure_model(factory, hardware="xeon-gold-5120", window_s=0.0, repeats=1, warmup=0, layer_runs=1,
                       meter=FixedMeter())
    assert mm.run.energy_j == pytest.approx(2.0 / mm.run.calls)
    assert sum(x.measured_j for x in mm.layers) == pytest.approx(mm.run.energy_j)
    share = {x.key: x.measured_j / mm.run.energy_j for x in mm.layers}
    times = {x.key: x.measured_s / sum(y.measured_s for y in mm.layers) for x in mm.layers}
    assert share == pytest.approx(times)


def test_measure_training_totals_and_markdown(factory, capsys):
    assert main(["measure", factory, "--hardware", "xeon-gold-5120", "--mode", "training", "--window", "0",
                 "--repeats", "1", "--meter", "none", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "(whole model)" in out and "training shows totals only" in out and "time only" in out


def test_measure_bad_input_one_line(capsys):
    import torch

    assert main(["measure", "no-such-model"]) == 2
    assert main(["measure", "resnet18", "--window", "-1"]) == 2
    if not torch.cuda.is_available():
        assert main(["measure", "resnet18", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert all(e.startswith("fxenergy: error: ") for e in err) and len(err) == (2 if torch.cuda.is_available() else 3)


UNTRACEABLE = '''
import torch
from torch import nn

class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(16, 16), nn.Linear(16, 4)

    def forward(self, x):
        for _ in range(x.shape[0] // 4):  # a Python loop over a shape: symbolic_trace fails, export works
            x = x * 2
        return self.b(torch.relu(self.a(x)))

def build():
    return Branchy(), (torch.randn(4, 16),)
'''


def test_measure_untraceable_model_timed_by_hooks(tmp_path):
    f = tmp_path / "branchy.py"
    f.write_text(UNTRACEABLE)
    mm = measure_model(f"{f}:build", hardware="xeon-gold-5120", window_s=0.0, repeats=1, warmup=0, layer_runs=2,
                       meter="none")
    keys = {x.key: x for x in mm.layers}
    assert keys["a"].measured_s > 0 and keys["b"].measured_s > 0 and keys["(other ops)"].predicted_s is None
    assert any("forward hooks" in n and "symbolic_trace failed" in n for n in mm.notes)
