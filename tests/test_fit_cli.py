"""`fxenergy fit`: a backend fitted on a user's CSV table, written as an artifact `report --params` uses."""

from __future__ import annotations

import csv
import json
import random

import pytest

from fxenergy.cli import main


def _write(path, rows):
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_fit_layerwise_then_report(tmp_path, capsys):
    rng = random.Random(0)
    rows = []
    for _ in range(60):  # Linear layers whose energy is 1 nJ per MAC plus 1 mJ (2 nJ would be ~120 W on a 70 W T4:
        # the bounds check refuses such a fit's report, issue 12)
        b, i, o = rng.randint(1, 64), rng.randint(16, 2048), rng.randint(16, 2048)
        rows.append({"layer_type": "Linear", "batch_size": b, "input_size": i, "output_size": o,
                     "energy_j": 1e-9 * b * i * o + 1e-3})
    table = tmp_path / "m.csv"
    _write(table, rows)
    out = tmp_path / "lw.json"
    assert main(["fit", "layerwise", str(table), "--hardware", "t4", "-o", str(out)]) == 0
    art = json.loads(out.read_text())
    assert art["backend"] == "layerwise" and art["hardware"] == "t4"
    capsys.readouterr()
    code = main(["report", "alexnet", "--hardware", "t4", "--predictor", "layerwise", "--params", str(out),
                 "--format", "json", "--group-by", "op"])
    d = json.loads(capsys.readouterr().out)
    assert code == 0
    capsys.readouterr()
    assert main(["report", "alexnet", "--hardware", "t4", "--predictor", str(out), "--format", "json"]) == 0
    same = json.loads(capsys.readouterr().out)  # --predictor FILE.json: the artifact names its backend
    assert same["info"]["predictor"] == "layerwise" and same["totals"]["energy_j"] == d["totals"]["energy_j"]
    linear = sum(r["energy_j"] for r in d["rows"] if r["module_type"] == "Linear")
    macs = sum(r["macs"] for r in d["rows"] if r["module_type"] == "Linear")
    # three Linear layers: 3 * 1 mJ + 1 nJ per MAC, recovered by the fitted regression
    assert linear == pytest.approx(3e-3 + 1e-9 * macs, rel=0.05)


def test_fit_cache_recovers_constants(tmp_path):
    from fxenergy.predictors.cache import CachePredictor

    truth = CachePredictor.from_json(json.loads(
        (__import__("fxenergy.predictors.interface", fromlist=["params_dir"]).params_dir()
         / "cache-xeon-gold-6154.json").read_text()))
    from fxenergy.hardware import load_profile
    from fxenergy.predictors.cache import Workload, design, levels_of

    prof = load_profile("xeon-gold-6154")
    rng = random.Random(1)
    rows = []
    for _ in range(40):
        width, depth, batch = rng.choice([16, 64, 256, 1024, 4096]), rng.randint(1, 6), rng.choice([8, 32, 128])
        params = (width * width * depth) * 4
        w = Workload(param_bytes=params, grad_bytes=params, activation_bytes=batch * width * depth * 4,
                     inter_layer_bytes=tuple([2 * batch * width * 4] * depth), batch_bytes=2 * batch * width * 4,
                     flops_forward=2.0 * batch * width * width * depth, flops_backward=4.0 * batch * width * width * depth,
                     mode="training", epochs=rng.randint(1, 20), train_batches=100, test_batches=10)
        q = design(w, levels_of(prof))
        e = sum(q[k] * truth.constants_[k] for k in q)
        rows.append({**{k: getattr(w, k) for k in ("param_bytes", "grad_bytes", "activation_bytes", "batch_bytes",
                                                  "flops_forward", "flops_backward", "mode", "epochs",
                                                  "train_batches", "test_batches")},
                     "inter_layer_bytes": ";".join(map(str, w.inter_layer_bytes)), "energy_j": e})
    table = tmp_path / "runs.csv"
    _write(table, rows)
    out = tmp_path / "cache.json"
    assert main(["fit", "cache", str(table), "--hardware", "xeon-gold-6154", "-o", str(out)]) == 0
    fitted = CachePredictor.from_json(json.loads(out.read_text()))
    for r in rows[:5]:  # the fitted constants reproduce the table's energies
        w = Workload(**{k: v for k, v in r.items() if k not in ("energy_j", "inter_layer_bytes")},
                     inter_layer_bytes=tuple(int(x) for x in r["inter_layer_bytes"].split(";")))
        q = design(w, levels_of(prof))
        assert sum(q[k] * fitted.constants_[k] for k in q) == pytest.approx(r["energy_j"], rel=0.02)


@pytest.mark.parametrize("argv, needle", [
    (["fit", "layerwise", "/nonexistent.csv", "--hardware", "t4", "-o", "x.json"], "cannot read"),
    (["fit", "layerwise", "{empty}", "--hardware", "t4", "-o", "x.json"], "no rows"),
    (["fit", "layerwise", "{table}", "--hardware", "toaster", "-o", "x.json"], "toaster"),
])
def test_fit_errors(tmp_path, capsys, argv, needle):
    (tmp_path / "empty.csv").write_text("energy_j\n")
    (tmp_path / "t.csv").write_text("layer_type,energy_j\nLinear,1\n")
    argv = [a.replace("{empty}", str(tmp_path / "empty.csv")).replace("{table}", str(tmp_path / "t.csv")) for a in argv]
    argv[-1] = str(tmp_path / argv[-1])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
