"""A plain PyTorch training loop with seed 002's online estimator projecting the whole run.

    uv run python examples/training_tracker_loop.py [--epochs 14] [--assumed-power-w W] [--budget-j J]

Trains a small CNN on scikit-learn's digits data. ``TrainingTracker`` times each epoch with the best
meter it finds (NVML, RAPL, else the wall clock, time only); after the stabilising epoch (seed 002's
rule: epoch 10; here ``stable_from=3`` so the short demo reaches it) and ``window`` stable epochs it
projects the run's duration and, where energy is known, Eq. 1 and Eq. 2 with a band. With
``--budget-j`` the loop stops once the projection exceeds the budget (energy-aware early stopping).
Without a meter, ``--assumed-power-w`` turns measured time into energy (stated in the output).
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_digits

from fxenergy.training.online import TrainingTracker


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--assumed-power-w", type=float, default=None)
    ap.add_argument("--budget-j", type=float, default=None)
    args = ap.parse_args()

    torch.manual_seed(0)
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(16 * 64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    tracker = TrainingTracker(planned_epochs=args.epochs, window=3, stable_from=3,
                              assumed_power_w=args.assumed_power_w, energy_budget_j=args.budget_j)
    with tracker:
        for epoch in range(args.epochs):
            for i in range(0, len(x), 64):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
                loss.backward()
                opt.step()
            p = tracker.epoch_end()
            line = f"epoch {epoch + 1:>2}: {tracker.records[-1].duration_s:.3f} s, loss {loss.item():.3f}"
            if p is not None:
                line += f"; projected run {p.duration_s:.2f} s"
                if p.energy_j is not None:
                    line += (f", Eq. 1 {p.power_based_j:.1f} J, Eq. 2 {p.epoch_energy_based_j:.1f} J "
                             f"[{p.band_j[0]:.1f}, {p.band_j[1]:.1f}]")
            print(line)
            if tracker.should_stop:
                print(f"stopping: projected energy over the {args.budget_j:g} J budget")
                break
    print(f"measured: {sum(r.duration_s for r in tracker.records):.2f} s over {len(tracker.records)} epochs; "
          f"energy source: {tracker.energy_source}")


if __name__ == "__main__":
    main()
