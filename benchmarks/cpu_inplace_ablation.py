"""Ablation of session cpu11's ``inplace`` kernel class on recorded timings (no re-timing).

    flock /tmp/fxenergy-cpu.lock nice -n 19 uv run python benchmarks/cpu_inplace_ablation.py RUN.json.timings CAL.json

Writes ``CAL-noinplace.json``: CAL with its ``inplace`` curve removed, so that in-place element-wise ops (``relu_``,
``add_``, ``hardswish_`` ...) are priced by the ``elementwise`` curve as before cpu11 (what a calibration file of
an older version does), then predicts the timings with both files (``cpu_latency_repredict.py``), printing each
case and each file's median / mean / worst APE and Spearman. The same measurements and timings in both.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency_repredict as repredict  # noqa: E402


def without_inplace(data: dict) -> dict:
    """``data`` (a calibration document) without its ``inplace`` curve (the class falls back to ``elementwise``)."""
    perf = data["cpu_perf"]
    if "inplace" not in perf["laws"]:
        raise SystemExit("this calibration file has no inplace curve (made before cpu11?)")
    laws = {k: v for k, v in perf["laws"].items() if k != "inplace"}
    return {**data, "cpu_perf": {**perf, "laws": laws}}


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    timings, cal = argv
    off = cal.removesuffix(".json") + "-noinplace.json"
    Path(off).write_text(json.dumps(without_inplace(json.loads(Path(cal).read_text()))))
    print(f"== {cal} (as given) and {off} (no inplace curve: in-place ops on the elementwise curve)", flush=True)
    return repredict.main([timings, cal, off])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
