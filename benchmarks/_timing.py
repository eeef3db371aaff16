"""Timing helpers shared by the benchmark scripts (wall clock only; no energy is measured here).

The scripts run as ``uv run python benchmarks/NAME.py``, so this directory is on ``sys.path`` and
``from _timing import median_time`` finds this module.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time (s) of ``repeats`` calls of ``fn``, after one warm-up call that is not timed."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
