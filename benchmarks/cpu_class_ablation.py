"""Ablation of session cpu12's CPU latency changes on recorded timings (no re-timing).

    flock /tmp/fxenergy-cpu.lock nice -n 19 uv run python benchmarks/cpu_class_ablation.py TIMINGS CAL.json [--dev]

Refits CAL's measurements four ways (``CAL-<variant>.json`` beside it): ``new`` (this branch: stems and reductions
with their output-byte term, the ``inplace`` class fitted on the rows timed after their producer), ``noout`` (no
output-byte term), ``hot`` (the ``inplace`` class on the hot rows, cpu11's fit) and ``old`` (both: ``main``'s fit of
these measurements), then predicts TIMINGS with each, with the ``inplace`` class off (``main``'s default) and on.
TIMINGS is a ``cpu_latency.py --json`` run's ``.timings`` file, or with ``--dev`` a ``cpu_latency_dev.py --timings``
file.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402
import cpu_refit  # noqa: E402

import fxenergy.calibrate.fitting as fitting  # noqa: E402
import fxenergy.perf.cpu as cpu  # noqa: E402


def variants(cal: str) -> list[str]:
    """Write the four refits of ``cal`` and return their paths (new, noout, hot, old)."""
    data = json.loads(Path(cal).read_text())
    paired = set(cpu.INPLACE_AFTER_PRODUCER)
    out = []
    for name, term, hot in (("new", True, False), ("noout", False, False), ("hot", True, True), ("old", False, True)):
        doc = {**data, "measurements": [m for m in data["measurements"] if not (hot and m["op"] in paired)]}
        fitting.OUTPUT_TERM = term
        path = cal.removesuffix(".json") + f"-{name}.json"
        Path(path).write_text(json.dumps(cpu_refit.refit(doc)))
        out.append(path)
    fitting.OUTPUT_TERM = True
    return out


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    timings, cal = argv[0], argv[1]
    rows = json.loads(Path(timings).read_text())
    cases = [(r[0], r[1], r[2], r[3]) for r in (rows if "--dev" in argv else rows["cases"])]
    paths = variants(cal)
    for inplace in (False, True):
        cpu.INPLACE_CLASS = inplace
        print(f"== INPLACE_CLASS = {inplace}: {', '.join(Path(p).name for p in paths)}", flush=True)
        cl.predict_timed(cases, paths, width=22)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
