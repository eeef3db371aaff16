"""``to_dataframe``: the rows of a Result as a pandas DataFrame (pandas is optional: ``fxenergy[pandas]``).

The conversion lives in :meth:`fxenergy.result.Result.to_dataframe` (the result must not import the
report layer above it); this function is the report layer's spelling of it.
"""

from __future__ import annotations

from typing import Any

from fxenergy.result import Result

__all__ = ["to_dataframe"]


def to_dataframe(result: Result) -> Any:
    """One row per graph node with every :class:`~fxenergy.result.Row` field, plus ``bytes_moved``.

    >>> import torch, fxenergy
    >>> df = to_dataframe(fxenergy.annotate(torch.nn.Linear(4, 3), torch.randn(2, 4)))
    >>> int(df["macs"].sum())  # 2 * 4 * 3 = 24
    24
    """
    return result.to_dataframe()
