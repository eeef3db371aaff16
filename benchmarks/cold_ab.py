"""Cold ``fxenergy report MODEL`` of two checkouts, interleaved: wall and child CPU seconds (medians).

    uv run python benchmarks/cold_ab.py /work/main/.venv/bin/python .venv/bin/python --model gpt2 --runs 4

Each run is a fresh ``PYTHON -m fxenergy report MODEL --format json -o FILE``; the two interpreters
alternate so that both see the same load. Each run has an empty analysis cache of its own
(``$FXENERGY_CACHE_DIR``, :mod:`fxenergy.cache`), so both always build and capture. Child CPU (user+sys, from getrusage) scatters less than
wall time on a shared machine. Wall-clock and CPU only (no energy is measured).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("python_a")
    ap.add_argument("python_b")
    ap.add_argument("--model", default="gpt2")
    ap.add_argument("--runs", type=int, default=4)
    a = ap.parse_args()
    # Absolute (not resolved: a venv's python is found through its symlink), as runs start in another cwd.
    runs: dict[str, list[tuple[float, float]]] = {os.path.abspath(a.python_a): [], os.path.abspath(a.python_b): []}
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for py in runs:  # which checkout each interpreter runs (it must differ, or the A/B compares one code with itself)
        where = subprocess.run([py, "-c", "import fxenergy; print(fxenergy.__file__)"], capture_output=True,
                               text=True, check=True, cwd=tempfile.gettempdir()).stdout.strip()
        print(f"{py}: fxenergy from {where}")
    with tempfile.TemporaryDirectory() as d:
        for _ in range(a.runs):
            for py in runs:
                r0, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
                cache = tempfile.mkdtemp(dir=d)  # an empty analysis cache each run: always a first run
                # cwd outside any checkout: `python -m` puts the working directory first on sys.path, so
                # run from a checkout both interpreters would import THAT checkout's fxenergy.
                subprocess.run([py, "-m", "fxenergy", "report", a.model, "--format", "json", "-o",
                                os.path.join(d, "r.json")], check=True, capture_output=True,
                               env={**os.environ, "FXENERGY_CACHE_DIR": cache}, cwd=d)
                wall, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
                runs[py].append((wall, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    for py, v in runs.items():
        print(f"{py}: wall median {statistics.median(w for w, _ in v):.2f} s, child CPU median "
              f"{statistics.median(c for _, c in v):.2f} s (walls {', '.join(f'{w:.2f}' for w, _ in v)})")


if __name__ == "__main__":
    main()
