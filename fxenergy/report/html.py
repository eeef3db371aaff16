"""One self-contained HTML report: header, the grouped table and an inline SVG bar chart.

No external assets, no scripts: the file opens offline and can be attached to a CI run. Columns and
rows come from :func:`fxenergy.report.table_data`, so the HTML shows the same numbers as the table.
"""

from __future__ import annotations

from html import escape

from fxenergy.report.table import Column, TableData, human, table_data
from fxenergy.result import Result

__all__ = ["render_html", "svg_bar_chart"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 8px;border-bottom:1px solid #ddd}
th{text-align:left;background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tfoot td{font-weight:bold;border-top:2px solid #888}dl{display:grid;grid-template-columns:max-content auto;
gap:2px 12px;font-size:13px}dt{color:#666}ul.notes{color:#666;font-size:12px}
""".strip()


def svg_bar_chart(labels: list[str], values: list[float], *, unit: str = "J", kind: str = "joules",
                  width: int = 720) -> str:
    """A horizontal bar chart as an ``<svg>`` element (one bar per label, longest = ``width``)."""
    bar_h, gap, label_w, value_w = 18, 4, 220, 90
    top = max(values, default=0.0) or 1.0
    height = len(values) * (bar_h + gap) + gap
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + width + value_w}" height="{height}" '
             f'role="img" aria-label="top layers by {escape(unit)}">']
    for i, (label, v) in enumerate(zip(labels, values)):
        y = gap + i * (bar_h + gap)
        w = max(v / top * width, 0.0)
        short = label if len(label) <= 32 else "…" + label[-31:]
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" font-size="12">{escape(short)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#4c78a8">'
                     f"<title>{escape(label)}: {escape(human(v, kind))}</title></rect>")
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="12">{escape(human(v, kind))}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_html(result: Result, by: str = "layer", depth: int | None = None, top: int = 15) -> str:
    """The report as one HTML document (str). The chart shows the ``top`` groups by energy, or by
    arithmetic (FLOPs + elementwise FLOPs) when no predictor ran."""
    td = table_data(result, by, depth)
    return _html(td, result, by, depth, top)


def _html(td: TableData, result: Result, by: str, depth: int | None, top: int) -> str:
    groups = [g for g in result.group(by, depth)]
    has_energy = result.totals.energy_j is not None
    if has_energy:
        weight, kind, unit, what = (lambda t: t.energy_j or 0.0), "joules", "J", "energy"
    else:
        weight, kind, unit, what = (lambda t: float(t.flops + t.elementwise_flops)), "count", "FLOPs", "FLOPs"
    ranked = sorted(groups, key=lambda g: weight(g.totals), reverse=True)[:top]
    ranked = [g for g in ranked if weight(g.totals) > 0]
    chart = svg_bar_chart([g.key for g in ranked], [weight(g.totals) for g in ranked], unit=unit, kind=kind)

    head = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in td.header)
    summary = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in td.summary)
    cols = td.columns

    def cells(r: tuple, tag: str = "td", raw: bool = False) -> str:
        def attrs(v: object, c: Column) -> str:
            a = "" if c.kind == "text" else " class=num"
            if raw and c.kind != "text" and v is not None:  # the exact number, for tools and tests
                a += f' data-column="{escape(c.name)}" data-value="{v!r}"'
            return a

        return "".join(f"<{tag}{attrs(v, c)}>{escape(human(v, c.kind))}</{tag}>" for v, c in zip(r, cols))

    body = "\n".join(f"<tr>{cells(r)}</tr>" for r in td.rows)
    notes = "".join(f"<li>{escape(n)}</li>" for n in td.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(td.title)}</title>
<style>{_CSS}</style></head>
<body>
<h1>{escape(td.title)}</h1>
<section id="summary"><h2>At a glance</h2><dl class="summary">{summary}</dl></section>
<dl>{head}</dl>
<h2>Top {len(ranked)} {escape(_plural(by))} by {what}</h2>
{chart}
<h2>All {escape(_plural(by))}</h2>
<table>
<thead><tr>{''.join(f'<th>{escape(c.title)}</th>' for c in cols)}</tr></thead>
<tbody>
{body}
</tbody>
<tfoot><tr>{cells(td.total, raw=True)}</tr></tfoot>
</table>
<ul class="notes">{notes}</ul>
</body></html>
"""


def _plural(by: str) -> str:
    return {"layer": "layers", "module": "modules", "op": "ops", "phase": "phases", "node": "nodes"}[by]
