"""Seed 002's online estimators (Eq. 1 power-based, Eq. 2 epoch-energy-based) replayed epoch by epoch.

    uv run python benchmarks/training_online.py [--runs 30] [--real-epochs 30] [--no-real]

Two sources of per-epoch traces, each replayed through ``fxenergy.training.online.project`` as a
training loop would see them (only the epochs seen so far), for windows w = 1..10 (seed 002 Fig. 10):

1. **Synthetic traces with a warm-up transient** (fixed seed): per run, planned epochs U[40, 120],
   stable power U[100, 300] W ramping up from (1 - a)·P, a ~ U[0.2, 0.5], with time constant
   τ ~ U[1.5, 4] epochs; stable epoch time U[30, 120] s, the first epoch (1 + b)× longer, b ~ U[0.2, 1];
   2% power and 1% time noise per epoch. The truth is the sum over all planned epochs.
2. **A real CPU training run on this machine**: a small CNN on scikit-learn's digits data (1,797 8×8
   images, batch 32, SGD), one thread, each epoch timed with the wall clock. No energy meter is
   readable here (no RAPL, no GPU), so this part is **time only**: the error is that of the projected
   training duration (Eq. 1/2 with a constant power have the same relative error).

Stabilising epoch: the seed's rule (epoch 10) and FLUSS (stumpy) on the epochs seen so far (power for
the synthetic runs, epoch time for the real one). Reported: RMSE (kJ) and mean |error| % of the run's
energy (synthetic), |error| % of the run's duration (real), per w and detector.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fxenergy.training.online import EpochRecord, project  # noqa: E402

WINDOWS = range(1, 11)


def synthetic_runs(n: int, seed: int = 0) -> list[tuple[list[EpochRecord], float]]:
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(n):
        epochs = int(rng.integers(40, 121))
        p_s, t_s = rng.uniform(100, 300), rng.uniform(30, 120)
        a, tau, b = rng.uniform(0.2, 0.5), rng.uniform(1.5, 4.0), rng.uniform(0.2, 1.0)
        e = np.arange(epochs)
        power = p_s * (1 - a * np.exp(-e / tau)) * (1 + 0.02 * rng.standard_normal(epochs))
        dur = t_s * (1 + 0.01 * rng.standard_normal(epochs))
        dur[0] *= 1 + b
        recs = [EpochRecord(i + 1, float(dur[i]), float(power[i] * dur[i])) for i in range(epochs)]
        runs.append((recs, float(sum(r.energy_j for r in recs))))
    return runs


def first_projection(recs: list[EpochRecord], planned: int, w: int, method: str):
    """The projection at the first epoch where ``w`` stable epochs exist (as a live loop would get it)."""
    for n in range(1, len(recs) + 1):
        p = project(recs[:n], planned, window=w, method=method)
        if p is not None:
            return p
    return None


def replay_synthetic(n_runs: int) -> None:
    runs = synthetic_runs(n_runs)
    print(f"Synthetic traces: {n_runs} runs, {min(len(r) for r, _ in runs)}..{max(len(r) for r, _ in runs)} epochs, "
          f"true energy {min(t for _, t in runs) / 1e3:.0f}..{max(t for _, t in runs) / 1e3:.0f} kJ")
    print("| w | detector | epochs seen (median) | Eq. 1 RMSE (kJ) | Eq. 1 mean abs % | Eq. 2 RMSE (kJ) | Eq. 2 mean abs % "
          "| truth inside Eq. 2 band |")
    print("|---|---|---|---|---|---|---|---|")
    for method in ("rule", "fluss"):
        for w in WINDOWS:
            e1, e2, seen, inside = [], [], [], 0
            for recs, truth in runs:
                p = first_projection(recs, len(recs), w, method)
                e1.append(p.power_based_j - truth)
                e2.append(p.epoch_energy_based_j - truth)
                seen.append(p.epochs_seen)
                inside += p.band_j[0] <= truth <= p.band_j[1]
                e1[-1], e2[-1] = e1[-1] / 1e3, e2[-1] / 1e3
            truths = np.array([t for _, t in runs]) / 1e3
            r1, r2 = np.sqrt(np.mean(np.square(e1))), np.sqrt(np.mean(np.square(e2)))
            m1, m2 = np.mean(np.abs(e1) / truths) * 100, np.mean(np.abs(e2) / truths) * 100
            print(f"| {w} | {method} | {np.median(seen):.0f} | {r1:.2f} | {m1:.2f} | {r2:.2f} | {m2:.2f} | "
                  f"{inside}/{len(runs)} |")


def real_cpu_run(epochs: int) -> list[EpochRecord]:
    import torch
    from sklearn.datasets import load_digits

    torch.set_num_threads(1)
    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(64 * 64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    recs = []
    for ep in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        recs.append(EpochRecord(ep + 1, time.perf_counter() - t0, None))
    print(f"Real CPU run (time only: no energy meter readable here): {epochs} epochs of a small CNN on digits, "
          f"final loss {loss.item():.3f}; epoch times {', '.join(f'{r.duration_s:.2f}' for r in recs[:12])} ... s; "
          f"total {sum(r.duration_s for r in recs):.1f} s")
    return recs


def replay_real(recs: list[EpochRecord]) -> None:
    truth = sum(r.duration_s for r in recs)
    print("| w | detector | epochs seen | stable from | projected duration (s) | abs error % |")
    print("|---|---|---|---|---|---|")
    for method in ("rule", "fluss"):
        for w in WINDOWS:
            p = first_projection(recs, len(recs), w, method)
            if p is None:
                print(f"| {w} | {method} | - | - | not enough epochs | - |")
                continue
            print(f"| {w} | {method} | {p.epochs_seen} | {p.stable_from} | {p.duration_s:.1f} | "
                  f"{abs(p.duration_s / truth - 1) * 100:.2f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--real-epochs", type=int, default=30)
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--stumpy-check", action="store_true",
                    help="compare the NumPy FLUSS with stumpy.fluss on the synthetic power series (JIT: minutes)")
    args = ap.parse_args()
    if args.stumpy_check:
        from fxenergy.training.online import fluss_regime

        diffs = []
        for recs, _ in synthetic_runs(args.runs):
            x = [r.power_w for r in recs]
            diffs.append(abs(fluss_regime(x, 3, use_stumpy=False) - fluss_regime(x, 3, use_stumpy=True)))
        print(f"NumPy FLUSS vs stumpy.fluss regime index on {len(diffs)} synthetic power series: "
              f"identical {sum(d == 0 for d in diffs)}, within 2 epochs {sum(d <= 2 for d in diffs)}, "
              f"largest difference {max(diffs)} epochs\n")
    replay_synthetic(args.runs)
    if not args.no_real:
        print()
        replay_real(real_cpu_run(args.real_epochs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
