"""Where a predicted training step's time goes on a GPU: by phase, and by phase x ATen op, against the roofline.

    uv run python benchmarks/gpu_training_breakdown.py alexnet:118 squeezenet1_1:221 --device a30 --optimizer sgd

Per (phase, op): node count, predicted ms (learned backend, the shipped JSON), the nodes' roofline bound under the
math modes (ms) and their ratio. Time only; nothing runs on a GPU. The A30 rows of gpu-operators-nicolai give
only whole-step totals, so this table says where the model puts the time, not where the GPU does.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fxenergy.analysis import analyse, predict  # noqa: E402
from fxenergy.models import build_model  # noqa: E402
from fxenergy.options import OPTIMIZERS  # noqa: E402
from fxenergy.records import COST, TRACE, get_record  # noqa: E402
from fxenergy.resolve import resolve  # noqa: E402


def _kernel_flops(trace) -> float:  # noqa: ANN001
    """Matrix FLOPs of the kernels the learned model prices for a node's calls (from shapes, not the cost record)."""
    from fxenergy.passes.costs import get_convention, lookup, op_arith, op_bytes
    from fxenergy.perf.kernels import kernels_of_call

    total = 0.0
    for c in trace.calls:
        if lookup(c.op) == (True, None):
            continue
        arith = op_arith(c, get_convention("default"))
        r, w, _ = op_bytes(c)
        total += sum(k.flops for k in kernels_of_call(c, 2.0 * arith.macs if arith else 0.0,
                                                      arith.elementwise_flops if arith else 0.0, r + w))
    return total


def breakdown(name: str, size: int, device: str, optimizer: str, top: int, nodes: int = 0) -> None:
    b = build_model(name, batch_size=32, image_size=size)
    a = analyse(b.model, b.args, mode="training", optimizer=optimizer, name=name)
    setup = resolve(device, "learned")
    p = predict(a, setup)
    model = setup.backend.model(setup.profile)  # type: ignore[union-attr]
    phase_s: dict[str, float] = defaultdict(float)
    t_s: dict[tuple[str, str], float] = defaultdict(float)
    bound_s: dict[tuple[str, str], float] = defaultdict(float)
    count: dict[tuple[str, str], int] = defaultdict(int)
    for node in a.graph_module.graph.nodes:
        trace = get_record(node, TRACE)
        if trace is None or node.name not in p.duration_s:
            continue
        cost = get_record(node, COST)
        key = (trace.phase, cost.op.split(".")[0])
        t = p.duration_s[node.name]
        phase_s[trace.phase] += t
        t_s[key] += t
        bound_s[key] += model.node_bound_s(cost, trace)
        count[key] += 1
    total = sum(phase_s.values())
    print(f"{name} {size}px, batch 32, {device}, optimizer {optimizer}: {total * 1e3:.2f} ms, {p.energy_j:.3f} J "
          "(predicted)")
    print("  " + ", ".join(f"{ph} {v * 1e3:.2f} ms ({v / total:.0%})" for ph, v in phase_s.items()))
    print(f"  {'phase':<10}{'op':<34}{'nodes':>6}{'ms':>9}{'bound ms':>10}{'x bound':>9}")
    for key, t in sorted(t_s.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {key[0]:<10}{key[1]:<34}{count[key]:>6}{t * 1e3:>9.3f}{bound_s[key] * 1e3:>10.3f}"
              f"{t / max(bound_s[key], 1e-12):>9.1f}")
    if nodes:
        print("  slowest nodes: ms, bound ms, cost GFLOPs (the count every bound uses), kernels' GFLOPs")
        ranked = sorted(((p.duration_s[n.name], n) for n in a.graph_module.graph.nodes if n.name in p.duration_s),
                        key=lambda tn: -tn[0])
        for t, node in ranked[:nodes]:
            trace, cost = get_record(node, TRACE), get_record(node, COST)
            print(f"  {t * 1e3:8.3f} {model.node_bound_s(cost, trace) * 1e3:8.3f} {cost.flops / 1e9:9.2f} "
                  f"{_kernel_flops(trace) / 1e9:9.2f}  {trace.phase} {cost.op.split('.')[0]} {trace.module_path}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+", help="torchvision name:image size")
    ap.add_argument("--device", default="a30")
    ap.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--nodes", type=int, default=0, help="also list the N slowest nodes")
    args = ap.parse_args()
    for spec in args.models:
        name, _, size = spec.partition(":")
        breakdown(name, int(size or 224), args.device, args.optimizer, args.top, args.nodes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
