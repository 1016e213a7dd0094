"""Usage records as columns and as the usage DataFrame (the log, the plots and history() share it)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from ._record import UsageRecord

__all__ = ["COLUMNS", "records_frame"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)

# (column, kind) in DataFrame order. Kinds: ts, int, float, cat, str.
_RECORD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("timestamp", "ts"),
    ("chat_id", "cat"),
    ("turn", "int"),
    ("step", "int"),
    ("model", "cat"),
    ("status", "cat"),
    ("request_id", "str"),
    ("message_id", "str"),
    ("stop_reason", "cat"),
    ("input_tokens", "int"),
    ("cache_creation_input_tokens", "int"),
    ("cache_creation_5m_input_tokens", "int"),
    ("cache_creation_1h_input_tokens", "int"),
    ("cache_read_input_tokens", "int"),
    ("output_tokens", "int"),
    ("thinking_tokens", "int"),
    ("server_tool_uses", "int"),
    ("latency_s", "float"),
    ("ttft_s", "float"),
    ("cost_usd", "float"),
    ("cost_no_cache_usd", "float"),
    ("cache_miss_reason", "cat"),
    ("cache_missed_input_tokens", "int"),
    ("client_miss_reason", "str"),
    ("service_tier", "cat"),
    ("web_search_requests", "int"),
    ("web_fetch_requests", "int"),
    ("code_execution_requests", "int"),
)
_FIELD_NAMES = tuple(name for name, _ in _RECORD_COLUMNS)
#: Every column of :attr:`UsageLog.df`, including the derived ones
#: (prompt_tokens, hit_rate, savings_usd, miss_reason).
COLUMNS: tuple[str, ...] = (*_FIELD_NAMES, "prompt_tokens", "hit_rate", "savings_usd", "miss_reason")


def _empty_columns() -> dict[str, list[Any]]:
    return {name: [] for name in (*_FIELD_NAMES, "miss_reason")}


def _masked(values: list[Any], kind: str) -> Any:
    """A nullable Int64/Float64 array from a list with None for missing values.

    Through a float64 array (numpy turns None into NaN in C): 2-3x faster than ``pd.array(values,
    dtype=...)``, which checks each value in Python. Exact for integers: counts are at most
    ``MAX_TOKENS`` (1e9), far below 2**53."""
    import numpy as np
    import pandas as pd

    floats = np.array(values, dtype="float64")
    missing = np.isnan(floats)
    filled = np.where(missing, 0.0, floats)
    if kind == "int":
        return pd.arrays.IntegerArray(filled.astype("int64"), missing)
    return pd.arrays.FloatingArray(filled, missing)


def _build_frame(cols: dict[str, list[Any]]) -> pd.DataFrame:
    import numpy as np  # pandas and numpy load on first use: `import claudekit` stays light
    import pandas as pd

    data: dict[str, Any] = {}
    for name, kind in _RECORD_COLUMNS:
        values = cols[name]
        if kind == "ts":
            data[name] = pd.to_datetime(np.asarray(values, dtype="int64"), unit="us", utc=True)
        elif kind in ("int", "float"):
            data[name] = _masked(values, kind)
        elif kind == "cat":
            data[name] = pd.Categorical(values)
        else:
            data[name] = pd.array(values, dtype="string")
    df = pd.DataFrame(data)
    inp = df["input_tokens"]
    prompt = inp + df["cache_creation_input_tokens"].fillna(0) + df["cache_read_input_tokens"].fillna(0)
    df["prompt_tokens"] = prompt  # NA where input_tokens is NA
    prompt_f = prompt.astype("Float64").mask(prompt == 0)
    df["hit_rate"] = df["cache_read_input_tokens"].fillna(0).astype("Float64") / prompt_f
    df["savings_usd"] = df["cost_no_cache_usd"] - df["cost_usd"]
    df["miss_reason"] = pd.array(cols["miss_reason"], dtype="string")
    frame: pd.DataFrame = df
    return frame


def append_record(cols: dict[str, list[Any]], record: UsageRecord) -> None:
    """Add one record's values to the columns (as :func:`build_frame` reads them)."""
    for name in _FIELD_NAMES:
        cols[name].append(getattr(record, name))
    cols["timestamp"][-1] = (record.timestamp - _EPOCH) // _US
    cols["miss_reason"].append(record.miss_reason)


def records_frame(records: Iterable[UsageRecord]) -> pd.DataFrame:
    """The usage DataFrame of some records (what :attr:`UsageLog.df` is for a log's)."""
    cols = _empty_columns()
    for record in records:
        append_record(cols, record)
    return _build_frame(cols)
