"""Ablation of session cpu10's two CPU latency changes on recorded timings (no re-timing).

    flock /tmp/fxenergy-cpu.lock nice -n 19 uv run python benchmarks/cpu_state_ablation.py RUN.json.timings CAL.json

Refits CAL's measurements the way ``main`` did before cpu10 (depthwise convolutions on a FLOP law, no heap churn
correction) into ``CAL-mainfit.json``, then predicts the timings with both files in the ``"long-lived"`` allocator
state (cpu10's default) and in ``"fresh"`` (the default before), printing each case and each file's median / mean /
worst APE and Spearman (``cpu_latency_repredict.py``).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency_repredict as repredict  # noqa: E402
import cpu_refit  # noqa: E402

import fxenergy.calibrate.fitting as fitting  # noqa: E402
import fxenergy.perf.cpu as cpu  # noqa: E402


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    timings, cal = argv
    mainfit = cal.removesuffix(".json") + "-mainfit.json"
    bytes_classes, churn = cpu.BYTES_BASIS_CLASSES, fitting.HEAP_CHURN_FAULTS
    cpu.BYTES_BASIS_CLASSES, fitting.HEAP_CHURN_FAULTS = frozenset(), False
    Path(mainfit).write_text(json.dumps(cpu_refit.refit(json.loads(Path(cal).read_text()))))
    cpu.BYTES_BASIS_CLASSES, fitting.HEAP_CHURN_FAULTS = bytes_classes, churn
    for state in ("long-lived", "fresh"):
        cpu.ALLOCATOR_STATE = state
        print(f"== state {state}: {cal} (as given) and {mainfit} (depthwise FLOP law, no churn correction)", flush=True)
        repredict.main([timings, cal, mainfit])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
