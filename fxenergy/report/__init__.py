"""Rendering only: Result → table data (pure, :mod:`fxenergy.report.table`) → rich table | CSV | Markdown |
JSON | HTML (:mod:`fxenergy.report.html`).

:func:`~fxenergy.report.table.table_data` is the one place that decides columns and rows; renderers
only format. Every numeric column of the table sums to its printed total (hidden rows are all-zero,
and ``--top`` folds the rest into one "others" row).
"""

from __future__ import annotations

import io

from fxenergy.errors import UserInputError
from fxenergy.options import FORMATS
from fxenergy.report.table import (
    Column,
    TableData,
    comparison_data,
    comparison_json,
    human,
    rich_table,
    table_data,
    to_csv,
    to_json,
    to_markdown,
)
from fxenergy.result import Result

__all__ = ["Column", "TableData", "table_data", "rich_table", "to_csv", "to_markdown", "to_json", "render", "FORMATS",
           "human", "comparison_data", "comparison_json"]


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

    buf = io.StringIO()
    console = Console(file=buf, width=width or 160, force_terminal=False, color_system=None)
    console.print(rich_table(td))
    return buf.getvalue()


