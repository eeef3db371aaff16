"""Pool ``cpu_latency_dev.py`` outputs by batch size: median / mean APE of the first and the last calibration file
printed, and the signed median of mobile networks (session cpu14).

    uv run python benchmarks/cpu_dev_by_batch.py OUT1.txt [OUT2.txt ...]

Each OUT is what ``cpu_latency_dev.py CAL1.json ... CALn.json --timings T.json`` printed (redirected to a file).
"""

from __future__ import annotations

import re
import statistics as st
import sys
from pathlib import Path

MOBILE = ("mobilenet", "mnasnet", "shufflenet", "efficientnet", "squeezenet", "regnet_y")
_ROW = re.compile(r"(\S+)\s+b(\d+)\s+(\d+) measured\s+([\d.]+) \|(.*)")


def main(argv: list[str]) -> int:
    rows: list[tuple[str, int, float, float]] = []
    for f in argv:
        for line in Path(f).read_text().splitlines():
            m = _ROW.match(line)
            if m:
                errs = [float(x) for x in re.findall(r"([+-][\d.]+)%", m.group(5))]
                rows.append((m.group(1), int(m.group(2)), errs[0], errs[-1]))
    if not rows:
        print("no case rows found")
        return 1
    for b in sorted({r[1] for r in rows}):
        sel = [r for r in rows if r[1] == b]
        mob = [r for r in sel if r[0].startswith(MOBILE)]
        line = (f"b{b:<3} n {len(sel):3d}  median APE {st.median(abs(r[2]) for r in sel):5.1f} -> "
                f"{st.median(abs(r[3]) for r in sel):5.1f}  mean {st.mean(abs(r[2]) for r in sel):5.1f} -> "
                f"{st.mean(abs(r[3]) for r in sel):5.1f}")
        if mob:
            line += (f"  | mobile n {len(mob):2d} signed median {st.median(r[2] for r in mob):+6.1f} -> "
                     f"{st.median(r[3] for r in mob):+6.1f}")
        print(line)
    print(f"all n {len(rows)} median {st.median(abs(r[2]) for r in rows):.1f} -> {st.median(abs(r[3]) for r in rows):.1f}, "
          f"mean {st.mean(abs(r[2]) for r in rows):.1f} -> {st.mean(abs(r[3]) for r in rows):.1f}, "
          f"worst {max(abs(r[2]) for r in rows):.1f} -> {max(abs(r[3]) for r in rows):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
