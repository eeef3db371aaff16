"""Fit the seed 003 cache model to the del Rey training runs (GPU energy) and write the artifacts.

    .venv/bin/python scripts/fit_cache.py [--data ../shared/data] [--no-write]

Data: ``training-delrey/dl-training-energy-consumption-dataset.csv`` (GAISSA-UPC/seaa2023_ect @6fa5af6,
CC-BY-4.0): Keras transfer-learning runs at 128x128 input, batch 32, on RTX 3090 / RTX 3070 / GTX 750 Ti,
GPU energy only (nvidia-smi). Only the architectures torchvision has are used (mobilenet_v2, resnet50,
vgg16); NASNetMobile and Xception rows are dropped.

Workload per run: ``fxenergy.models.build_model(arch, batch_size=32, image_size=128)`` annotated in
training mode (``method="symbolic_trace"``: the make_fx joint graph; optimizer adamw: upstream used Adam for the head and SGD for the fine-tune; fxenergy has
adamw/sgd only), then ``workload_of(gm, mode="training", epochs=n, train_batches=743, test_batches=318)``:
upstream runs ``steps_per_epoch = 23807 // 32 = 743`` and ``validation_steps = 10203 // 32 = 318``, and
the run's ``total seen images`` is exactly ``trained epochs * (743 + 318) * 32`` (checked below).

Fit per GPU profile by ``CachePredictor.fit`` (minimises sum log(E_hat/E)^2). Reported: in-sample,
leave-one-architecture-out (LOAO, where a GPU has more than one architecture) and 5-fold CV
(fixed seed) mean / median absolute percentage error of run energy. Artifacts are written with
``json.dumps(artifact, indent=1, sort_keys=True)`` to ``fxenergy/predictors/params/cache-<gpu>.json``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DATASET = "training-delrey"
CSV_NAME = "dl-training-energy-consumption-dataset.csv"
UPSTREAM = "GAISSA-UPC/seaa2023_ect @6fa5af6 (CC-BY-4.0)"
GPUS = {"NVIDIA GeForce RTX 3090": "rtx-3090", "NVIDIA GeForce RTX 3070": "rtx-3070",
        "NVIDIA GeForce GTX 750 Ti": "gtx-750-ti"}
ARCHS = {"mobilenet_v2": "mobilenet_v2", "resnet50": "resnet50", "vgg16": "vgg16"}
SKIPPED_ARCHS = ("nasnet_mobile", "xception")
BATCH, IMAGE, OPTIMIZER = 32, 128, "adamw"
PUBLISHED_GPU_MAPE = 2.74
CV_FOLDS, CV_SEED = 5, 0


def read_runs(data_dir: Path) -> tuple[list[dict], dict[str, int]]:
    """Rows of the CSV for the torchvision architectures, and how many rows each skipped arch drops."""
    with open(Path(data_dir) / DATASET / CSV_NAME, newline="") as fh:
        rows = list(csv.DictReader(fh))
    kept, dropped = [], {a: 0 for a in SKIPPED_ARCHS}
    for r in rows:
        arch = r["architecture"]
        if arch in SKIPPED_ARCHS:
            dropped[arch] += 1
            continue
        if arch not in ARCHS or r["gpu model"] not in GPUS:
            raise ValueError(f"unexpected row: {arch} on {r['gpu model']}")
        bs, epochs = int(r["batch size"]), int(r["trained epochs"])
        train_b, test_b = int(r["training size"]) // bs, int(r["validation size"]) // bs
        if bs != BATCH or int(r["total seen images"]) != epochs * (train_b + test_b) * bs:
            raise ValueError(f"run {arch}/{r['run']} on {r['gpu model']}: images seen do not match epochs x batches")
        kept.append({"arch": arch, "profile": GPUS[r["gpu model"]], "run": int(r["run"]), "epochs": epochs,
                     "train_batches": train_b, "test_batches": test_b, "energy_j": float(r["energy (MJ)"]) * 1e6})
    return kept, dropped


_WORKLOADS: dict = {}


def base_workload(arch: str):
    """Training workload of one batch-32 step of ``arch`` at 128x128 (epochs etc. set per run)."""
    if arch not in _WORKLOADS:
        import fxenergy
        from fxenergy.models import build_model
        from fxenergy.predictors.cache import workload_of

        b = build_model(ARCHS[arch], batch_size=BATCH, image_size=IMAGE)
        # the shipped constants were fitted on joint-graph workloads (auto's training capture before issue 12
        # moved it to record, whose activation sum is lower where one call hides intermediates): keep it
        r = fxenergy.annotate(b.model, b.args, mode="training", optimizer=OPTIMIZER, predictor="none",
                              method="symbolic_trace")
        _WORKLOADS[arch] = workload_of(r.graph_module, mode="training")
    return _WORKLOADS[arch]


def table_rows(runs: list[dict]) -> list[dict]:
    out = []
    for r in runs:
        w = dataclasses.replace(base_workload(r["arch"]), epochs=r["epochs"], train_batches=r["train_batches"],
                                test_batches=r["test_batches"], runs=1)
        out.append({"workload": w, "energy_j": r["energy_j"], "profile": r["profile"], "arch": r["arch"]})
    return out


def _fit(rows: list[dict], profile: str, fitted_on=None):
    from fxenergy.predictors.cache import CachePredictor

    return CachePredictor(hardware=profile, fitted_on=fitted_on).fit(
        [{"workload": r["workload"], "energy_j": r["energy_j"], "profile": r["profile"]} for r in rows])


def ape(pred, rows: list[dict]) -> np.ndarray:
    """Absolute percentage errors of ``pred`` (a fitted CachePredictor) on ``rows``."""
    from fxenergy.hardware import load_profile

    prof = load_profile(rows[0]["profile"])
    return np.array([abs(pred.total_j(r["workload"], prof) / r["energy_j"] - 1) * 100 for r in rows])


def _summ(errs: np.ndarray) -> dict:
    return {"mean_abs_pct_error": round(float(np.mean(errs)), 4), "median_abs_pct_error": round(float(np.median(errs)), 4),
            "rows": int(len(errs))}


def evaluate(rows: list[dict], profile: str) -> dict:
    """In-sample, LOAO (if >1 architecture) and 5-fold CV errors for one GPU."""
    res = {"in_sample": _summ(ape(_fit(rows, profile), rows))}
    archs = sorted({r["arch"] for r in rows})
    if len(archs) > 1:
        errs = []
        for a in archs:
            held = [r for r in rows if r["arch"] == a]
            errs.append(ape(_fit([r for r in rows if r["arch"] != a], profile), held))
        res["leave_one_architecture_out"] = _summ(np.concatenate(errs))
    perm = np.random.default_rng(CV_SEED).permutation(len(rows))
    folds = np.array_split(perm, CV_FOLDS)
    errs = []
    for f in folds:
        fs = set(f.tolist())
        errs.append(ape(_fit([r for i, r in enumerate(rows) if i not in fs], profile), [rows[i] for i in f]))
    res[f"cv{CV_FOLDS}"] = _summ(np.concatenate(errs))
    # reference, not the cache model: one free J/epoch per architecture, E = c_arch * epochs, fitted in-sample
    # in log space. The measured runs have a negative intercept (a fixed number of cheap frozen-base epochs,
    # then full fine-tuning), which no non-negative k_e can express, so this is about the best any workload
    # that scales with epochs can do on these rows.
    errs = []
    for a in archs:
        s = [r for r in rows if r["arch"] == a]
        n, e = np.array([r["workload"].epochs for r in s], float), np.array([r["energy_j"] for r in s])
        c = np.exp(np.mean(np.log(e / n)))
        errs.append(np.abs(c * n / e - 1) * 100)
    res["reference_per_arch_energy_per_epoch"] = _summ(np.concatenate(errs))
    return res


def fit_all(data_dir: Path = DEFAULT_DATA) -> tuple[dict[str, dict], dict[str, int]]:
    """``{profile: artifact}`` for every GPU with runs, and the dropped-row counts."""
    runs, dropped = read_runs(data_dir)
    rows = table_rows(runs)
    arts = {}
    for profile in GPUS.values():
        sub = [r for r in rows if r["profile"] == profile]
        if not sub:
            continue
        errors = evaluate(sub, profile)
        archs = sorted({r["arch"] for r in sub})
        fitted_on = {
            "dataset": f"../shared/data/{DATASET}/{CSV_NAME}",
            "source": UPSTREAM,
            "description": "del Rey et al. Keras transfer-learning runs (128x128, batch 32), GPU energy only "
                           "(nvidia-smi board power); 'energy (MJ)' column",
            "rows_used": len(sub),
            "rows_per_architecture": {a: sum(r["arch"] == a for r in sub) for a in archs},
            "rows_dropped_all_gpus": {"nasnet_mobile": dropped["nasnet_mobile"], "xception": dropped["xception"],
                                      "reason": "no torchvision equivalent"},
            "workload": f"fxenergy.models.build_model(<arch>, batch_size={BATCH}, image_size={IMAGE}) annotated in "
                        f"training mode, optimizer={OPTIMIZER}; epochs = 'trained epochs', train_batches = "
                        "training size // 32 = 743, test_batches = validation size // 32 = 318 (images seen "
                        "= epochs x 1061 x 32 exactly)",
            "caveats": "torchvision graphs stand in for the Keras models (1000-class heads, MobileNetV2 width 1.0 "
                       "vs Keras alpha=0.5; upstream trained a frozen base with Adam, then fine-tuned the whole "
                       "model with SGD): constants absorb these differences and are specific to this setup",
            "errors_pct": errors,
            "published_seed003_gpu_mean_abs_error_pct": PUBLISHED_GPU_MAPE,
            "script": "scripts/fit_cache.py",
        }
        arts[profile] = _fit(sub, profile, fitted_on).to_json()
    return arts, dropped


def format_table(arts: dict[str, dict], dropped: dict[str, int]) -> str:
    lines = [f"seed 003 cache model on {DATASET} (GPU energy per training run); dropped rows (all GPUs): "
             + ", ".join(f"{k} {v}" for k, v in dropped.items()) + f" ({sum(dropped.values())} of "
             f"{sum(dropped.values()) + sum(a['fitted_on']['rows_used'] for a in arts.values())})",
             f"{'gpu':<11} {'rows':>4} {'archs':<28} {'in-sample mean/med %':>21} {'LOAO mean/med %':>18} "
             f"{'5-fold CV mean/med %':>21} {'ref c_arch*n %':>15}  published"]
    for p, a in arts.items():
        e = a["fitted_on"]["errors_pct"]

        def cell(k, w, e=e):
            return (f"{e[k]['mean_abs_pct_error']:.2f} / {e[k]['median_abs_pct_error']:.2f}" if k in e else "n/a").rjust(w)
        lines.append(f"{p:<11} {a['fitted_on']['rows_used']:>4} {','.join(a['fitted_on']['rows_per_architecture']):<28} "
                     f"{cell('in_sample', 21)} {cell('leave_one_architecture_out', 18)} {cell('cv5', 21)} {cell('reference_per_arch_energy_per_epoch', 15)}  "
                     f"±{PUBLISHED_GPU_MAPE}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    a = ap.parse_args(argv)
    if not (a.data / DATASET / CSV_NAME).is_file():
        print(f"no {a.data / DATASET / CSV_NAME}", file=sys.stderr)
        return 2
    arts, dropped = fit_all(a.data)
    if not a.no_write:
        from fxenergy.predictors.interface import params_dir

        for p, art in arts.items():
            (params_dir() / f"cache-{p}.json").write_text(json.dumps(art, indent=1, sort_keys=True) + "\n")
    print(format_table(arts, dropped))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
