"""Per-module measured vs predicted time of DEVELOPMENT cases, summed per kernel class, in a process that first
times N other development models (the state of the issue's protocol; session cpu10).

    flock /tmp/fxenergy-cpu.lock uv run python benchmarks/cpu_module_diag.py CAL.json[,CAL2.json,...] N MODEL:BATCH:SIDE ...

Forward hooks time each leaf module of the real model (5 passes after 2 warm-ups); the prediction is the physical
backend with CAL per fx node of the same module; faults per pass and the speed canary are printed beside. Use it on
cases that are NOT cases of cpu_latency.CASES. Several comma-separated calibration files are each predicted on the
same timings (one ``pred``/``ratio`` pair per file, in the order given).
"""

from __future__ import annotations

import collections
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import cpu_latency as cl  # noqa: E402
import cpu_process_history as history  # noqa: E402

from fxenergy.analysis import analyse, predict  # noqa: E402
from fxenergy.resolve import resolve  # noqa: E402

RUNS = 5


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    cal, fillers, specs = argv[0], int(argv[1]), argv[2:]
    gen = torch.Generator().manual_seed(0)
    for name, b, s in history.FILLERS[:fillers]:
        cl.time_case(name, b, s, 3, 0.3, gen)
    setups = [resolve(c, "physical") for c in cal.split(",")]
    width = 2 + len(setups)
    for spec in specs:
        name, b, s = spec.split(":")
        batch, side = int(b), int(s)
        assert (name, batch, side) not in cl.CASES, "a benchmark case: use development cases only"
        built = cl.build(name, batch, side)
        an = analyse(built.model, built.args, example_kwargs=built.kwargs, name=name)
        preds = [predict(an, setup) for setup in setups]
        pred = preds[0]
        node_of = {str(n.target): n.name for n in an.graph_module.graph.nodes if n.op == "call_module"}
        model = cl.real_model(built, name, side)
        xs, kw = cl.real_inputs(built, gen)
        spent: dict[str, float] = collections.defaultdict(float)
        started: dict[int, float] = {}
        for qn, mod in model.named_modules():
            if qn in node_of and not list(mod.children()):
                mod.register_forward_pre_hook(lambda m, _i, st=started: st.__setitem__(id(m), time.perf_counter()))
                mod.register_forward_hook(lambda m, _i, _o, qn=qn, sp=spent, st=started: sp.__setitem__(
                    qn, sp[qn] + time.perf_counter() - st[id(m)]))
        with torch.no_grad():
            for _ in range(2):
                model(*xs, **kw)
            spent.clear()
            with cl.PassCounters() as counters:
                t0 = time.perf_counter()
                for _ in range(RUNS):
                    model(*xs, **kw)
                total = (time.perf_counter() - t0) / RUNS
                counters.passes = RUNS
            faults = counters.faults_mib_per_pass
        # rows by the first file's kernel class; meas, count, then one predicted sum per file
        by: dict[str, list[float]] = collections.defaultdict(lambda: [0.0] * width)
        for qn, node in node_of.items():
            if qn in spent:
                fam = pred.durations[node].family if node in pred.durations else "?"
                row = by[fam]
                row[0] += spent[qn] / RUNS
                row[1] += 1
                for i, p_ in enumerate(preds):
                    row[2 + i] += p_.duration_s.get(node, 0.0)
        totals = " / ".join(f"{sum(p_.duration_s.values()) * 1e3:.1f}" for p_ in preds)
        print(f"{spec}: measured {total * 1e3:.1f} ms (hooked), predicted {totals} ms, "
              f"faults {faults:.1f} MiB/pass, canary {cl.speed_canary()}")
        for fam, (m, n, *ps) in sorted(by.items(), key=lambda kv: -kv[1][0]):
            cols = "  ".join(f"pred {p * 1e3:7.2f} ratio {p / m if m else 0:.2f}" for p in ps)
            print(f"   {fam:<18} n {int(n):3d}  meas {m * 1e3:7.2f}  {cols}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
