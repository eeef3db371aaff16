"""Compare two architectures' full training cost on a local GPU and on a cloud GPU (seed 002's take-away 2).

    uv run python examples/training_compare_cost.py [MODEL_A MODEL_B]

Each run: 10 epochs over 19,968 training and 4,992 validation images (64x64, batch 64: 312 + 78 steps) estimated from
the model's graph with ``fxenergy.estimate_training``: steps x the
training step's cost, evaluation, data loading, then kWh, hours and gCO2e. The local machine is an
RTX 3070 in Spain (grid intensity from codecarbon's data, PUE 1.0: a desktop); the cloud one an A100
80 GB in Google Cloud europe-west1 (that region's intensity, the default data-centre PUE 1.58).
Nothing is trained and no weights are loaded.
"""

from __future__ import annotations

import sys

import torch
import torchvision

import fxenergy

SETUPS = {
    "local RTX 3070, Spain": dict(hardware="rtx-3070", region="ESP", pue=1.0),
    "cloud A100, gcp:europe-west1": dict(hardware="a100-80gb-pcie", region="gcp:europe-west1"),
}


def main(a: str = "resnet18", b: str = "mobilenet_v3_small") -> None:
    print(f"{'model':<20} {'where':<30} {'kWh':>10} {'hours':>8} {'gCO2e':>9} {'J/epoch':>10}  step energy from")
    for name in (a, b):
        model = getattr(torchvision.models, name)()
        batch = torch.randn(64, 3, 64, 64)
        analyses: dict = {}  # one capture of each step, predicted on both devices
        for where, opts in SETUPS.items():
            est = fxenergy.estimate_training(model, batch, epochs=10, train_samples=19_968, val_samples=4_992,
                                             name=name, analyses=analyses, **opts)
            print(f"{name:<20} {where:<30} {est.energy_kwh:>10.4f} {est.hours:>8.3f} {est.gco2e:>9.2f} "
                  f"{est.per_epoch_energy_j:>10.0f}  {est.predictor} ({est.intensity.g_per_kwh:g} g/kWh x PUE {est.pue:g})")


if __name__ == "__main__":
    main(*sys.argv[1:3])
