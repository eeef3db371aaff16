"""Command line: ``fxenergy report MODEL``, ``fxenergy models``, ``fxenergy hardware list|show``,
``fxenergy measure MODEL`` and ``fxenergy collect`` (their parsers and runners live in
``fxenergy/measure/cli_*.py``).

The only module that knows argparse and exit codes: 0 success, 2 bad input (one line on stderr, no
traceback unless ``--debug``).
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from fxenergy._files import write_atomic
from fxenergy.errors import FxEnergyError, UserInputError
from fxenergy.options import CONVENTIONS, DEFAULT_HARDWARE, DTYPES, FORMATS, GROUP_BY, MODES, OPTIMIZERS

__all__ = ["main", "build_parser"]

class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit 2 (argparse prints usage first by default)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _power_limit(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected watts, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of watts, got {text!r}")
    return value


def _add_gpu_options(p: argparse.ArgumentParser) -> None:
    """Math modes and power limit of the learned GPU backend (PyTorch's defaults by default)."""
    p.add_argument("--matmul-precision", choices=("highest", "high", "medium"), default=None,
                   help="torch.set_float32_matmul_precision: highest = no TF32 for fp32 matmuls (PyTorch's default)")
    p.add_argument("--conv-tf32", choices=("on", "off"), default=None,
                   help="torch.backends.cudnn.allow_tf32 (PyTorch's default: on; Ampere and later)")
    p.add_argument("--power-limit", type=_power_limit, default=None, metavar="W",
                   help="board power limit as set with nvidia-smi -pl (lowers clocks, time and energy consistently)")


def gpu_options(args: argparse.Namespace) -> dict:
    """The learned GPU backend's keywords from --matmul-precision/--conv-tf32/--power-limit."""
    return {"matmul_precision": args.matmul_precision,
            "conv_tf32": None if args.conv_tf32 is None else args.conv_tf32 == "on",
            "power_limit_w": args.power_limit}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fxenergy", description="Predict where a PyTorch model's compute, memory traffic and energy go.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("report", help="per-layer breakdown of one model", description="Per-layer breakdown of one model.")
    r.add_argument("model", help="a name from `fxenergy models`, or path/to/file.py:factory")
    r.add_argument("--batch-size", type=_positive_int, default=1)
    r.add_argument("--seq-len", type=_positive_int, default=None, help="tokens per sequence (text models; default 128)")
    r.add_argument("--image-size", type=_positive_int, default=None, help="image side in pixels (vision models; default: the model's own)")
    r.add_argument("--dtype", choices=DTYPES, default="float32")
    r.add_argument("--mode", choices=MODES, default="inference")
    r.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw", help="update traced in training mode")
    r.add_argument("--convention", choices=CONVENTIONS, default="default", help="MAC convention")
    r.add_argument("--group-by", choices=GROUP_BY, default=None,
                   help="rows per layer, module, op, phase or node (default: modules at the depth that fits a "
                        "screen, e.g. transformer blocks; --group-by layer for every layer)")
    r.add_argument("--depth", type=_non_negative_int, default=None, help="module path depth for --group-by module")
    r.add_argument("--top", type=_positive_int, default=None, help="show the N largest groups; the rest in one row")
    r.add_argument("--format", choices=FORMATS, default="table")
    r.add_argument("--output", "-o", default=None, help="write the report to FILE instead of stdout")
    r.add_argument("--plot", default=None, metavar="FILE.png",
                   help="also save a bar chart of the top groups (needs matplotlib: fxenergy[plot])")
    r.add_argument("--hardware", default=DEFAULT_HARDWARE,
                   help=f"hardware profile name, JSON file or calibration file, or several names separated by "
                        f"commas (side-by-side columns from one trace) (default {DEFAULT_HARDWARE}; "
                        "`fxenergy hardware list`)")
    r.add_argument("--predictor", default=None,
                   help="energy predictor: none, physical, hef, roofline, layerwise, cache, any installed backend, "
                        "a fitted FILE.json, or all (default: physical on CPUs; on GPUs hef where the hardware has a "
                        "HEF parameter set fitted on measured energy, else roofline; all: every applicable backend "
                        "side by side)")
    r.add_argument("--params", default=None, help="parameter set name or JSON file of the chosen predictor")
    _add_gpu_options(r)
    r.add_argument("--force", action="store_true",
                   help="use a parameter set fitted for another device (the report header says so)")
    r.add_argument("--threads", type=_positive_int, default=None,
                   help="CPU threads the run uses, for durations and active-core power (default: what torch "
                        "would use there)")
    r.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the analysis cache (catalogue models only; "
                        "$FXENERGY_CACHE_DIR, else $XDG_CACHE_HOME/fxenergy, else ~/.cache/fxenergy)")
    r.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    c = sub.add_parser("calibrate", help="fit HEF curves for this machine and write a calibration file",
                       description="Time microbenchmarks of every op family on this machine, fit the HEF power law "
                                   "per family, and write a file that `report --hardware FILE` accepts.")
    c.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    c.add_argument("--quick", action="store_true", help="fewer sizes and repeats (under 2 minutes on 2 cores)")
    c.add_argument("--output", "-o", default="fxenergy-calibration.json", help="file to write")
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    k = sub.add_parser("check", help="check the energy budgets in fxenergy.toml or pyproject.toml",
                       description="Predict every budgeted model's energy and compare it with its limits. "
                                   "Exit 0 when all hold, 1 when any is over, 2 on a configuration or model error.")
    k.add_argument("--config", default=None, metavar="FILE",
                   help="fxenergy.toml or pyproject.toml (default: the one in the current directory)")
    k.add_argument("--update-baseline", action="store_true",
                   help="write the current predictions to the baseline file (totals and per-layer energy)")
    k.add_argument("--format", choices=("table", "json"), default="table")
    k.add_argument("--top", type=_non_negative_int, default=5, help="layers listed per failing budget (default 5)")
    k.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    f = sub.add_parser("fit", help="fit a backend on your measurements and write its parameter file",
                       description="Fit a predictor backend on a measurement table (CSV; layouts in "
                                   "fxenergy/fitting.py) and write a JSON artifact that `report --params` accepts.")
    f.add_argument("backend", help="a fittable backend (layerwise, cache, or an installed one)")
    f.add_argument("table", help="CSV measurement table with an energy_j column")
    f.add_argument("--hardware", required=True, help="the profile the measurements were taken on")
    f.add_argument("--target", choices=("energy_j", "duration_s"), default="energy_j",
                   help="column to fit (layerwise only): duration_s for time-only tables (`fxenergy collect` "
                        "without a readable energy meter)")
    f.add_argument("--force", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    f.add_argument("--output", "-o", required=True, help="JSON file to write")
    f.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    from fxenergy.measure import cli_collect, cli_measure

    cli_measure.add_parser(sub, _positive_int, DTYPES, DEFAULT_HARDWARE)
    cli_collect.add_parser(sub, _positive_int)
    from fxenergy.training.cli import add_parser as add_train_estimate

    add_train_estimate(sub)

    m = sub.add_parser("models", help="list the model names `report` accepts")
    m.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    h = sub.add_parser("hardware", help="list or show hardware profiles")
    h.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    hs = h.add_subparsers(dest="hw_command", required=True, parser_class=_Parser)
    hs.add_parser("list", help="bundled profiles: kind, vendor, headline figures, what data stands behind them")
    show = hs.add_parser("show", help="one profile: every figure with its source, estimates marked, validated error")
    show.add_argument("name", help="profile name, JSON file, or 'local' for the detected machine")
    show.add_argument("--json", action="store_true", help="print the profile file (as save_profile writes it)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # argv None: this process is the command (console script, python -m fxenergy) and ends with it,
    # so `report` may build with lean imports; main([...]) called from Python code never does.
    args.one_shot = argv is None
    if args.one_shot and args.command == "report":
        # No cyclic collection while torch & co. are imported and the model is built: those objects live to
        # the end of the process, and collections passing over them cost ~0.3 s of a cold report. On again,
        # over new objects only, before the analysis (_collect_from_here).
        gc.disable()
    try:
        rc = _COMMANDS[args.command](args)
    except FxEnergyError as e:
        if args.debug:
            raise
        print(f"fxenergy: error: {e}", file=sys.stderr)
        rc = 2
    except KeyboardInterrupt:  # pragma: no cover
        print("fxenergy: interrupted", file=sys.stderr)
        return 130
    if args.one_shot and args.command == "report":
        _exit_now(rc)
    return rc


def _exit_now(rc: int) -> NoReturn:
    """End a one-shot ``report`` without the interpreter's shutdown, which tears down every module of torch
    & co. and collects every object once more (0.9-1.1 s of a cold ``report resnet18`` here): the atexit
    handlers run (logging's flush, temporary files, gc.unfreeze), stdout and stderr are flushed, and the
    output file is already closed (write_atomic). Nothing else the command made needs finalising."""
    import atexit
    import os

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def _cmd_report(args: argparse.Namespace) -> int:
    from fxenergy.api import compare_hardware, compare_predictors
    from fxenergy.report import comparison_data, render, rich_table, table_data
    from fxenergy.report.table import auto_depth
    from fxenergy.resolve import split_hardware

    if args.depth is not None and args.group_by not in (None, "module"):
        raise UserInputError("--depth applies to --group-by module only")
    auto_group = args.group_by is None
    if auto_group:
        args.group_by = "module"
    _check_output_path(args.output)
    _check_output_path(args.plot)
    devices = [] if args.hardware == "none" else split_hardware(args.hardware)
    if len(devices) > 1 and args.predictor == "all":
        raise UserInputError("--predictor all compares backends on one device; give one --hardware, or drop 'all'")
    if args.predictor == "all" and args.params is not None:
        raise UserInputError("--predictor all uses each backend's own parameters; drop --params")
    if len(devices) > 1 or args.predictor == "all":
        if args.plot:
            raise UserInputError("--plot shows one prediction; give one --hardware and one --predictor")
        if args.format == "html":
            raise UserInputError("--format html shows one prediction; use table, csv, markdown or json to compare")
    if args.one_shot:  # this process ends with the command: the op table's flop_counter without triton
        from fxenergy import _lean

        _lean.import_flop_counter()
    if len(devices) == 1 and args.predictor != "all":
        from fxenergy.resolve import resolve

        resolve(devices[0], args.predictor, args.params, force=args.force)  # bad options fail before the build
    analysis = _analysis(args)
    result: Any
    if len(devices) > 1:
        result = compare_hardware(analysis, hardware=devices, predictor=args.predictor, params=args.params,
                                  force=args.force)
    elif args.predictor == "all":
        result = compare_predictors(analysis, hardware=devices[0] if devices else None, **gpu_options(args))
    else:
        from fxenergy.analysis import predict
        from fxenergy.api import predictor_band, with_gpu_options
        from fxenergy.resolve import resolve

        setup = resolve(devices[0] if devices else None, args.predictor, args.params, force=args.force,
                        threads=args.threads)
        setup = with_gpu_options(setup, **gpu_options(args))
        if setup.backend is None:
            result = analysis.result()
        else:
            prediction = predict(analysis, setup)
            result = analysis.result(prediction)
            result.info["band_j"] = predictor_band(analysis, setup, prediction)
    if auto_group and args.depth is None:
        any_result = next(iter(result.values())) if isinstance(result, dict) else result
        args.depth = auto_depth(any_result)
    if args.plot:
        from fxenergy.report.plot import save_plot

        save_plot(result, args.plot, top=args.top or 15, by=args.group_by, depth=args.depth)
    if args.format == "table" and args.output is None:
        from rich.console import Console

        # Piped or captured output gets a wide page instead of rich's 80-column default.
        console = Console() if sys.stdout.isatty() else Console(width=160)
        td = (comparison_data(result, args.group_by, args.depth) if isinstance(result, dict)
              else table_data(result, args.group_by, args.depth, args.top))
        console.print(rich_table(td))
        return 0
    text = render(result, args.format, by=args.group_by, depth=args.depth, top=args.top)
    if args.output is None:
        sys.stdout.write(text)
    else:
        write_atomic(args.output, text, make_parents=False)
    return 0


def _analysis(args: argparse.Namespace) -> Any:
    """The report's :class:`~fxenergy.analysis.Analysis`: read from the analysis cache for a catalogue
    model whose key is stored there (no model build, no capture), else built, analysed and stored
    (unless --no-cache). A ``file.py:factory`` model is never cached."""
    from fxenergy import cache

    seq_len = args.seq_len or 128
    key = None if args.no_cache else cache.key(
        args.model, batch_size=args.batch_size, seq_len=seq_len, image_size=args.image_size, dtype=args.dtype,
        mode=args.mode, optimizer=args.optimizer, convention=args.convention)
    if key is not None:
        analysis = cache.load(key)
        if analysis is not None:
            if args.one_shot:
                _collect_from_here()
            _warn_inapplicable(args, key["model"], key["task"])
            return analysis
    import contextlib

    import torch

    from fxenergy.analysis import analyse
    from fxenergy.models import build_model

    with contextlib.ExitStack() as lean:
        if args.one_shot:  # this process ends with the command: build and analyse without importing torch._dynamo
            from fxenergy import _lean

            family = _family(args.model)
            if family != "transformers":  # transformers imports torch._dynamo and sympy itself (see _lean)
                lean.enter_context(_lean.dynamo_deferred(torchvision=family == "torchvision"))
                if family == "torchvision":  # known code only (a user factory may look for sympy): no sympy
                    lean.enter_context(_lean.plain_shape_checks())
        built = build_model(
            args.model,
            batch_size=args.batch_size,
            seq_len=seq_len,
            image_size=args.image_size,
            dtype=getattr(torch, args.dtype),
            lean_imports=args.one_shot,  # a one-shot process: transformers skips scipy/torchvision it would not use
        )
        if built.info is not None:  # a file.py:factory model builds its own inputs
            _warn_inapplicable(args, built.name, built.info.task)
        if args.one_shot:
            _collect_from_here()
        analysis = analyse(built.model, built.args, example_kwargs=built.kwargs, mode=args.mode,
                           optimizer=args.optimizer, convention=args.convention, name=built.name)
    if key is not None:
        cache.store(analysis, key)
    return analysis


def _collect_from_here() -> None:
    """Turn the cyclic garbage collector back on (main() turned it off for a one-shot report), over the
    objects made from now on: everything made so far (modules, the model) is moved out of its reach until
    the process exits (then back, so that interpreter shutdown frees them as usual: nanobind, which triton
    uses, reports every instance still alive then as a leak)."""
    import atexit

    gc.freeze()
    atexit.register(gc.unfreeze)
    gc.enable()


def _family(model: str) -> str | None:
    """``"torchvision"`` or ``"transformers"`` for a catalogue model, None for any other (no torch import)."""
    from fxenergy.models.catalog import lookup

    try:
        return lookup(model).family
    except FxEnergyError:  # a file.py:factory or module:callable model, or an unknown name (build_model says why)
        return None


def _warn_inapplicable(args: argparse.Namespace, name: str, task: str) -> None:
    """One line on stderr per option the model does not use (never silence)."""
    if args.image_size is not None and task != "image-classification":
        print(f"fxenergy: warning: --image-size does not apply to {name} (a {task} model); ignored",
              file=sys.stderr)
    if args.seq_len is not None and task == "image-classification":
        print(f"fxenergy: warning: --seq-len does not apply to {name} (an image model); ignored", file=sys.stderr)


def _cmd_check(args: argparse.Namespace) -> int:
    from fxenergy.check import run_check

    text, code = run_check(args.config, update_baseline=args.update_baseline, fmt=args.format, top=args.top)
    sys.stdout.write(text)
    return code


def _cmd_fit(args: argparse.Namespace) -> int:
    import json

    from fxenergy.fitting import fit_backend
    from fxenergy.predictors.interface import fittable_backends

    fittable = sorted(fittable_backends())  # from the registry: bundled and installed backends
    if args.backend not in fittable:
        raise UserInputError(f"backend {args.backend!r} cannot be fitted; fittable: {', '.join(fittable)}")
    _check_output_path(args.output)
    artifact = fit_backend(args.backend, args.table, hardware=args.hardware, target=args.target)
    write_atomic(args.output, json.dumps(artifact, indent=1, sort_keys=True) + "\n", make_parents=False)
    if args.backend == "layerwise":  # rows of types the backend has no regressor for: say so, not silently
        from collections import Counter

        from fxenergy.fitting import read_table

        types = Counter(str(r.get("layer_type")) for r in read_table(args.table, args.target))
        left = {t: n for t, n in sorted(types.items()) if t not in artifact["params"]["regressors"]}
        if left:
            print("not fitted (no layerwise features for the type, or too few rows): "
                  + ", ".join(f"{t} ({n} rows)" for t, n in left.items()))
    if args.target != "energy_j":  # a time model: per-layer seconds from Python, not a report's energy
        print(f"wrote {args.output}: {args.backend} fitted on {artifact.get('fitted_on')} to {args.target} per pass; "
              f"use it from Python: LayerwisePredictor.from_json(json.load(open({args.output!r}))).predict_layer(TYPE, features)")
        return 0
    print(f"wrote {args.output}: {args.backend} fitted on {artifact.get('fitted_on')}; "
          f"use it with: fxenergy report MODEL --hardware {args.hardware} --predictor {args.backend} --params {args.output}")
    return 0


def _cmd_measure(args: argparse.Namespace) -> int:
    from fxenergy.measure import cli_measure

    return cli_measure.run(args, check_output_path=_check_output_path)


def _cmd_collect(args: argparse.Namespace) -> int:
    from fxenergy.measure import cli_collect

    return cli_collect.run(args)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from fxenergy.calibrate import run_calibration, save_calibration

    _check_output_path(args.output)
    with Progress(transient=True) as bar:
        task = bar.add_task("calibrating", total=None)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        if args.device.startswith("cuda"):  # GPUs: also refine the learned model (fxenergy.calibrate.gpu)
            import dataclasses

            from fxenergy.calibrate.gpu import check_cuda, run_learned_calibration

            check_cuda(args.device)  # one-line error where CUDA is absent, before any timing
        cal = run_calibration(args.device, quick=args.quick, progress=progress)
        if args.device.startswith("cuda"):
            cal = dataclasses.replace(cal, learned=run_learned_calibration(cal.profile, device=args.device,
                                                                           progress=progress))
    path = save_calibration(cal, args.output)
    fams = ", ".join(sorted(cal.params.families))
    print(f"wrote {path}: {cal.profile.display_name}; {len(cal.measurements)} measurements; curves for {fams}")
    print(f"energy elasticities from: {cal.energy_source}"
          + (" (no power meter readable: derived from the profile's power figures)" if cal.energy_source == "profile" else ""))
    for note in cal.notes:
        print(f"note: {note}")
    if cal.threads:
        print(f"threads: {cal.threads}")
    if cal.learned:
        print("learned GPU model corrections (duration x): " + ", ".join(
            f"{k} {math.exp(v):.2f}" for k, v in sorted(cal.learned["duration_log_scale"].items())))
    print(f"use it with: fxenergy report MODEL --hardware {path}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from fxenergy.models import list_models

    for info in list_models():
        print(f"{info.name:<32} {info.family:<13} {info.description}")
    return 0


def _cmd_hardware(args: argparse.Namespace) -> int:
    from fxenergy import hardware
    from fxenergy.hardware import describe

    if args.hw_command == "list":
        print(describe.render_list())
        return 0
    prof = hardware.detect_local() if args.name == "local" else hardware.load_profile(args.name)
    if args.json:
        import json

        print(json.dumps(prof.to_dict(), indent=2))
    else:
        print(describe.render_show(prof))
    return 0


_COMMANDS = {
    "report": _cmd_report,
    "check": _cmd_check,
    "calibrate": _cmd_calibrate,
    "fit": _cmd_fit,
    "models": _cmd_models,
    "measure": _cmd_measure,
    "collect": _cmd_collect,
    "hardware": _cmd_hardware,
    "train-estimate": lambda args: _train_estimate(args),
}


def _train_estimate(args: argparse.Namespace) -> int:
    from fxenergy.training.cli import run

    return run(args, check_output_path=_check_output_path)


def _check_output_path(path: str | None) -> None:
    if path is None:
        return
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise UserInputError(f"cannot write {path}: directory {parent} does not exist")
    if Path(path).is_dir():
        raise UserInputError(f"cannot write {path}: it is a directory; give a file name")
