"""The result frame: the input's columns, index and order, plus the answer and bookkeeping columns.

With ``output_format`` each top-level field of the schema is a column with a pandas nullable dtype
(string, Int64, Float64, boolean; a string enum is a categorical; arrays and objects stay Python
objects); without it the answer is ``claude_text``. Bookkeeping columns are prefixed ``claude_``.
Rows that share a request (identical prompts) share its answer; the request's cost and tokens are on
its first row and 0 on the others, so each column's sum is what the calls cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ._fields import BOOKKEEPING, OUTPUT_COLUMN, TEXT_COLUMN, Field
from ._outcome import Outcome

__all__ = ["result_frame"]


class Rows(Protocol):
    """What the frame needs to know about a job's rows (a :class:`~claudekit.frame._plan.Plan` has it)."""

    @property
    def index(self) -> pd.Index: ...
    @property
    def row_fp(self) -> list[str | None]: ...
    @property
    def row_error(self) -> dict[int, str]: ...
    @property
    def fields(self) -> list[Field] | None: ...


def result_frame(
    rows: Rows, outcomes: Mapping[str, Outcome], base: pd.DataFrame | None, *, pending: str = "pending"
) -> pd.DataFrame:
    """The result frame; rows whose request has no outcome yet get the status ``pending``."""
    n = len(rows.row_fp)
    fields = rows.fields
    names = [TEXT_COLUMN] if fields is None else [f.name for f in fields]
    answers: dict[str, list[Any]] = {name: [None] * n for name in names}
    book: dict[str, list[Any]] = {name: [None] * n for name in BOOKKEEPING}
    status, error, cost = book["claude_status"], book["claude_error"], book["claude_cost_usd"]
    t_in, t_out, t_read = (
        book["claude_input_tokens"],
        book["claude_output_tokens"],
        book["claude_cache_read_input_tokens"],
    )
    billed: set[str] = set()
    for i, fp in enumerate(rows.row_fp):
        if fp is None:
            status[i], error[i] = "prompt_error", rows.row_error.get(i)
            continue
        o = outcomes.get(fp)
        if o is None:
            status[i] = pending
            continue
        status[i], error[i] = o.status, o.error
        first = fp not in billed
        billed.add(fp)
        cost[i] = o.cost if first or o.cost is None else 0.0
        t_in[i] = o.input_tokens if first or o.input_tokens is None else 0
        t_out[i] = o.output_tokens if first or o.output_tokens is None else 0
        t_read[i] = o.cache_read if first or o.cache_read is None else 0
        if fields is None:
            answers[TEXT_COLUMN][i] = o.text
        elif o.data is not None:
            for name in names:
                answers[name][i] = o.data.get(name) if name != OUTPUT_COLUMN else o.data
    columns: dict[str, Any] = {}
    kinds = {TEXT_COLUMN: Field(TEXT_COLUMN, "string")} if fields is None else {f.name: f for f in fields}
    for name in names:
        columns[name] = _column(kinds[name], answers[name])
    columns["claude_status"] = pd.array(status, dtype="string")
    columns["claude_error"] = pd.array(error, dtype="string")
    columns["claude_cost_usd"] = pd.array(cost, dtype="Float64")
    for name in BOOKKEEPING[3:]:
        columns[name] = pd.array(book[name], dtype="Int64")
    if base is None:
        fresh: pd.DataFrame = pd.DataFrame(columns, index=rows.index)
        return fresh
    out: pd.DataFrame = base.copy()
    for name, values in columns.items():
        out[name] = values
    return out


def _column(field: Field, values: list[Any]) -> Any:
    """Values as the field's nullable dtype; anything that does not fit keeps them as objects."""
    kind = field.kind
    try:
        if kind == "string":
            return pd.array(
                [v if v is None or isinstance(v, str) else str(v) for v in values], dtype="string"
            )
        if kind == "integer":
            return pd.array(values, dtype="Int64")
        if kind == "number":
            return pd.array([None if v is None else float(v) for v in values], dtype="Float64")
        if kind == "boolean":
            return pd.array(values, dtype="boolean")
        if kind == "category":
            return pd.Categorical(values, categories=list(field.categories))
    except (TypeError, ValueError):
        pass
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
