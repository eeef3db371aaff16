"""Wall time of each phase of a first one-shot ``fxenergy report``, in the CLI's own order.

    cd /tmp && FXENERGY_CACHE_DIR=$(mktemp -d) /usr/bin/time -f "wall %e s" \
        /work/wt-X/.venv/bin/python /work/wt-X/benchmarks/cold_phases.py resnet18 --format json -o /tmp/x.json

Like the command: the collector off from the start, ``torch.utils.flop_counter`` imported without triton, then
``cli.main()`` (the one-shot path: the torchvision / sympy windows, the analysis, ``os._exit`` at the end).
The phases are printed from an atexit handler (the command ends the process itself); the interpreter's start
is not included, so ``/usr/bin/time``'s wall minus the last line is start-up plus exit. Wall-clock only.
"""

from __future__ import annotations

import atexit
import functools
import gc
import sys
import time
from typing import Any

T0 = time.perf_counter()
gc.disable()
marks: list[tuple[str, float]] = []


def mark(what: str) -> None:
    marks.append((what, time.perf_counter()))


def show() -> None:
    prev = T0
    for what, t in marks:
        print(f"{t - T0:7.3f}  +{t - prev:6.3f}  {what}")
        prev = t
    print("imported:", [m for m in ("sympy", "triton", "torch._dynamo") if m in sys.modules])


def wrap(mod: Any, name: str) -> None:
    f = getattr(mod, name)

    @functools.wraps(f)
    def timed(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        r = f(*a, **k)
        mark(f"{mod.__name__}.{name} [{time.perf_counter() - t:.3f}]")
        return r

    setattr(mod, name, timed)


def main() -> None:
    import torch  # noqa: F401

    mark("import torch")
    from fxenergy import _lean

    _lean.import_flop_counter()
    mark("import torch.utils.flop_counter (no triton)")
    import fxenergy.analysis as an
    import fxenergy.api as api
    import fxenergy.cache as ca
    import fxenergy.cli as cli
    import fxenergy.models as mo
    import fxenergy.report as rep

    mark("import fxenergy (cli, api, analysis, passes, predictors, report)")
    for mod, name in [(mo, "build_model"), (an, "analyse"), (ca, "store"), (an, "predict"), (api, "predictor_band"),
                      (rep, "render"), (_lean, "import_torchvision")]:
        wrap(mod, name)
    atexit.register(show)
    sys.argv = ["fxenergy", "report", *sys.argv[1:]]
    cli.main()
    mark("end")
    show()  # reached only if main() returned (it ends a one-shot report itself)


if __name__ == "__main__":
    main()
