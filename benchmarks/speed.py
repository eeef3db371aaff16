"""Every speed figure of issue 10 in one run, each printed next to its target.

    uv run python benchmarks/speed.py [--max-nodes 100000] [--repeats 3] [--skip-cold | --cold-only]

* cold CLI (fresh processes): ``fxenergy --help``, ``models``, ``hardware list`` (median of --repeats),
  ``report gpt2`` and ``report resnet18`` (one each, ``--format json -o FILE``, with an empty analysis
  cache: the issue's figure), each through ``python -m fxenergy`` and through the installed console
  script (``fxenergy`` next to the interpreter: what a user types; neither includes ``uv run``'s own
  start-up), then ``python -m fxenergy`` again with the analysis the first run cached (median of
  --repeats; :mod:`fxenergy.cache`; the cache lives in a temporary ``$FXENERGY_CACHE_DIR``);
* in one process: ``annotate`` / fvcore ``FlopCountAnalysis`` time on GPT-2 (seq 128) and resnet50
  (medians after a warm-up; fvcore runs the real model, annotate the meta copy);
* training mode on GPT-2 (seq 128, AdamW) in one process;
* ``report llama-2-70b`` in a fresh process: wall time and the child's peak RSS (ru_maxrss), with an
  empty analysis cache and then with the cached analysis;
* cost per 1,000 nodes for chains of Linear+ReLU from 100 to --max-nodes nodes.

Wall-clock only (no energy is measured here). NB: on a shared 2-core machine the figures are only as
good as its quiet; the load average at start and end is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

from _timing import median_time

ROWS: list[tuple[str, str, str, str]] = []


def row(name: str, measured: str, target: str, ok: bool | None) -> None:
    ROWS.append((name, measured, target, "-" if ok is None else ("yes" if ok else "NO")))
    print(f"{name:<44} {measured:>16}   target {target:<14} met: {ROWS[-1][3]}", flush=True)


def cold(argv: list[str], script: str | None = None, env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run([*([script] if script else [sys.executable, "-m", "fxenergy"]), *argv], check=True,
                   capture_output=True, env=env)
    return time.perf_counter() - t


def cache_env(directory: str, *, empty: bool) -> dict[str, str]:
    """The environment of a report run whose analysis cache is ``directory`` (emptied first if ``empty``)."""
    if empty:
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
    return {**os.environ, "FXENERGY_CACHE_DIR": directory}


def peak_rss_child(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall s, peak RSS GB) of ``python -m fxenergy ARGV`` measured by a wrapper process of its own."""
    code = ("import resource, subprocess, sys, time\n"
            "t = time.perf_counter()\n"
            f"subprocess.run([sys.executable, '-m', 'fxenergy', *{argv!r}], check=True, capture_output=True)\n"
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env=env).stdout.split()
    return float(out[0]), float(out[1]) * 1024 / 1e9  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-nodes", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-cold", action="store_true", help="skip the fresh-process figures")
    ap.add_argument("--cold-only", action="store_true", help="only the fresh-process figures")
    a = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)

    if not a.skip_cold:
        for argv, target in ((["--help"], 0.5), (["models"], 0.5), (["hardware", "list"], 0.5)):
            t = statistics.median(cold(argv) for _ in range(a.repeats))
            row(f"cold `fxenergy {' '.join(argv)}`", f"{t:.2f} s", f"<= {target} s", t <= target)
        with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as cache_dir:
            script = os.path.join(os.path.dirname(sys.executable), "fxenergy")
            for model, target in (("gpt2", 5.0), ("resnet18", 4.0)):
                argv = ["report", model, "--format", "json", "-o", os.path.join(d, "r.json")]
                t = cold(argv, env=cache_env(cache_dir, empty=True))
                row(f"cold `fxenergy report {model}`, empty cache", f"{t:.2f} s", f"<= {target} s", t <= target)
                if os.access(script, os.X_OK):
                    t = cold(argv, script, env=cache_env(cache_dir, empty=True))
                    row("  same, installed console script", f"{t:.2f} s", f"<= {target} s", t <= target)
                t = statistics.median(cold(argv, env=cache_env(cache_dir, empty=False)) for _ in range(a.repeats))
                row("  same, analysis cached by the run before", f"{t:.2f} s", f"<= {target} s", t <= target)
            argv = ["report", "llama-2-70b", "--format", "json", "-o", os.devnull]
            t, gb = peak_rss_child(argv, env=cache_env(cache_dir, empty=True))
            row("cold `fxenergy report llama-2-70b` time, empty cache", f"{t:.2f} s", "<= 10 s", t <= 10)
            row("cold `fxenergy report llama-2-70b` peak RSS", f"{gb:.2f} GB", "<= 1 GB", gb <= 1.0)
            t, gb = peak_rss_child(argv, env=cache_env(cache_dir, empty=False))
            row("  same, analysis cached: time", f"{t:.2f} s", "<= 10 s", t <= 10)
            row("  same, analysis cached: peak RSS", f"{gb:.2f} GB", "<= 1 GB", gb <= 1.0)
    if a.cold_only:
        _print_table()
        return

    import torch
    import torchvision
    import transformers
    from fvcore.nn import FlopCountAnalysis

    import fxenergy

    torch.manual_seed(0)
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()
    ids = torch.randint(0, 50257, (1, 128))
    resnet = torchvision.models.resnet50().eval()
    img = torch.randn(1, 3, 224, 224)

    class Logits(torch.nn.Module):  # fvcore's jit trace needs a tensor output
        def __init__(self, m: torch.nn.Module):
            super().__init__()
            self.m = m

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.m(x, use_cache=False).logits

    for name, model, args, fv_model, target in (("GPT-2 (seq 128)", gpt2, (ids,), Logits(gpt2), 1.0),
                                                ("resnet50", resnet, (img,), resnet, 0.8)):
        ours = median_time(lambda model=model, args=args: fxenergy.annotate(model, args), a.repeats)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = median_time(lambda fv_model=fv_model, args=args: FlopCountAnalysis(fv_model, args).unsupported_ops_warnings(False)
                                 .uncalled_modules_warnings(False).total(), a.repeats)
        row(f"annotate / fvcore, {name}", f"{ours / theirs:.2f} ({ours:.2f}/{theirs:.2f} s)", f"<= {target}",
            ours / theirs <= target)

    t = median_time(lambda: fxenergy.annotate(gpt2, (ids,), mode="training"), 1)
    row("training mode, GPT-2 (seq 128, AdamW)", f"{t:.2f} s", "<= 3 s", t <= 3)

    sizes = [n for n in (100, 1_000, 10_000, 100_000) if n <= a.max_nodes]
    per_k = []
    for n in sizes:
        layers = [m for _ in range(n // 2) for m in (torch.nn.Linear(8, 8), torch.nn.ReLU())]
        chain = torch.nn.Sequential(*layers)
        t0 = time.perf_counter()
        r = fxenergy.annotate(chain, torch.randn(2, 8))
        t = time.perf_counter() - t0
        per_k.append(t / r.totals.nodes * 1000)
        row(f"{r.totals.nodes:,} nodes (Linear+ReLU chain)", f"{per_k[-1] * 1000:.1f} ms/1k nodes", "linear", None)
    if len(per_k) > 1:
        ratio = per_k[-1] / per_k[0]
        row(f"ms per 1k nodes, {sizes[-1]:,} vs {sizes[0]:,} nodes", f"x{ratio:.2f}", "~ x1 (linear)", ratio <= 2)
    _print_table()


def _print_table() -> None:
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print("\n| figure | measured | target | met |\n|---|--:|---|---|")
    for r_ in ROWS:
        print(f"| {r_[0]} | {r_[1]} | {r_[2]} | {r_[3]} |")


if __name__ == "__main__":
    main()
