"""Replay in the ``record`` capture against no replay, on the 20 transformers architectures (default configs).

    uv run python benchmarks/replay_check.py [ARCH ...]

For each architecture (tests/hf_archs.py: ``ModelClass(ConfigClass())`` on meta, 8 tokens), the
graph captured with replay on must equal the one captured with it off node for node (operation,
target, module path and type, phase, ATen calls with shapes, outputs, argument wiring). Prints the
node count, how many module calls were replayed, which module kinds refused replay and why, and
the capture time both ways (wall-clock, one run each, on a shared machine: a rough ratio only).
"""

from __future__ import annotations

import os
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from hf_archs import ARCHS, build  # noqa: E402

from fxenergy.capture import capture  # noqa: E402
from fxenergy.testing import graph_signature  # noqa: E402


def main() -> None:
    wanted = set(sys.argv[1:])
    warnings.simplefilter("ignore")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    print("| architecture | nodes | replayed calls | identical | capture on / off (s) | refused (first) |")
    print("|---|--:|--:|---|---|---|")
    same_all = True
    for arch, model_cls, config_cls, task in ARCHS:
        if wanted and arch not in wanted:
            continue
        model, kwargs = build(model_cls, config_cls, task)
        times, caps = [], []
        for replay in (True, False):
            t = time.perf_counter()
            caps.append(capture(model, (), kwargs, method="record", replay=replay))
            times.append(time.perf_counter() - t)
        same = graph_signature(caps[0].graph_module) == graph_signature(caps[1].graph_module)
        same_all &= same
        meta = caps[0].graph_module.meta
        refused = next(iter(meta["fxenergy_replay_refused"].items()), ("-", ""))
        print(f"| {arch} | {len(caps[0].graph_module.graph.nodes):,} | {meta['fxenergy_replayed_calls']} | "
              f"{'yes' if same else 'NO'} | {times[0]:.2f} / {times[1]:.2f} | {refused[0]} {refused[1]} |", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    sys.exit(0 if same_all else 1)


if __name__ == "__main__":
    main()
