"""fxenergy collect: deterministic configs, shards + merge = one run, resume, interrupts, fit on it."""

from __future__ import annotations

import csv
import json
import math

import pytest

from fxenergy.cli import main
from fxenergy.measure import collect as col
from fxenergy.measure.collect import COLUMNS, CONFIG_COLUMNS, CollectSpec
from fxenergy.predictors.layerwise import OutOfDomainError

# tiny layers and zero-length windows (one call each), one configuration of every kind
TINY = dict(count=12, seed=7, window_s=0.0, repeats=1, warmup=0, max_macs=2e6, max_bytes=2e6, meter="none")


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def config_part(rs):
    return [{k: r[k] for k in CONFIG_COLUMNS} for r in rs]


def test_configs_are_deterministic_and_within_budgets():
    a = [col.sample_config(3, i, k, max_macs=1e7, max_bytes=1e7) for i, k in enumerate(col.KINDS * 3)]
    b = [col.sample_config(3, i, k, max_macs=1e7, max_bytes=1e7) for i, k in enumerate(col.KINDS * 3)]
    assert a == b
    assert all(c.macs() <= 1e7 for c in a)
    assert col.sample_config(4, 0, "conv2d", max_macs=1e7) != col.sample_config(3, 0, "conv2d", max_macs=1e7)
    g = col.sample_config(0, 5, "grouped-conv2d", max_macs=1e7).features
    assert g["groups"] >= 2 and g["in_channels"] % g["groups"] == 0 and g["out_channels"] % g["groups"] == 0
    p = col.sample_config(0, 1, "maxpool2d").features
    assert p["padding"] <= p["kernel_size"] // 2 and 1 <= p["batch_size"] <= 256
    with pytest.raises(col.UserInputError, match="raise the budgets"):
        col.sample_config(0, 0, "conv2d", max_macs=1, tries=50)


def test_sharded_collection_merges_to_the_unsharded_rows(tmp_path):
    whole = tmp_path / "whole.csv"
    col.collect(CollectSpec(output=str(whole), **TINY))
    for i in range(2):
        col.collect(CollectSpec(output=str(tmp_path / "c.csv"), shard=(i, 2), **TINY))
    shard0, shard1 = col.shard_path(tmp_path / "c.csv", (0, 2)), col.shard_path(tmp_path / "c.csv", (1, 2))
    assert shard0.name == "c.shard0of2.csv" and len(rows(shard0)) == 6
    assert main(["collect", "merge", str(shard1), str(shard0), "-o", str(tmp_path / "merged.csv")]) == 0
    merged, one = rows(tmp_path / "merged.csv"), rows(whole)
    assert len(one) == 12 and config_part(merged) == config_part(one)  # same configs; measured values differ
    assert {r["layer_type"] for r in one} >= {"Conv2d", "MaxPool2d", "Linear", "ReLU", "Softmax", "BatchNorm2d",
                                              "LayerNorm", "Attention", "Embedding"}
    for r in one:
        assert float(r["duration_s"]) > 0 and r["energy_j"] == "" and r["meter"] == "wallclock"


def test_resume_skips_done_rows_and_drops_a_torn_line(tmp_path):
    out = tmp_path / "c.csv"
    spec = CollectSpec(output=str(out), **TINY)
    stop_at = 5

    def interrupt(done, total, label):
        if done == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        col.collect(spec, progress=interrupt)
    got = rows(out)
    assert len(got) == stop_at and list(got[0]) == list(COLUMNS)  # a valid file of the completed rows
    with open(out, "a") as f:
        f.write("7-99,7,99,random,Conv2d,3")  # a row torn by a crash
    s = col.collect(spec)
    assert s["skipped"] == stop_at and s["written"] == 12 - stop_at
    final = rows(out)
    assert [int(r["index"]) for r in final] == list(range(stop_at)) + list(range(stop_at, 12))
    assert col.collect(spec)["written"] == 0  # all done


def test_model_layers_mode_and_training_mode(tmp_path):
    spec = CollectSpec(output=str(tmp_path / "m.csv"), count=4, models=("alexnet",), window_s=0.0, repeats=1,
                       warmup=0, max_bytes=4e6, meter="none", mode="training")
    col.collect(spec)
    got = rows(tmp_path / "m.csv")
    assert [r["source"] for r in got] == ["model:alexnet:features.0", "model:alexnet:features.1",
                                          "model:alexnet:features.2", "model:alexnet:features.3"]
    assert got[0]["kernel_size"] == "11" and got[0]["in_channels"] == "3" and got[0]["mode"] == "training"


def test_other_header_refused_and_bad_options_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["collect", "-o", str(bad), "--count", "2", "--meter", "none"]) == 2
    assert main(["collect", "--shard", "2/2", "-o", str(tmp_path / "x.csv")]) == 2
    assert main(["collect", "--layers", "conv3d", "-o", str(tmp_path / "x.csv")]) == 2
    assert main(["collect", "merge", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "y.csv")]) == 2
    assert main(["collect", "--device", "tpu", "-o", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and all(e.startswith("fxenergy: error: ") for e in err)
    assert "other columns" in err[0] and "0 <= i < n" in err[1] and "conv3d" in err[2]


def test_cli_collect_time_only_then_fit_layerwise_predicts(tmp_path, capsys):
    out = tmp_path / "layers.csv"
    args = ["collect", "-o", str(out), "--count", "36", "--seed", "1", "--layers", "linear,relu", "--window", "0",
            "--repeats", "1", "--warmup", "1", "--max-macs", "3e6", "--max-bytes", "4e6"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "measured: time only" in text and "--target duration_s" in text
    # energy_j is empty: fitting it is refused with the reason; duration_s fits
    assert main(["fit", "layerwise", str(out), "--hardware", "xeon-gold-5120", "-o", str(tmp_path / "e.json")]) == 2
    assert "fit --target duration_s" in capsys.readouterr().err
    assert main(["fit", "layerwise", str(out), "--hardware", "local", "--target", "duration_s",
                 "-o", str(tmp_path / "t.json")]) == 0
    art = json.loads((tmp_path / "t.json").read_text())
    assert art["params"]["target"] == "duration_s" and sorted(art["params"]["regressors"]) == ["Linear", "ReLU"]
    from fxenergy.predictors.layerwise import LayerwisePredictor

    p = LayerwisePredictor.from_json(art)
    rows = [r for r in csv.DictReader(out.open()) if r["layer_type"] == "Linear"]
    big = max(rows, key=lambda r: float(r["macs"]))  # the fit is anchored by its largest rows, whatever the noise
    features = {k: float(big[k]) for k in ("batch_size", "input_size", "output_size")}
    assert 0 < p.predict_layer("Linear", features) < math.inf  # seconds per pass (noisy here: docs/validation.md)
    try:  # a layer far below the measured ones: a positive figure, or refused with the reason, never a silent 0
        tiny = p.predict_layer("Linear", {"batch_size": 1, "input_size": 1, "output_size": 1})
    except OutOfDomainError as e:
        assert "predicts <= 0" in str(e)
    else:
        assert 0 < tiny < math.inf
    with pytest.raises(col.UserInputError, match="fitted on duration_s"):
        p.predict(None)


@pytest.mark.slow
def test_submitit_local_executor_stands_in_for_slurm(tmp_path):
    submitit = pytest.importorskip("submitit")
    ex = submitit.LocalExecutor(folder=tmp_path / "jobs")
    ex.update_parameters(timeout_min=5)
    spec = CollectSpec(output=str(tmp_path / "c.csv"), **{**TINY, "count": 6})
    jobs = col.submit_slurm(spec, 2, executor=ex)
    summaries = [j.result() for j in jobs]
    assert [s["written"] for s in summaries] == [3, 3]
    col.merge([s["path"] for s in summaries], tmp_path / "merged.csv")
    col.collect(CollectSpec(output=str(tmp_path / "one.csv"), **{**TINY, "count": 6}))
    assert config_part(rows(tmp_path / "merged.csv")) == config_part(rows(tmp_path / "one.csv"))
