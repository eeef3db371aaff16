"""Table data (pure) and its text renderers: rich table | CSV | Markdown.

:func:`table_data` is the one place that decides columns and rows; renderers only format. Every
numeric column of the table sums to its printed total (hidden rows are all-zero, and ``--top``
folds the rest into one "others" row).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fxenergy.result import Group, Result, Totals

__all__ = ["Column", "TableData", "table_data", "rich_table", "to_csv", "to_markdown", "to_json", "human",
           "comparison_data", "comparison_json"]



@dataclass(frozen=True, slots=True)
class Column:
    name: str  # machine name (CSV header)
    title: str  # human title
    kind: str  # "text" | "count" | "bytes" | "share" | "seconds" | "joules"


@dataclass(frozen=True, slots=True)
class TableData:
    title: str
    header: tuple[tuple[str, str], ...]  # (label, value) lines above the table
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    total: tuple[Any, ...]
    notes: tuple[str, ...]
    summary: tuple[tuple[str, str], ...] = ()  # the answer at a glance, printed first


def summary_lines(result: Result, top: int = 5) -> tuple[tuple[str, str], ...]:
    """What the numbers mean for the user, first: energy and time per run, Wh per 1,000 runs (and per
    token for text models), the ``top`` most energy-hungry layers with their share, the band between
    backends on the same trace (``info["band_j"]``, when computed) and the setup.

    Every number is computed here from the result's totals and groups.
    """
    t, info = result.totals, result.info
    out: list[tuple[str, str]] = []
    if t.energy_j is None:
        out.append(("per run", f"{human(t.flops, 'count')}FLOPs, {human(t.bytes_moved, 'bytes')} moved "
                               "(no energy: pass --hardware NAME)"))
    else:
        out.append(("per run", f"{human(t.energy_j, 'joules')}, {human(t.duration_s, 'seconds')} "
                               "(serial, unfused kernels)"))
        out.append(("per 1,000 runs", f"{t.energy_j * 1000 / 3600:.4g} Wh"))
        tokens = _tokens(info)
        if tokens:
            out.append(("per token", f"{human(t.energy_j / tokens, 'joules')} ({tokens:,} input tokens per run)"))
        groups = sorted((g for g in result.group("layer") if g.totals.energy_j), key=lambda g: -(g.totals.energy_j or 0))
        if groups:
            out.append((f"top {min(top, len(groups))} layers",
                        " · ".join(f"{g.key} {_share(g.totals.energy_j, t.energy_j):.0%}" for g in groups[:top])))
        if expected := _expected_band(info, t.energy_j, t.duration_s):
            out.append(("expected error", expected))
        band = info.get("band_j")
        if band:
            out.append(("backends", f"{human(band['min'], 'joules')} … {human(band['max'], 'joules')} over "
                                f"{len(band['backends'])} backends on this trace ({', '.join(band['backends'])}): "
                                "the spread between models, not a measured error (docs/validation.md)"))
        else:
            out.append(("band", "one backend only: `--predictor all` shows the spread between backends"))
    out.append(("setup", f"{_hardware_line(info)} · {_predictor_line(info)} · {info.get('dtype', '?')} "
                         f"· {info.get('convention')} MAC convention"))
    return tuple(out)


def _expected_band(info: dict[str, Any], energy_j: float | None, duration_s: float | None) -> str | None:
    """The backend's validated error on this device as a range around its figures (``info["expected_error"]``),
    or None where the backend ships none for this device. Energy is taken to carry the validated relative
    error of what was validated (time, for the learned GPU model), which the text says."""
    exp = info.get("expected_error")
    if not exp or not energy_j:
        return None
    f = float(exp["pct"]) / 100
    quantity = str(exp.get("quantity", "energy"))
    text = f"±{exp['pct']:.0f}% ({human(energy_j * (1 - f), 'joules')} … {human(energy_j * (1 + f), 'joules')}"
    if duration_s:
        text += f", {human(duration_s * (1 - f), 'seconds')} … {human(duration_s * (1 + f), 'seconds')}"
    text += f"): its {quantity} error, validated on {exp.get('basis', '?')}"
    if exp.get("energy"):
        text += f"; {exp['energy']}"
    elif quantity != "energy":
        text += "; energy taken to carry the same relative error"
    return text


def _tokens(info: dict[str, Any]) -> int:
    """Input tokens per run: the elements of the first integer input (``input_ids``), 0 for other models."""
    for i in info.get("inputs", []):
        if i.get("dtype") in ("int64", "int32"):
            n = 1
            for s in i["shape"]:
                n *= s
            return n
    return 0


def auto_depth(result: Result, limit: int = 40) -> int:
    """The deepest module depth whose groups fit ``limit`` rows (a screen): transformer blocks for a
    transformer, stages/blocks for a CNN."""
    deepest = max((r.module_path.count(".") + 1 for r in result.rows if r.module_path), default=1)
    best = 1
    for d in range(1, deepest + 1):
        n = sum(1 for g in result.group("module", d) if not _is_free(g.totals))
        if n > limit:
            break
        best = d
    return best


_KEY_TITLES = {"layer": "Layer", "module": "Module", "op": "Op", "phase": "Phase", "node": "Node"}


def table_data(result: Result, by: str = "layer", depth: int | None = None, top: int | None = None) -> TableData:
    """Columns, rows and the totals row of a grouped result (pure; no formatting)."""
    groups = result.group(by, depth)
    shown = [g for g in groups if not _is_free(g.totals)]
    notes = []
    hidden = len(groups) - len(shown)
    if hidden:
        notes.append(f"{hidden} group(s) with no arithmetic and no memory traffic (views, getitem, asserts) not shown")
    has_energy = result.totals.energy_j is not None
    has_duration = result.totals.duration_s is not None
    if top is not None and 0 < top < len(shown):
        rank = sorted(shown, key=lambda g: _weight(g.totals, has_energy), reverse=True)
        keep = {id(g) for g in rank[:top]}
        rest = [g for g in shown if id(g) not in keep]
        shown = [g for g in shown if id(g) in keep]
        shown.append(Group(f"({len(rest)} others)", "", Totals.combine([g.totals for g in rest])))

    t = result.totals
    cols = [
        Column("key", _KEY_TITLES[by], "text"),
        Column("module_type", "Type", "text"),
        Column("macs", "MACs", "count"),
        Column("flops", "FLOPs", "count"),
        Column("elementwise_flops", "Elem. FLOPs", "count"),
        Column("bytes_moved", "Bytes moved", "bytes"),
        Column("flops_share", "% FLOPs", "share"),
        Column("bytes_share", "% bytes", "share"),
    ]
    getters: list[Callable[[Totals], Any]] = [
        lambda x: x.macs,
        lambda x: x.flops,
        lambda x: x.elementwise_flops,
        lambda x: x.bytes_moved,
        lambda x: _share(x.flops + x.elementwise_flops, t.flops + t.elementwise_flops),
        lambda x: _share(x.bytes_moved, t.bytes_moved),
    ]
    if has_duration:
        cols.append(Column("duration_s", "Time (s)", "seconds"))
        getters.append(lambda x: x.duration_s)
    if has_energy:
        cols += [Column("energy_j", "Energy (J)", "joules"), Column("energy_share", "% energy", "share")]
        getters += [lambda x: x.energy_j, lambda x: _share(x.energy_j, t.energy_j)]
    if by != "layer" and by != "node":
        cols.pop(1)
    rows = tuple(_row(g.key, g.module_type, g.totals, getters, by) for g in shown)
    total = _row("Total", "", t, getters, by)

    info = result.info
    header = [
        ("model", str(info.get("model"))),
        ("mode", f"{info.get('mode')}" + (f" (optimizer {info['optimizer']})" if info.get("optimizer") else "")),
        ("inputs", ", ".join(f"{tuple(i['shape'])} {i['dtype']}" for i in info.get("inputs", []))),
        ("parameters", f"{info.get('param_count', 0):,} ({human(info.get('param_bytes', 0), 'bytes')})"),
        ("capture", str(info.get("capture_method"))),
        ("MAC convention", f"{info.get('convention')} (FLOPs = 2 × MACs; elementwise FLOPs separate)"),
        ("hardware", _hardware_line(info)),
        ("predictor", _predictor_line(info)),
        *(("warning", n) for n in info.get("setup_notes", [])),
    ]
    ws = result.working_sets
    notes.append(
        "working sets (seed 003): "
        f"f {human(ws.forward_bytes, 'bytes')}, b {human(ws.backward_bytes, 'bytes')}, "
        f"max t_l {human(ws.inter_layer_max_bytes, 'bytes')}, d (batch) {human(ws.batch_bytes, 'bytes')}"
        + (f", dataset {human(ws.dataset_bytes, 'bytes')}" if ws.dataset_bytes is not None else "")
    )
    notes += info.get("analysis_notes", [])
    notes += info.get("energy_notes", [])
    for u in result.unmodeled:
        notes.append(
            f"unmodeled op {u.op}: {u.nodes} node(s) ({u.node_share:.1%} of nodes), "
            f"{human(u.bytes_moved, 'bytes')} moved ({u.bytes_share:.1%}); its FLOPs are unknown, not zero"
        )
    return TableData(f"fxenergy report: {info.get('model')}", tuple(header), tuple(cols), rows, total, tuple(notes),
                     summary_lines(result))


def _hardware_line(info: dict[str, Any]) -> str:
    if not info.get("hardware"):
        return "none (costs only; pass --hardware NAME for durations and energy)"
    return f"{info['hardware']} ({info.get('hardware_display_name')})"


def _predictor_line(info: dict[str, Any]) -> str:
    if info.get("predictor") in (None, "none"):
        return "none"
    return f"{info['predictor']}, parameter set {info.get('parameter_set')}, durations from {info.get('duration_model')}"


def _row(key: str, mtype: str, x: Totals, getters: Sequence[Callable[[Totals], Any]], by: str) -> tuple[Any, ...]:
    head = (key, mtype) if by in ("layer", "node") else (key,)
    return (*head, *(g(x) for g in getters))


def _is_free(t: Totals) -> bool:
    return not (t.macs or t.elementwise_flops or t.bytes_moved or t.energy_j)


def _weight(t: Totals, by_energy: bool) -> float:
    return (t.energy_j or 0.0) if by_energy else float(t.flops + t.elementwise_flops + t.bytes_moved)


def _share(part: float | None, whole: float | None) -> float:
    return float(part or 0) / whole if whole else 0.0


# ------------------------------------------------------------------------------------ formatting
_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def human(value: Any, kind: str) -> str:
    """Format one cell: counts and bytes with SI prefixes, shares as percent."""
    if value is None:
        return "–"
    if kind == "text":
        return str(value)
    if kind == "share":
        return f"{100 * value:.1f}%"
    if kind in ("seconds", "joules"):
        unit = "s" if kind == "seconds" else "J"
        for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")):
            if abs(value) >= scale or scale == 1e-9:
                return f"{value / scale:.3g} {prefix}{unit}" if value else f"0 {unit}"
    unit = "B" if kind == "bytes" else ""
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}".rstrip()
    return f"{value} {unit}".rstrip()


def rich_table(result_or_data: Result | TableData, **kwargs: Any) -> Any:
    """A rich renderable: header lines, the table with its totals row, and notes."""
    from rich.console import Group as RichGroup
    from rich.table import Table
    from rich.text import Text

    td = result_or_data if isinstance(result_or_data, TableData) else table_data(result_or_data, **kwargs)
    summary = Text("\n".join(f"{k}: {v}" for k, v in td.summary), style="bold")
    head = Text("\n".join(f"{k}: {v}" for k, v in td.header), style="dim")
    table = Table(title=td.title, show_footer=True, header_style="bold", footer_style="bold")
    for i, c in enumerate(td.columns):
        table.add_column(c.title, footer=human(td.total[i], c.kind), justify="left" if c.kind == "text" else "right",
                         overflow="fold", no_wrap=i == 0)
    for r in td.rows:
        table.add_row(*(human(v, c.kind) for v, c in zip(r, td.columns)))
    notes = Text("\n".join(td.notes), style="dim")
    return RichGroup(*([summary] if td.summary else []), head, table, notes)


def to_csv(td: TableData) -> str:
    """Raw numbers (no prefixes), one header line, the rows, then the totals row."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c.name for c in td.columns])
    for r in (*td.rows, td.total):
        w.writerow(["" if v is None else v for v in r])
    return buf.getvalue()


def to_markdown(td: TableData) -> str:
    lines = [f"## {td.title}", ""]
    if td.summary:
        lines += [f"- **{k}**: {v}" for k, v in td.summary]
        lines.append("")
    lines += [f"- **{k}**: {v}" for k, v in td.header]
    lines.append("")
    lines.append("| " + " | ".join(c.title for c in td.columns) + " |")
    lines.append("|" + "|".join(":--" if c.kind == "text" else "--:" for c in td.columns) + "|")
    for r in (*td.rows, td.total):
        cells = [human(v, c.kind) for v, c in zip(r, td.columns)]
        if r is td.total:
            cells = [f"**{x}**" for x in cells]
        lines.append("| " + " | ".join(cells) + " |")
    if td.notes:
        lines.append("")
        lines += [f"> {n}" for n in td.notes]
    return "\n".join(lines) + "\n"


def to_json(result: Result, by: str = "layer", depth: int | None = None) -> str:
    return result.to_json(by=by, depth=depth) + "\n"


def comparison_data(results: dict[str, Result], by: str = "layer", depth: int | None = None) -> TableData:
    """Per-group energy of several predictors side by side, with the spread (max − min) between them."""
    names = list(results)
    keyed = {n: {g.key: g for g in r.group(by, depth)} for n, r in results.items()}
    first = results[names[0]]
    keys = list(dict.fromkeys(k for n in names for k in keyed[n]))
    cols = [Column("key", _KEY_TITLES[by], "text")]
    cols += [Column(f"energy_j_{n}", f"{n} (J)", "joules") for n in names]
    cols += [Column("spread_j", "spread (J)", "joules")]

    def energies(k: str) -> list[float]:
        return [keyed[n][k].totals.energy_j or 0.0 if k in keyed[n] else 0.0 for n in names]

    rows = []
    for k in keys:
        e = energies(k)
        if any(e):
            rows.append((k, *e, max(e) - min(e)))
    totals = [results[n].totals.energy_j or 0.0 for n in names]
    header = [("model", str(first.info.get("model")))]
    if len({r.info.get("hardware") for r in results.values()}) == 1:  # backends compared on one device
        header += [("hardware", _hardware_line(first.info))]
        header += [(f"predictor {n}", _predictor_line(results[n].info)) for n in names]
    else:  # one predictor on several devices, from one trace
        header += [(n, f"{_hardware_line(results[n].info)}; {_predictor_line(results[n].info)}") for n in names]
    header += [("warning", f"{n}: {x}") for n in names for x in results[n].info.get("setup_notes", [])]
    from fxenergy.predictors.baselines import BASELINES  # rules of thumb: shown, but not part of the band

    banded = [t for n, t in zip(names, totals) if n not in BASELINES] or totals
    lo, hi = min(banded), max(banded)
    what = ("uncertainty band over {} predictors" if len({r.info.get("hardware") for r in results.values()}) == 1
            else "range over {} devices").format(len(banded))
    notes = [f"{what}: {human(lo, 'joules')} … {human(hi, 'joules')} "
             f"(spread {human(hi - lo, 'joules')}, ×{hi / lo:.2f})" if lo > 0 else "a predictor gave 0 J in total"]
    for n in names:  # each backend's own band, from its validated error on this device (where one is shipped)
        r = results[n]
        if expected := _expected_band(r.info, r.totals.energy_j, r.totals.duration_s):
            notes.append(f"{n} expected error: {expected}")
    per_result = {n: list(dict.fromkeys(results[n].info.get("energy_notes", []))) for n in names}
    shared = [x for x in per_result[names[0]] if all(x in per_result[n] for n in names[1:])]
    for n in names:  # a note every result carries (a backend that was refused, say) is said once, unprefixed
        notes += [f"{n}: {x}" for x in per_result[n] if x not in shared]
    notes += shared
    total = ("Total", *totals, None)  # the band of the totals is in the notes: a spread is not a sum
    kind = "predictors" if what.startswith("uncertainty") else "devices"
    return TableData(f"fxenergy {kind} compared: {first.info.get('model')}", tuple(header), tuple(cols),
                     tuple(rows), total, tuple(notes))


def comparison_json(results: dict[str, Result]) -> str:
    import json

    from fxenergy.predictors.baselines import BASELINES  # rules of thumb: shown, but not part of the band

    totals = {n: r.totals.energy_j for n, r in results.items()}
    vals = [v for n, v in totals.items() if v is not None and n not in BASELINES] or \
        [v for v in totals.values() if v is not None]
    return json.dumps({
        "schema": "fxenergy.comparison/1",
        "info": next(iter(results.values())).info,
        "energy_j": totals,
        "band_j": {"min": min(vals), "max": max(vals)} if vals else None,
        "results": {n: r.to_dict(by="layer") for n, r in results.items()},
    }, indent=2) + "\n"
