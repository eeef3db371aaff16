"""The ``fxenergy measure`` subcommand (parser, runner and its table); :mod:`fxenergy.cli` registers it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fxenergy.errors import UserInputError

__all__ = ["add_parser", "run", "table_data"]

FORMATS = ("table", "json", "csv", "markdown")


def add_parser(sub: Any, positive_int: Any, dtypes: tuple[str, ...], default_hardware: str) -> None:
    from fxenergy.options import MODES, OPTIMIZERS

    m = sub.add_parser(
        "measure", help="run a model here and show measured time (and energy) beside the prediction",
        description="Run MODEL with random weights on the local device (warm-up, then measurement windows), "
                    "time it per layer with a timed torch.fx.Interpreter run, and print the measurement beside "
                    "fxenergy's prediction for this device. Energy is measured where RAPL (CPU) or NVML (GPU) is "
                    "readable; otherwise the output says that only time is measured, and why.")
    m.add_argument("model", help="a name from `fxenergy models`, or path/to/file.py:factory")
    m.add_argument("--batch-size", type=positive_int, default=1)
    m.add_argument("--seq-len", type=positive_int, default=128, help="tokens per sequence (text models)")
    m.add_argument("--image-size", type=positive_int, default=None, help="image side in pixels (vision models)")
    m.add_argument("--dtype", choices=dtypes, default="float32")
    m.add_argument("--mode", choices=MODES, default="inference", help="forward passes, or training steps")
    m.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw", help="update of a training step")
    m.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    m.add_argument("--hardware", default="local",
                   help="profile to predict on (default local: the detected machine; a calibration file from "
                        "`fxenergy calibrate` predicts better)")
    m.add_argument("--predictor", default=None, help="energy predictor, as for report")
    m.add_argument("--params", default=None, help="parameter set of the chosen predictor")
    m.add_argument("--window", type=float, default=1.0, help="seconds per measurement window (default 1)")
    m.add_argument("--repeats", type=positive_int, default=3, help="measurement windows (default 3)")
    m.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    m.add_argument("--layer-runs", type=positive_int, default=5, help="timed interpreter runs per layer (default 5)")
    m.add_argument("--no-layers", action="store_true", help="totals only (no per-layer interpreter runs)")
    m.add_argument("--meter", choices=("auto", "rapl", "nvml", "none"), default="auto")
    m.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: PyTorch's)")
    m.add_argument("--format", choices=FORMATS, default="table")
    m.add_argument("--output", "-o", default=None, help="write to FILE instead of stdout")
    m.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    del default_hardware  # measure predicts for the machine it runs on unless told otherwise


def table_data(mm: Any) -> Any:
    """Rows: layers (measured, predicted, ratio); totals row = the column sums."""
    from fxenergy.report import Column, TableData

    def ratio(p: float | None, m: float | None) -> str:
        return f"{p / m:.3g}x" if p is not None and m else ""

    lines = mm.layers
    if not lines:  # totals only: one row
        from fxenergy.measure.model import LayerLine

        lines = (LayerLine("(whole model)", "", mm.run.duration_s, mm.predicted_total_s, mm.run.energy_j,
                           mm.predicted_total_j),)
    cols = [Column("layer", "Layer", "text"), Column("type", "Type", "text"),
            Column("measured_s", "Measured time", "seconds"), Column("predicted_s", "Predicted time", "seconds"),
            Column("ratio_s", "Pred/meas", "text")]
    energy = any(x.measured_j is not None or x.predicted_j is not None for x in lines)
    if energy:
        cols += [Column("measured_j", "Measured energy", "joules"), Column("predicted_j", "Predicted energy", "joules"),
                 Column("ratio_j", "Pred/meas E", "text")]
    rows = []
    for x in lines:
        r = [x.key, x.module_type, x.measured_s, x.predicted_s, ratio(x.predicted_s, x.measured_s)]
        if energy:
            r += [x.measured_j, x.predicted_j, ratio(x.predicted_j, x.measured_j)]
        rows.append(tuple(r))

    def total(vals: list[float | None]) -> float | None:
        vs = [v for v in vals if v is not None]
        return sum(vs) if vs else None

    ts, tp = total([x.measured_s for x in lines]), total([x.predicted_s for x in lines])
    tot = ["Total", "", ts, tp, ratio(tp, ts)]
    if energy:
        tj, tpj = total([x.measured_j for x in lines]), total([x.predicted_j for x in lines])
        tot += [tj, tpj, ratio(tpj, tj)]
    run = mm.run
    whole = f"{run.duration_s:.4g} s per run (spread {run.duration_spread:.1%}, {run.calls} runs in {len(run.windows)} windows)"
    if run.energy_j is not None:
        whole += f"; {run.energy_j:.4g} J per run, {run.power_w:.4g} W (spread {run.energy_spread:.1%})"
    header = (("measured", mm.meter_line), ("device", mm.device), ("mode", mm.mode), ("batch size", str(mm.batch_size)),
              ("whole-model run", whole),
              ("predicted", f"{mm.predicted_total_s:.4g} s" + (f", {mm.predicted_total_j:.4g} J" if mm.predicted_total_j
                                                              else "") + f" on {mm.hardware} ({mm.predictor})"))
    return TableData(f"fxenergy measure: {mm.model}", header, tuple(cols), tuple(rows), tuple(tot), tuple(mm.notes))


def run(args: argparse.Namespace, *, check_output_path: Any = None) -> int:
    import torch

    from fxenergy.measure.model import measure_model

    if args.window < 0:
        raise UserInputError(f"--window must be >= 0 seconds, got {args.window}")
    if check_output_path is not None:
        check_output_path(args.output)
    if args.threads:
        torch.set_num_threads(args.threads)
    mm = measure_model(args.model, batch_size=args.batch_size, seq_len=args.seq_len, image_size=args.image_size,
                       dtype=getattr(torch, args.dtype), mode=args.mode, optimizer=args.optimizer, device=args.device,
                       hardware=args.hardware, predictor=args.predictor, params=args.params, window_s=args.window,
                       repeats=args.repeats, warmup=args.warmup, layer_runs=args.layer_runs, meter=args.meter,
                       per_layer=not args.no_layers)
    if args.format == "table" and args.output is None:
        from rich.console import Console

        from fxenergy.report import rich_table

        console = Console() if sys.stdout.isatty() else Console(width=160)
        console.print(rich_table(table_data(mm)))
        return 0
    if args.format == "json":
        text = json.dumps(mm.to_dict(), indent=2) + "\n"
    else:
        from fxenergy.report import to_csv, to_markdown

        td = table_data(mm)
        text = to_csv(td) if args.format == "csv" else to_markdown(td)  # table to a file: markdown
    if args.output is None:
        sys.stdout.write(text)
    else:
        from fxenergy._files import write_atomic

        write_atomic(args.output, text, make_parents=False)
    return 0
