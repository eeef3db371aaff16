"""Each quick calibration's class laws against the others' (issue 12, session cpu16): is a calibration's overall level one
class or all of them? Hard-wired to session cpu15's five calibrations (/tmp/cpu15-cal1..5.json): each refitted as shipped,
each kernel class's law priced at the median work of its rows, printed relative to the five's mean.

    uv run python benchmarks/cpu_class_levels.py
"""
import json
import sys

import numpy as np

sys.path.insert(0,'benchmarks')
from cpu_refit import refit

from fxenergy.calibrate.fitting import measurement_class
from fxenergy.calibrate.timing import Measurement
from fxenergy.perf.cpu import KERNEL_CLASSES, CpuPerfParams, class_basis

docs=[json.load(open(f'/tmp/cpu15-cal{i}.json')) for i in range(1,6)]
perfs=[CpuPerfParams.from_dict(refit(d)['cpu_perf']) for d in docs]
ms=[Measurement.from_dict(m) for m in docs[0]['measurements']]
print('dispatch us', [round(p.dispatch_s*1e6,2) for p in perfs])
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
