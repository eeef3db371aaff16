"""Fit the layer-wise (seed 000) predictor's parameter files and print how well they do.

    .venv/bin/python scripts/fit_layerwise.py            # write params/layerwise-*.json
    .venv/bin/python scripts/fit_layerwise.py --check    # write nothing; exit 1 if a file would change
    .venv/bin/python benchmarks/layerwise_accuracy.py    # the accuracy tables (imports this file)

Data (``--data``, default ../shared/data):

* ``cpu-layers-getzner/*.csv``: random configs of 7 layer types on a Xeon Gold 5120 (2 cores).
  Target = ``cpu_energy`` (kWh per measurement window) x 3.6e6 / ``forward_passes`` = J per pass
  (``energy_consumed`` is mostly codecarbon's invented RAM power: not used). The shipped
  ``layerwise-xeon-gold-5120.json`` also adds ``architecture-layers/01_*-architecture-configs-raw.csv``
  (the AlexNet/VGG layer configs at random batch sizes; seed 000 App. A.3).
* ``gpu-operators-nicolai/operator_measurements.csv``: ``finalbench_all_operations_A30`` and
  ``..._RTX2080TI`` rows (torchvision operators at batch 32); target ``energy_per_iter_mJ`` / 1000.

Deterministic: fixed CV folds (seed 0), sorted rows, same data -> same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from fxenergy.datasets import (  # noqa: E402,F401 - the readers moved to the package
    GETZNER_FILES,
    KWH,
    NICOLAI_SOURCES,
    default_data,
    getzner_arch_configs,
    getzner_arch_runs,
    getzner_random,
    nicolai_rows,
    parse_operator,
    parse_project,
)
from fxenergy.predictors.interface import params_dir  # noqa: E402
from fxenergy.predictors.layerwise import FEATURES, LayerwisePredictor  # noqa: E402


def fit_all(data: Path) -> dict[str, dict]:
    """Every shipped layerwise artifact, by file stem."""
    out = {}
    cpu = getzner_random(data) + getzner_arch_configs(data)
    clean = [{k: v for k, v in r.items() if k != "macs_data"} for r in cpu]
    p = LayerwisePredictor(hardware="xeon-gold-5120", fitted_on={
        "dataset": "cpu-layers-getzner (JohannesGetzner/dl-energy-estimator @2279b0a): random configs of 7 layer "
                   "types + AlexNet/VGG layer configs (architecture-layers/01_*-architecture-configs-raw.csv)",
        "target": "cpu_energy kWh x 3.6e6 / forward_passes = J per forward pass (RAPL package, 2 cores of a Xeon Gold 5120)",
        "rows": len(clean)}).fit(clean)
    out["layerwise-xeon-gold-5120"] = p.to_json()
    for hw, source in NICOLAI_SOURCES.items():
        rows = [r for r in nicolai_rows(data, source) if r["layer_type"] in FEATURES]
        p = LayerwisePredictor(hardware=hw, fitted_on={
            "dataset": f"gpu-operators-nicolai (ConstantinNicolai/ml-operator-profiling @bd3aace), {source}",
            "target": "energy_per_iter_mJ / 1000 = J per forward call of the operator (nvidia-smi board power)",
            "rows": len(rows)}).fit(rows)
        out[f"layerwise-{hw}"] = p.to_json()
    return out


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    changed = []
    for stem, doc in fit_all(args.data).items():
        path = params_dir() / f"{stem}.json"
        text = dumps(doc)
        if args.check:
            if not path.exists() or path.read_text() != text:
                changed.append(stem)
        else:
            path.write_text(text)
            chosen = {k: v["candidate"] for k, v in doc["params"]["regressors"].items()}
            print(f"wrote {path.relative_to(ROOT)}: {chosen}")
    if changed:
        print("would change: " + ", ".join(changed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
