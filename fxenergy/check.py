"""``fxenergy check``: evaluate every energy budget of a project (for pre-commit and CI).

Exit codes: 0 every budget holds, 1 at least one is over, 2 a configuration or model error (one
line on stderr). ``--update-baseline`` records the current predictions as the baseline that
``max_increase_pct`` compares against.
"""

from __future__ import annotations

import json
from typing import Any

from fxenergy.budget import (
    BudgetConfig,
    BudgetOutcome,
    evaluate_all,
    find_config,
    load_baseline,
    load_config,
    write_baseline,
)

__all__ = ["run_check", "render_text", "render_json", "CHECK_SCHEMA", "CHECK_FORMATS"]

CHECK_SCHEMA = "fxenergy.check/1"
CHECK_FORMATS = ("table", "json")


def run_check(config_path: str | None = None, *, update_baseline: bool = False, fmt: str = "table",
              top: int = 5) -> tuple[str, int]:
    """Evaluate every budget: ``(report text, exit code)``, 0 all hold and 1 any over.

    Configuration or model errors raise :class:`~fxenergy.errors.UserInputError` (exit 2 in the CLI).
    """
    config = load_config(config_path) if config_path else load_config(find_config("."))
    baseline = None if update_baseline else load_baseline(config.baseline)
    outcomes = evaluate_all(config, baseline)
    if update_baseline:
        write_baseline(config.baseline, outcomes)
        baseline = load_baseline(config.baseline)
        outcomes = evaluate_all(config, baseline)
    if fmt == "json":
        text = render_json(config, outcomes, top=top)
    else:
        text = render_text(config, outcomes, top=top, baseline_found=baseline is not None, updated=update_baseline)
    return text, 0 if all(o.passed for o in outcomes) else 1


def _fmt_j(x: float | None) -> str:
    from fxenergy.report import human

    return human(x, "joules")


def _fmt_n(x: float | None) -> str:
    from fxenergy.report import human

    return "–" if x is None else human(int(x), "count")


def render_text(config: BudgetConfig, outcomes: list[BudgetOutcome], *, top: int = 5, baseline_found: bool = False,
                updated: bool = False) -> str:
    """The summary table, then the layers that grew most for every failing budget (plain text)."""
    head = ("budget", "model", "energy", "limit", "headroom", "FLOPs", "vs baseline", "status")
    rows = []
    for o in outcomes:
        inc = o.increase_pct
        rows.append((o.budget.name, o.budget.model, _fmt_j(o.energy_j), _fmt_j(o.budget.max_energy_j),
                     f"{o.headroom_pct:+.1f}%", _fmt_n(o.flops), "–" if inc is None else f"{inc:+.1f}%",
                     "ok" if o.passed else "OVER"))
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    numeric = {2, 3, 4, 5, 6}

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(str(c).rjust(w) if i in numeric else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    out = [f"fxenergy check: {config.path.name} ({len(outcomes)} budget(s))", line(head),
           line(tuple("-" * w for w in widths))]
    out += [line(r) for r in rows]
    for o in outcomes:
        if o.passed:
            continue
        out.append("")
        out.append(f"{o.budget.name}: " + "; ".join(o.failures))
        diffs = o.layer_diffs(top)
        if o.baseline_layers is None:
            out.append(f"  no baseline entry; largest layers ({o.info.get('hardware')}, {o.info.get('predictor')}):")
        else:
            out.append("  layers that grew most against the baseline:")
        if not diffs:
            out.append("  (no layer grew)")
        names = {d.layer: f"{d.layer} ({o.layer_types[d.layer]})" if o.layer_types.get(d.layer) else d.layer
                 for d in diffs}
        lw = max((len(n) for n in names.values()), default=0)
        for d in diffs:
            out.append(f"  {names[d.layer].ljust(lw)}  {_fmt_j(d.baseline_energy_j):>10} -> {_fmt_j(d.energy_j):>10}"
                       f"  ({'+' if d.diff_j >= 0 else ''}{_fmt_j(d.diff_j)})")
    out.append("")
    n_fail = sum(not o.passed for o in outcomes)
    if updated:
        out.append(f"baseline written to {config.baseline.name}")
    elif not baseline_found and any(o.budget.max_increase_pct is not None for o in outcomes):
        out.append(f"no baseline ({config.baseline.name}); max_increase_pct not checked — "
                   "run `fxenergy check --update-baseline`")
    out.append(f"{n_fail} of {len(outcomes)} budget(s) over" if n_fail else f"all {len(outcomes)} budget(s) hold")
    return "\n".join(out) + "\n"


def render_json(config: BudgetConfig, outcomes: list[BudgetOutcome], *, top: int = 5) -> str:
    """Machine-readable result (schema ``fxenergy.check/1``), sorted keys."""
    doc = {
        "schema": CHECK_SCHEMA,
        "config": str(config.path),
        "baseline": str(config.baseline),
        "passed": all(o.passed for o in outcomes),
        "budgets": [_outcome_dict(o, top) for o in outcomes],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _outcome_dict(o: BudgetOutcome, top: int) -> dict[str, Any]:
    b = o.budget
    return {
        "name": b.name,
        "model": b.model,
        "hardware": o.info.get("hardware"),
        "predictor": o.info.get("predictor"),
        "parameter_set": o.info.get("parameter_set"),
        "energy_j": o.energy_j,
        "max_energy_j": b.max_energy_j,
        "headroom_pct": o.headroom_pct,
        "flops": o.flops,
        "max_flops": b.max_flops,
        "baseline_energy_j": o.baseline_energy_j,
        "increase_pct": o.increase_pct,
        "max_increase_pct": b.max_increase_pct,
        "passed": o.passed,
        "failures": list(o.failures),
        "layer_diffs": [{"layer": d.layer, "module_type": o.layer_types.get(d.layer, ""), "energy_j": d.energy_j, "baseline_energy_j": d.baseline_energy_j,
                         "diff_j": d.diff_j} for d in (o.layer_diffs(top) if not o.passed else [])],
    }
