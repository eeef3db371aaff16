"""The ``fxenergy collect`` subcommand (parser and runner); :mod:`fxenergy.cli` registers it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fxenergy.errors import UserInputError

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, positive_int: Any) -> None:
    from fxenergy.measure.kinds import KINDS

    c = sub.add_parser(
        "collect", help="measure random layer configurations (seed 000's data collection) into a CSV",
        description="Measure time (and energy where a meter is readable) of random layer configurations drawn "
                    "from seed 000's Table 1 ranges, or of the layers of named models, in measurement windows; "
                    "write a CSV that `fxenergy fit layerwise` reads (columns: docs/collect.md). Resumable: run "
                    "the same command again to continue. `fxenergy collect merge SHARD.csv ... -o OUT.csv` joins "
                    "shards.")
    c.add_argument("merge", nargs="*", metavar="merge FILE", help="`merge` followed by the shard files to join")
    c.add_argument("--output", "-o", default="fxenergy-collect.csv", help="CSV file to write or extend")
    c.add_argument("--count", type=positive_int, default=100, help="configurations in the campaign (all shards)")
    c.add_argument("--seed", type=int, default=0, help="campaign seed: configuration i is drawn from (seed, i)")
    c.add_argument("--layers", default=",".join(KINDS), help=f"comma-separated kinds (default all: {','.join(KINDS)})")
    c.add_argument("--models", default=None,
                   help="comma-separated model names: measure their layers at random batch sizes instead (seed 000 A.3)")
    c.add_argument("--shard", default="0/1", help="i/n: measure configurations with index %% n == i (default 0/1)")
    c.add_argument("--slurm", default=None, metavar="PARTITION",
                   help="submit --shards shards to SLURM as one job array through submitit (fxenergy[slurm])")
    c.add_argument("--shards", type=positive_int, default=8, help="shards submitted with --slurm (default 8)")
    c.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    c.add_argument("--mode", choices=("inference", "training"), default="inference",
                   help="forward passes, or forward + backward of the output's sum")
    c.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    c.add_argument("--window", type=float, default=0.5, help="seconds per measurement window (seed 000: 30)")
    c.add_argument("--repeats", type=positive_int, default=3, help="windows per configuration (seed 000: up to 3)")
    c.add_argument("--warmup", type=int, default=2, help="untimed calls first")
    c.add_argument("--max-macs", type=float, default=2e9, help="redraw configurations above this (0: no limit)")
    c.add_argument("--max-bytes", type=float, default=256e6, help="redraw configurations whose tensors exceed this")
    c.add_argument("--meter", choices=("auto", "rapl", "nvml", "none"), default="auto")
    c.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: PyTorch's)")
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _spec(args: argparse.Namespace) -> Any:
    from fxenergy.measure.collect import CollectSpec, parse_shard

    if args.window < 0:
        raise UserInputError(f"--window must be >= 0 seconds, got {args.window}")
    kinds = tuple(k.strip() for k in args.layers.split(",") if k.strip())
    models = tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models else ()
    return CollectSpec(output=args.output, count=args.count, seed=args.seed, kinds=kinds, models=models,
                       shard=parse_shard(args.shard), device=args.device, mode=args.mode, dtype=args.dtype,
                       window_s=args.window, repeats=args.repeats, warmup=args.warmup, max_macs=args.max_macs,
                       max_bytes=args.max_bytes, meter=args.meter, threads=args.threads)


def run(args: argparse.Namespace) -> int:
    from fxenergy.measure import collect as col

    if args.merge:
        if args.merge[0] != "merge":
            raise UserInputError(f"unexpected argument {args.merge[0]!r}: did you mean `fxenergy collect merge FILES`?")
        out = col.merge(args.merge[1:], args.output)
        print(f"wrote {args.output}: {out['rows']} rows from {out['files']} files"
              + (f" ({out['duplicates']} duplicate config_ids dropped)" if out["duplicates"] else ""))
        return 0
    spec = _spec(args)
    col.validate(spec)
    if spec.models:
        col.model_layer_configs(spec.models)  # an unknown model name: one line, before the progress bar
    if args.slurm:
        jobs = col.submit_slurm(spec, args.shards, partition=args.slurm)
        files = " ".join(str(col.shard_path(args.output, (i, args.shards))) for i in range(args.shards))
        print(f"submitted {len(jobs)} shards as SLURM job array {jobs[0].job_id.split('_')[0]}; when done: "
              f"fxenergy collect merge {files} -o {args.output}")
        return 0
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("collecting", total=None)

        def progress(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=label)

        try:
            out = col.collect(spec, progress=progress, warn=lambda m: err.print(f"warning: {m}"))
        except KeyboardInterrupt:
            print(f"fxenergy: interrupted; completed rows are in {col.shard_path(spec.output, spec.shard)}; run the "
                  "same command to resume", file=sys.stderr)
            return 130
    print(f"measured: {out['meter']}")
    print(f"wrote {out['path']}: {out['written']} new rows, {out['skipped']} already there, "
          f"{len(out['failed'])} failed (rerun to retry) of {out['configs']} configurations in shard {args.shard}")
    target = "" if "energy" in out["meter"] else " --target duration_s"
    print(f"fit it with: fxenergy fit layerwise {out['path']} --hardware local{target} -o layerwise-local.json")
    return 0
