"""``to_dataframe``: the rows of a Result as a pandas DataFrame (pandas is optional: ``fxenergy[pandas]``)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from fxenergy.errors import UserInputError
from fxenergy.result import Result, Row

__all__ = ["to_dataframe"]


def to_dataframe(result: Result) -> Any:
    """One row per graph node with every :class:`~fxenergy.result.Row` field (units in the column
    names: ``flops`` = 2 × ``macs``, ``bytes_*``, ``duration_s``, ``energy_j``), plus ``bytes_moved``.

    >>> import torch, fxenergy
    >>> df = to_dataframe(fxenergy.annotate(torch.nn.Linear(4, 3), torch.randn(2, 4)))
    >>> int(df["macs"].sum())  # 2 * 4 * 3 = 24
    24
    """
    try:
        import pandas as pd
    except ImportError:
        raise UserInputError("to_dataframe needs pandas: pip install 'fxenergy[pandas]' (or uv add pandas)") from None
    names = [f.name for f in fields(Row)]
    records = []
    for r in result.rows:
        d = {n: getattr(r, n) for n in names}
        d["unmodeled"] = ",".join(r.unmodeled)
        d["bytes_moved"] = r.bytes_moved
        records.append(d)
    return pd.DataFrame.from_records(records, columns=[*names, "bytes_moved"])
