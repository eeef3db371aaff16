"""Each quick calibration's class laws against the others' (issue 12, session cpu16): is a calibration's overall level one
class or all of them? Each calibration is refitted as shipped (``cpu_refit.refit``), each kernel class's law priced at
the median work of its rows (in the first file), and printed relative to the calibrations' mean.

    uv run python benchmarks/cpu_class_levels.py [CAL.json ...]   # default: session cpu15's /tmp/cpu15-cal1..5.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from cpu_refit import refit  # noqa: E402

from fxenergy.calibrate.fitting import measurement_class  # noqa: E402
from fxenergy.calibrate.timing import Measurement  # noqa: E402
from fxenergy.perf.cpu import KERNEL_CLASSES, CpuPerfParams, class_basis  # noqa: E402

DEFAULT_CALIBRATIONS = tuple(f"/tmp/cpu15-cal{i}.json" for i in range(1, 6))


def main(argv: list[str]) -> int:
    docs = [json.loads(Path(p).read_text()) for p in (argv or DEFAULT_CALIBRATIONS)]
    perfs = [CpuPerfParams.from_dict(refit(d)["cpu_perf"]) for d in docs]
    ms = [Measurement.from_dict(m) for m in docs[0]["measurements"]]
    print("dispatch us", [round(p.dispatch_s * 1e6, 2) for p in perfs])
    for cls in sorted(perfs[0].laws):
        if cls not in KERNEL_CLASSES:
            continue
        b = class_basis(cls)
        w = np.median([m.work(b) for m in ms if measurement_class(m) == cls] or [0])
        if w <= 0:
            continue
        t = [float(p.laws[cls].duration_s(w, p.peak_flops if b == "flops" else p.peak_bytes_per_s)) if cls in p.laws
             else np.nan for p in perfs]
        print(f"{cls:16s}", " ".join(f"{x / np.nanmean(t) - 1:+.0%}" for x in t))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
