"""Predict the whole-model timings a cpu_latency.py run recorded, with a given calibration file (no re-timing).

    uv run python benchmarks/cpu_latency_repredict.py RUN.json.timings CAL.json [CAL2.json ...]

``cpu_latency.py --json RUN.json`` keeps its timings in ``RUN.json.timings``. This prints, per case and
per calibration file, the ``physical`` prediction beside the measured latency, then median / mean /
worst APE and Spearman. Use it to compare fitting code or calibration files on the same measurements
and timings (e.g. a file refitted by cpu_refit.py, or by another branch's ``fit_cpu_perf``): the
run-to-run spread of this shared VM (up to 30% between runs an hour apart) cancels out.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("timings", help="the .timings file a cpu_latency.py --json run wrote")
    p.add_argument("calibration", nargs="+")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    cases = json.loads(Path(args.timings).read_text())["cases"]
    cl.predict_timed([(name, batch, size, measured) for name, batch, size, measured, *_ in cases],
                     args.calibration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
