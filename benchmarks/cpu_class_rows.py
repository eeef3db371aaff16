"""A kernel class's calibration rows against what the file's fitted parameters price them at (session cpu14).

    uv run python benchmarks/cpu_class_rows.py CAL.json [CLASS]     # CLASS defaults to conv_pointwise

Per row: input and weight shapes, GFLOP, activation MB (bytes read + written less the weights), the measured
time, the page-fault time the fit takes off (:func:`fxenergy.calibrate.fitting.fault_s`), and the time the law plus
the file's per-byte terms give (``CpuPerfParams.per_byte_s``: output, weight and activation terms where the file has
them, as the duration model adds them), with predicted / measured.
Shows which rows of a class one law cannot follow (e.g. few-channel 1x1 convolutions at batch 16-64).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fxenergy.calibrate.files import load_cpu_perf
from fxenergy.calibrate.fitting import fault_s, measurement_class, param_bytes
from fxenergy.calibrate.timing import Measurement


def main(argv: list[str]) -> int:
    path, cls = argv[0], (argv[1] if len(argv) > 1 else "conv_pointwise")
    data = json.loads(Path(path).read_text())
    perf, _ = load_cpu_perf(path)
    law = perf.laws[cls]
    peak = perf.peak_flops if law.basis == "flops" else perf.peak_bytes_per_s
    for d in data["measurements"]:
        m = Measurement.from_dict(d)
        if measurement_class(m) != cls:
            continue
        faults_s = fault_s(m, perf.fault_s_per_byte, perf.threads)
        weights = param_bytes(m)
        act = max(m.bytes - weights, 0)
        pred_s = float(law.duration_s(m.work(law.basis), peak)) + faults_s + perf.per_byte_s(
            cls, weight_bytes=weights, out_bytes=m.out_bytes, act_bytes=act)
        print(f"{str(m.shape[0]):22s} {str(m.shape[1][:2] if len(m.shape) > 1 else ()):12s} GFLOP {m.flops / 1e9:6.3f}  act MB {act / 1e6:6.1f}  "
              f"measured {m.median_s * 1e3:7.2f} ms  faults {faults_s * 1e3:6.2f}  priced {pred_s * 1e3:7.2f}  "
              f"ratio {pred_s / m.median_s:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
