"""The result of an analysis: one row per graph node, groupings, and totals computed once.

Rows are records read off ``node.meta["fxenergy"]``; groupings and totals are sums of rows, so a
column always sums to its total. Energy and duration are ``None`` until a predictor fills them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from fxenergy.errors import UserInputError
from fxenergy.options import GROUP_BY
from fxenergy.passes.working_sets import ModelWorkingSets
from fxenergy.records import COST, DURATION, ENERGY, TRACE, WORKING_SET, get_record

__all__ = ["Row", "Group", "Totals", "UnmodeledOp", "Result", "GROUP_BY", "SCHEMA_VERSION", "rows_from_graph"]

SCHEMA_VERSION = "fxenergy.result/1"

_SUMMED = ("macs", "flops", "elementwise_flops", "bytes_read", "bytes_written", "param_bytes_read")


@dataclass(frozen=True, slots=True)
class Row:
    """One graph node. ``flops = 2 * macs``; ``bytes_read`` includes ``param_bytes_read``."""

    node: str
    op: str
    module_path: str
    module_type: str
    phase: str
    macs: int
    flops: int
    elementwise_flops: int
    bytes_read: int
    bytes_written: int
    param_bytes_read: int
    inter_layer_bytes: int
    unmodeled: tuple[str, ...] = ()
    duration_s: float | None = None
    energy_j: float | None = None

    @property
    def bytes_moved(self) -> int:
        return self.bytes_read + self.bytes_written

    def with_prediction(self, duration_s: float, energy_j: float) -> Row:
        """This row with one prediction's duration and energy filled in."""
        return Row(self.node, self.op, self.module_path, self.module_type, self.phase, self.macs, self.flops,
                   self.elementwise_flops, self.bytes_read, self.bytes_written, self.param_bytes_read,
                   self.inter_layer_bytes, self.unmodeled, duration_s, energy_j)

    @property
    def free(self) -> bool:
        return not (self.macs or self.elementwise_flops or self.bytes_moved or self.unmodeled)


@dataclass(frozen=True, slots=True)
class Totals:
    """Column sums over rows (``inter_layer_max_bytes`` is a max, being a working set)."""

    nodes: int
    macs: int
    flops: int
    elementwise_flops: int
    bytes_read: int
    bytes_written: int
    param_bytes_read: int
    inter_layer_max_bytes: int
    duration_s: float | None
    energy_j: float | None

    @property
    def bytes_moved(self) -> int:
        return self.bytes_read + self.bytes_written

    @classmethod
    def of(cls, rows: Sequence[Row]) -> Totals:
        sums = {k: sum(getattr(r, k) for r in rows) for k in _SUMMED}
        return cls(
            nodes=len(rows),
            inter_layer_max_bytes=max((r.inter_layer_bytes for r in rows), default=0),
            duration_s=_optional_sum(r.duration_s for r in rows),
            energy_j=_optional_sum(r.energy_j for r in rows),
            **sums,
        )

    @classmethod
    def combine(cls, parts: Sequence[Totals]) -> Totals:
        """The totals of several groups together (e.g. the "others" row of a ``--top`` table)."""
        sums = {k: sum(getattr(t, k) for t in parts) for k in _SUMMED}
        return cls(
            nodes=sum(t.nodes for t in parts),
            inter_layer_max_bytes=max((t.inter_layer_max_bytes for t in parts), default=0),
            duration_s=_optional_sum(t.duration_s for t in parts),
            energy_j=_optional_sum(t.energy_j for t in parts),
            **sums,
        )


@dataclass(frozen=True, slots=True)
class Group:
    """Rows sharing a key (a module path, an op name, a phase…), summed."""

    key: str
    module_type: str
    totals: Totals


@dataclass(frozen=True, slots=True)
class UnmodeledOp:
    """An ATen op with no cost formula: how many nodes called it and how many bytes they moved."""

    op: str
    nodes: int
    bytes_moved: int
    node_share: float
    bytes_share: float


def _optional_sum(values: Iterable[float | None]) -> float | None:
    vals = list(values)
    if not vals or any(v is None for v in vals):
        return None
    return float(sum(v for v in vals if v is not None))


def rows_from_graph(gm: torch.fx.GraphModule, *, predicted: bool = False) -> tuple[Row, ...]:
    """One :class:`Row` per node that ran (graph inputs and outputs excluded).

    With ``predicted``, a node without a duration or energy record (a free node) gets 0 rather than
    ``None``, so the columns have totals.
    """
    missing = 0.0 if predicted else None
    rows = []
    for node in gm.graph.nodes:
        trace = get_record(node, TRACE)
        if trace is None or trace.phase == "input":
            continue
        cost = get_record(node, COST, required_by="rows_from_graph")
        ws = get_record(node, WORKING_SET)
        dur = get_record(node, DURATION)
        en = get_record(node, ENERGY)
        rows.append(
            Row(
                node=node.name,
                op=cost.op,
                module_path=trace.module_path,
                module_type=trace.module_type,
                phase=trace.phase,
                macs=cost.macs,
                flops=cost.flops,
                elementwise_flops=cost.elementwise_flops,
                bytes_read=cost.bytes_read,
                bytes_written=cost.bytes_written,
                param_bytes_read=cost.param_bytes_read,
                inter_layer_bytes=ws.inter_layer_bytes if ws else 0,
                unmodeled=cost.unmodeled,
                duration_s=dur.duration_s if dur else missing,
                energy_j=en.energy_j if en else missing,
            )
        )
    return tuple(rows)


@dataclass
class Result:
    """What :func:`fxenergy.annotate` returns.

    ``rows`` has one entry per executed node; :attr:`totals` is their column sum, computed once;
    :meth:`group` aggregates rows by layer, module (to a depth), op or phase.
    """

    graph_module: torch.fx.GraphModule
    rows: tuple[Row, ...]
    working_sets: ModelWorkingSets
    info: dict[str, Any] = field(default_factory=dict)
    totals: Totals = field(init=False)

    def __post_init__(self) -> None:
        self.totals = Totals.of(self.rows)

    @property
    def energy_j(self) -> float | None:
        """Energy per run in joules (``totals.energy_j``: the sum of the rows); ``None`` without a prediction."""
        return self.totals.energy_j

    @property
    def duration_s(self) -> float | None:
        """Time per run in seconds (``totals.duration_s``); ``None`` without a prediction."""
        return self.totals.duration_s

    # ---------------------------------------------------------------- groupings
    def group(self, by: str = "layer", depth: int | None = None) -> list[Group]:
        """Groups in first-seen order. ``by``: layer (innermost module), module (path cut to
        ``depth`` components), op (dominant ATen op), phase, or node."""
        if by not in GROUP_BY:
            raise UserInputError(f"unknown grouping {by!r}; choose one of: {', '.join(GROUP_BY)}")
        if depth is not None and depth < 0:
            raise UserInputError(f"depth must be >= 0, got {depth}")
        buckets: dict[str, list[Row]] = {}
        types: dict[str, str] = {}
        for r in self.rows:
            key = self._key(r, by, depth)
            buckets.setdefault(key, []).append(r)
            types.setdefault(key, r.module_type if by in ("layer", "node") else "")
        return [Group(k, types[k], Totals.of(v)) for k, v in buckets.items()]

    @staticmethod
    def _key(r: Row, by: str, depth: int | None) -> str:
        if by == "node":
            return r.node
        if by == "op":
            return r.op
        if by == "phase":
            return r.phase
        path = r.module_path or "(root)"
        if by == "module" and depth is not None and r.module_path:
            path = ".".join(r.module_path.split(".")[: max(depth, 1)]) if depth else "(model)"
        if r.phase not in ("forward", "input") and by in ("layer", "module"):
            path = f"{path} [{r.phase}]"
        return path

    # ---------------------------------------------------------------- unmodeled ops
    @property
    def unmodeled(self) -> list[UnmodeledOp]:
        """Ops without a cost formula, with their share of (non-free) nodes and of bytes moved."""
        counted = [r for r in self.rows if not r.free]
        total_bytes = max(self.totals.bytes_moved, 1)
        seen: dict[str, tuple[int, int]] = {}
        for r in counted:
            for op in dict.fromkeys(r.unmodeled):
                n, b = seen.get(op, (0, 0))
                seen[op] = (n + 1, b + r.bytes_moved)
        return [
            UnmodeledOp(op, n, b, n / max(len(counted), 1), b / total_bytes)
            for op, (n, b) in sorted(seen.items(), key=lambda kv: -kv[1][1])
        ]

    # ---------------------------------------------------------------- export
    def to_dict(self, *, by: str | None = None, depth: int | None = None) -> dict[str, Any]:
        """JSON-ready dict (schema ``fxenergy.result/1``, documented in docs/schema.md)."""
        out: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "info": dict(self.info),
            "totals": _totals_dict(self.totals),
            "working_sets": asdict(self.working_sets),
            "unmodeled": [asdict(u) for u in self.unmodeled],
            "rows": [_row_dict(r) for r in self.rows],
        }
        if by is not None:
            out["groups"] = {
                "by": by,
                "depth": depth,
                "items": [{"key": g.key, "module_type": g.module_type, **_totals_dict(g.totals)} for g in self.group(by, depth)],
            }
        return out

    def to_json(self, *, by: str | None = None, depth: int | None = None, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(by=by, depth=depth), indent=indent)

    def to_dataframe(self) -> Any:
        """One row per node as a pandas DataFrame (needs pandas: ``pip install fxenergy[pandas]``): every
        :class:`Row` field (units in the column names), plus ``bytes_moved``.

        >>> import torch, fxenergy
        >>> df = fxenergy.annotate(torch.nn.Linear(4, 3), torch.randn(2, 4)).to_dataframe()
        >>> int(df["macs"].sum())  # 2 * 4 * 3 = 24
        24
        """
        try:
            import pandas as pd
        except ImportError:
            raise UserInputError("to_dataframe needs pandas: pip install 'fxenergy[pandas]' (or uv add pandas)") from None
        names = [f.name for f in fields(Row)]
        records = []
        for r in self.rows:
            d = {n: getattr(r, n) for n in names}
            d["unmodeled"] = ",".join(r.unmodeled)
            d["bytes_moved"] = r.bytes_moved
            records.append(d)
        return pd.DataFrame.from_records(records, columns=[*names, "bytes_moved"])

    def with_rows(self, rows: Sequence[Row], **info: Any) -> Result:
        """A copy with new rows (e.g. energy filled in by a predictor) and extra info."""
        return Result(self.graph_module, tuple(rows), self.working_sets, {**self.info, **info})

    def __repr__(self) -> str:
        t = self.totals
        return (
            f"Result({self.info.get('model', '?')}: {t.nodes} nodes, {t.macs:,} MACs, {t.flops:,} FLOPs, "
            f"{t.bytes_moved:,} bytes moved"
            + (f", {t.energy_j:.4g} J" if t.energy_j is not None else "")
            + ")"
        )


def _row_dict(r: Row) -> dict[str, Any]:
    d = {f.name: getattr(r, f.name) for f in fields(r)}
    d["unmodeled"] = list(r.unmodeled)
    return d


def _totals_dict(t: Totals) -> dict[str, Any]:
    return {f.name: getattr(t, f.name) for f in fields(t)}

