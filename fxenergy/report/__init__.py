"""Rendering only: Result → table data (pure) → rich table | CSV | Markdown | JSON | HTML.

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

from fxenergy.errors import UserInputError
from fxenergy.result import Group, Result, Totals

__all__ = ["Column", "TableData", "table_data", "rich_table", "to_csv", "to_markdown", "to_json", "render", "FORMATS", "human"]

FORMATS = ("table", "json", "csv", "markdown", "html")


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
    ]
    ws = result.working_sets
    notes.append(
        "working sets (seed 003): "
        f"f {human(ws.forward_bytes, 'bytes')}, b {human(ws.backward_bytes, 'bytes')}, "
        f"max t_l {human(ws.inter_layer_max_bytes, 'bytes')}, d (batch) {human(ws.batch_bytes, 'bytes')}"
        + (f", dataset {human(ws.dataset_bytes, 'bytes')}" if ws.dataset_bytes is not None else "")
    )
    notes += info.get("energy_notes", [])
    for u in result.unmodeled:
        notes.append(
            f"unmodeled op {u.op}: {u.nodes} node(s) ({u.node_share:.1%} of nodes), "
            f"{human(u.bytes_moved, 'bytes')} moved ({u.bytes_share:.1%}); its FLOPs are unknown, not zero"
        )
    return TableData(f"fxenergy report: {info.get('model')}", tuple(header), tuple(cols), rows, total, tuple(notes))


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
    head = Text("\n".join(f"{k}: {v}" for k, v in td.header), style="dim")
    table = Table(title=td.title, show_footer=True, header_style="bold", footer_style="bold")
    for i, c in enumerate(td.columns):
        table.add_column(c.title, footer=human(td.total[i], c.kind), justify="left" if c.kind == "text" else "right",
                         overflow="fold", no_wrap=i == 0)
    for r in td.rows:
        table.add_row(*(human(v, c.kind) for v, c in zip(r, td.columns)))
    notes = Text("\n".join(td.notes), style="dim")
    return RichGroup(head, table, notes)


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


def render(result: Result | dict[str, Result], fmt: str, *, by: str = "layer", depth: int | None = None,
           top: int | None = None, width: int | None = None) -> str:
    """The report as text in ``fmt`` (one of :data:`FORMATS`); a dict of results is a comparison."""
    if isinstance(result, dict):
        if fmt == "json":
            return comparison_json(result)
        if fmt == "html":
            raise UserInputError("--format html shows one predictor; use table, csv, markdown or json with --predictor all")
        td = comparison_data(result, by, depth)
    elif fmt == "json":
        return to_json(result, by, depth)
    elif fmt == "html":  # the full table, and a chart of the ``top`` (default 15) groups
        from fxenergy.report.html import render_html

        return render_html(result, by, depth, top=top or 15)
    else:
        td = table_data(result, by, depth, top)
    if fmt == "csv":
        return to_csv(td)
    if fmt == "markdown":
        return to_markdown(td)
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width or 160, force_terminal=False, color_system=None)
    console.print(rich_table(td))
    return console.file.getvalue()


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
    header = [("model", str(first.info.get("model"))), ("hardware", _hardware_line(first.info))]
    header += [(f"predictor {n}", _predictor_line(results[n].info)) for n in names]
    from fxenergy.predictors.baselines import BASELINES  # rules of thumb: shown, but not part of the band

    banded = [t for n, t in zip(names, totals) if n not in BASELINES] or totals
    lo, hi = min(banded), max(banded)
    notes = [f"uncertainty band over {len(banded)} predictors: {human(lo, 'joules')} … {human(hi, 'joules')} "
             f"(spread {human(hi - lo, 'joules')}, ×{hi / lo:.2f})" if lo > 0 else "a predictor gave 0 J in total"]
    for n in names:
        notes += [f"{n}: {x}" for x in results[n].info.get("energy_notes", [])]
    total = ("Total", *totals, None)  # the band of the totals is in the notes: a spread is not a sum
    return TableData(f"fxenergy predictors compared: {first.info.get('model')}", tuple(header), tuple(cols),
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
