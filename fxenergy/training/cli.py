"""``fxenergy train-estimate MODEL --epochs N --train-samples S --batch-size B ...``: the run-level estimate.

:func:`add_parser` is registered by :mod:`fxenergy.cli`, which also maps errors to exit code 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from fxenergy.errors import UserInputError
from fxenergy.options import OPTIMIZERS

__all__ = ["add_parser", "run"]

DEFAULT_HARDWARE = "a100-80gb-pcie"


def _int(text: str) -> int:
    # Range checks (zero, negative) happen in estimate_training, so the API and the CLI say the same line.
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from fxenergy.training.carbon import DEFAULT_PUE, PUE_SOURCE

    t = sub.add_parser(
        "train-estimate", help="energy, time and CO2e of a whole training run, before it runs",
        description="Estimate a whole training run from the model's graph: steps per epoch (last partial batch "
                    "included) x the training step's forward/backward/optimizer cost, evaluation passes, data "
                    "loading and the per-pass/per-run overheads; totals in J, kWh, hours and gCO2e.")
    t.add_argument("model", help="a name from `fxenergy models`, or path/to/file.py:factory")
    t.add_argument("--epochs", type=_int, required=True)
    t.add_argument("--train-samples", type=_int, required=True, help="training samples per epoch")
    t.add_argument("--val-samples", type=_int, default=0, help="validation samples evaluated every epoch (default 0)")
    t.add_argument("--batch-size", type=_int, required=True)
    t.add_argument("--val-batch-size", type=_int, default=None, help="default: --batch-size")
    t.add_argument("--drop-last", action="store_true", help="drop the last partial training batch (DataLoader drop_last)")
    t.add_argument("--seq-len", type=_int, default=128, help="tokens per sequence (text models)")
    t.add_argument("--image-size", type=_int, default=None, help="image side in pixels (vision models)")
    t.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw")
    t.add_argument("--hardware", default=DEFAULT_HARDWARE, help=f"hardware profile (default {DEFAULT_HARDWARE})")
    t.add_argument("--predictor", default=None, help="energy backend of the step (default as for `report`)")
    t.add_argument("--params", default=None, help="parameter set of the chosen predictor")
    t.add_argument("--power-limit-w", type=_float, default=None, help="board power limit (W)")
    t.add_argument("--pass-overhead-j", type=_float, default=None, help="k_p: J per pass over the data (seed 003 Eq. 7)")
    t.add_argument("--run-overhead-j", type=_float, default=None, help="k_e: J per run (seed 003 Eq. 7)")
    t.add_argument("--epoch-overhead-s", type=_float, default=None, help="fixed seconds per epoch at idle power")
    t.add_argument("--h2d-gbps", type=_float, default=None, help="host-to-device copy rate, GB/s (default 12)")
    t.add_argument("--region", default=None, help="ISO country code, country name or cloud provider:region "
                                                 "(default: world mean)")
    t.add_argument("--carbon-intensity", type=_float, default=None, metavar="G_PER_KWH",
                   help="grid intensity in gCO2e/kWh (overrides --region's figure)")
    t.add_argument("--pue", type=_float, default=DEFAULT_PUE, help=f"power usage effectiveness (default {DEFAULT_PUE}: "
                                                                   f"{PUE_SOURCE}; 1.0 for a desktop)")
    t.add_argument("--group-by", choices=("phase", "layer"), default="phase")
    t.add_argument("--top", type=_int, default=15, help="layers shown with --group-by layer (default 15)")
    t.add_argument("--format", choices=("table", "json"), default="table")
    t.add_argument("--output", "-o", default=None, help="write the report to FILE instead of stdout")
    t.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return t


def run(args: argparse.Namespace, check_output_path: Any = None) -> int:
    import torch

    from fxenergy._files import write_atomic
    from fxenergy.models import build_model
    from fxenergy.training.carbon import carbon_intensity, check_pue
    from fxenergy.training.run import estimate_training, replace_overheads

    if check_output_path is not None:
        check_output_path(args.output)
    for name in ("epochs", "train_samples", "batch_size"):
        if getattr(args, name) <= 0:
            raise UserInputError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.val_samples < 0:
        raise UserInputError(f"--val-samples must be >= 0, got {args.val_samples}")
    if args.batch_size > args.train_samples:
        raise UserInputError(f"--batch-size {args.batch_size} is larger than the training set "
                             f"(--train-samples {args.train_samples})")
    if args.top <= 0:
        raise UserInputError(f"--top must be a positive integer, got {args.top}")
    check_pue(args.pue)
    carbon_intensity(args.region, g_per_kwh=args.carbon_intensity)  # an unknown region fails before any capture
    built = build_model(args.model, batch_size=args.batch_size, seq_len=args.seq_len, image_size=args.image_size,
                        dtype=getattr(torch, args.dtype))
    from fxenergy.resolve import resolve_hardware as _resolve_hardware
    from fxenergy.training.run import _batch_of, _slice_batch, default_overheads

    example = built.args
    if built.args and _batch_of(built.args) != args.batch_size:  # a factory that brought its own inputs
        example = _slice_batch(built.args, _batch_of(built.args), args.batch_size)

    profile, _ = _resolve_hardware(args.hardware)
    if profile is None:
        raise UserInputError("a training estimate needs a hardware profile (see `fxenergy hardware list`)")
    overheads, note = default_overheads(profile)
    overheads = replace_overheads(overheads, k_p_j=args.pass_overhead_j, k_e_j=args.run_overhead_j,
                                  epoch_overhead_s=args.epoch_overhead_s,
                                  host_to_device_bytes_per_s=None if args.h2d_gbps is None else args.h2d_gbps * 1e9)
    est = estimate_training(
        built.model, example, example_kwargs=built.kwargs or None, epochs=args.epochs,
        train_samples=args.train_samples, val_samples=args.val_samples, val_batch_size=args.val_batch_size,
        hardware=args.hardware if args.hardware.endswith(".json") else profile, predictor=args.predictor,
        params=args.params, optimizer=args.optimizer, drop_last=args.drop_last, overheads=overheads,
        power_limit_w=args.power_limit_w, region=args.region, carbon_intensity_g_per_kwh=args.carbon_intensity,
        pue=args.pue, name=built.name)
    if note and overheads.source.startswith("none") or (note and "Table 4" in note):
        est.notes.insert(0, note)
    text = est.to_json() if args.format == "json" else render_table(est, args.group_by, args.top)
    if args.output is None:
        sys.stdout.write(text)
    else:
        write_atomic(args.output, text, make_parents=False)
    return 0


def render_table(est: Any, group_by: str = "phase", top: int = 15) -> str:
    """Plain-text report: header, per-phase or per-layer rows, totals, per-epoch figures, notes."""
    lines = [
        f"{est.model} training on {est.hardware} ({est.predictor} step energy"
        + (f", {est.parameter_set}" if est.parameter_set else "") + ")",
        f"{est.epochs} epochs x {est.train_steps_per_epoch} training steps (batch {est.batch_size}, last batch "
        f"{est.last_train_batch})" + (f" + {est.val_steps_per_epoch} evaluation steps (batch {est.val_batch_size}, "
                                      f"last {est.last_val_batch})" if est.val_steps_per_epoch else "")
        + " per epoch",
        "",
    ]
    total = est.total_energy_j
    if group_by == "phase":
        lines.append(f"{'phase':<28} {'count':>10} {'energy_j':>14} {'duration_s':>12} {'share':>7}")
        for p in est.phases:
            lines.append(f"{p.phase:<28} {p.count:>10} {p.energy_j:>14.4g} {p.duration_s:>12.4g} "
                         f"{p.energy_j / total:>7.1%}")
    else:
        lines.append(f"{'layer':<40} {'type':<18} {'energy_j':>14} {'duration_s':>12} {'share':>7}")
        shown = est.layers[:top]
        for r in shown:
            lines.append(f"{r.key[:40]:<40} {r.module_type[:18]:<18} {r.energy_j:>14.4g} {r.duration_s:>12.4g} "
                         f"{r.energy_j / total:>7.1%}")
        rest = est.layers[top:]
        if rest:
            e = sum(r.energy_j for r in rest)
            lines.append(f"{f'({len(rest)} others)':<40} {'':<18} {e:>14.4g} {sum(r.duration_s for r in rest):>12.4g} "
                         f"{e / total:>7.1%}")
    lines += [
        f"{'total':<28} {'':>10} {total:>14.4g} {est.total_duration_s:>12.4g} {1:>7.1%}",
        "",
        f"per epoch: {est.per_epoch_energy_j:.6g} J in {est.per_epoch_duration_s:.6g} s "
        f"(training steps alone {est.per_epoch_train_energy_j:.6g} J)",
        f"run: {total:.6g} J = {est.energy_kwh:.6g} kWh (device), {est.hours:.4g} h; "
        f"{est.facility_energy_kwh:.6g} kWh with PUE {est.pue:g}",
        f"carbon: {est.gco2e:.6g} gCO2e = {est.energy_kwh:.4g} kWh x {est.intensity.g_per_kwh:g} g/kWh "
        f"({est.intensity.name}" + (f", {est.intensity.year}" if est.intensity.year else "") + f") x PUE {est.pue:g}",
        f"intensity source: {est.intensity.source}",
        f"overheads: k_p {est.overheads.k_p_j:g} J/pass, k_e {est.overheads.k_e_j:g} J/run, "
        f"{est.overheads.epoch_overhead_s:g} s/epoch, host->device {est.overheads.host_to_device_bytes_per_s / 1e9:g} "
        f"GB/s ({est.overheads.source})",
    ]
    lines += [f"note: {n}" for n in est.notes]
    return "\n".join(lines) + "\n"
