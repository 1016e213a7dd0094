"""UsageLog: append-only, columnar, optionally persisted to JSONL."""

from __future__ import annotations

import json
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _seams
from .._base._secrets import scrub
from ._frame import COLUMNS, _build_frame, _empty_columns, append_record
from ._record import UsageRecord

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["COLUMNS", "UsageLog", "session_log"]


def _sum_int(values: Iterable[int | None]) -> int:
    return sum(v for v in values if v is not None)


class UsageLog:
    """An append-only log of :class:`UsageRecord`.

    - ``UsageLog()``: in memory. ``UsageLog(path)``: records already in ``path`` (JSONL) are loaded, and every
      appended record is written to it as one line. ``UsageLog(parent=session_log())``: every append is
      forwarded to the parent (that is how a chat's log feeds the session-wide log).
    - ``append`` is O(1): values go into per-column lists; :attr:`df` builds the DataFrame from them.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, parent: UsageLog | None = None) -> None:
        self._records: list[UsageRecord] = []
        self._cols = _empty_columns()
        self._lock = threading.RLock()
        self._df: pd.DataFrame | None = None
        self.parent = parent
        self._sinks: list[Callable[[UsageRecord], None]] = []
        self.path: Path | None = None
        if path is not None:
            p = Path(path)
            if p.exists():
                for record in _read_jsonl(p):
                    self._store(record)
            self.path = p

    # ------------------------------------------------------------------ appending
    def _store(self, record: UsageRecord) -> None:
        append_record(self._cols, record)
        self._records.append(record)
        self._df = None

    def append(self, record: UsageRecord) -> None:
        """Add one record (and forward it to the parent log; write it to the JSONL file if set)."""
        if not isinstance(record, UsageRecord):
            raise TypeError(f"UsageLog.append expects a UsageRecord, got {type(record).__name__}")
        with self._lock:
            self._store(record)
            if self.path is not None:
                line = scrub(json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":")))
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
        for sink in self._sinks:
            try:
                sink(record)
            except Exception as exc:  # a sink must never break the call that produced the record
                warnings.warn(
                    f"claudekit.usage: a subscriber of the usage log failed ({type(exc).__name__}: {exc})",
                    UsageLogWarning,
                    stacklevel=2,
                )
        if self.parent is not None and self.parent is not self:
            self.parent.append(record)

    def subscribe(self, sink: Callable[[UsageRecord], None]) -> None:
        """Call ``sink(record)`` after each append (the session log feeds the store this way)."""
        self._sinks.append(sink)

    def extend(self, records: Iterable[UsageRecord]) -> None:
        for record in records:
            self.append(record)

    def clear(self) -> None:
        """Forget the in-memory records (the JSONL file, if any, is left untouched)."""
        with self._lock:
            self._records = []
            self._cols = _empty_columns()
            self._df = None

    # ------------------------------------------------------------------ container protocol
    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[UsageRecord]:
        return iter(list(self._records))

    def __getitem__(self, index: int) -> UsageRecord:
        return self._records[index]

    @property
    def records(self) -> list[UsageRecord]:
        """A copy of the records, oldest first."""
        return list(self._records)

    # ------------------------------------------------------------------ tables
    @property
    def df(self) -> pd.DataFrame:
        """One row per call (a copy). Datetimes are tz-aware UTC, counts nullable ``Int64``, amounts
        ``Float64``, ids/models/status categoricals. Derived: ``prompt_tokens``, ``hit_rate``,
        ``savings_usd``, ``miss_reason``."""
        with self._lock:
            if self._df is None:
                self._df = _build_frame(self._cols)
            frame: pd.DataFrame = self._df.copy()
            return frame

    def summary(self) -> pd.DataFrame:
        """One row per model: calls, errors, token sums, hit rate over sums, cost, cost without cache,
        savings, mean latency and median TTFT. Cost is NA for a model with no known price."""
        return summarize(self.df)

    @property
    def hit_rate(self) -> float | None:
        """Session cache hit rate over sums: sum(cache_read) / sum(input + cache_read + cache_creation)."""
        recs = [r for r in self._records if r.input_tokens is not None]
        total = _sum_int(r.prompt_tokens for r in recs)
        if total == 0:
            return None
        return _sum_int(r.cache_read_input_tokens for r in recs) / total

    @property
    def total_cost(self) -> float | None:
        """Sum of ``cost_usd``. ``None`` when some call with usage has no known price
        (see :attr:`unpriced_calls`) or when there is no priced call at all."""
        if self.unpriced_calls:
            return None
        costs = [r.cost_usd for r in self._records if r.cost_usd is not None]
        return math.fsum(costs) if costs else None

    @property
    def total_cost_no_cache(self) -> float | None:
        if self.unpriced_calls:
            return None
        costs = [r.cost_no_cache_usd for r in self._records if r.cost_no_cache_usd is not None]
        return math.fsum(costs) if costs else None

    @property
    def unpriced_calls(self) -> int:
        """Calls that reported usage but whose model has no known price."""
        return sum(
            1
            for r in self._records
            if r.cost_usd is None and r.input_tokens is not None and r.output_tokens is not None
        )

    def for_chat(self, chat_id: str) -> UsageLog:
        """A new in-memory log with the records of one chat."""
        out = UsageLog()
        for r in self._records:
            if r.chat_id == chat_id:
                out._store(r)
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write all records to ``path`` as JSONL (overwriting it)."""
        with Path(path).open("w", encoding="utf-8") as fh:
            for r in self._records:
                fh.write(scrub(json.dumps(r.to_dict(), ensure_ascii=False, separators=(",", ":"))) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> UsageLog:
        """Read a JSONL file written by a log. Corrupt lines are skipped with a warning naming the line.
        The returned log is not attached to the file (appends stay in memory); use ``UsageLog(path)`` to
        continue writing to it."""
        log = cls()
        for record in _read_jsonl(Path(path)):
            log._store(record)
        return log

    # ------------------------------------------------------------------ display
    def plot(self, **kwargs: Any) -> Figure:
        """The cache hit-rate plot (see :func:`claudekit.usage.plot_cache_hit_rate`)."""
        from ._plots import plot_cache_hit_rate

        return plot_cache_hit_rate(self, **kwargs)

    def __repr__(self) -> str:
        n = len(self._records)
        chats = len({r.chat_id for r in self._records})
        rate = self.hit_rate
        cost = self.total_cost
        rate_s = f"{rate:.1%}" if rate is not None else "n/a"
        cost_s = f"${cost:,.4f}" if cost is not None else ("n/a" if not self.unpriced_calls else "unknown")
        tokens_in = _sum_int(r.input_tokens for r in self._records)
        tokens_read = _sum_int(r.cache_read_input_tokens for r in self._records)
        tokens_write = _sum_int(r.cache_creation_input_tokens for r in self._records)
        tokens_out = _sum_int(r.output_tokens for r in self._records)
        return (
            f"UsageLog({n} calls, {chats} chats, input={tokens_in:,}, cache_read={tokens_read:,}, "
            f"cache_write={tokens_write:,}, output={tokens_out:,}, hit_rate={rate_s}, cost={cost_s})"
        )

    def _repr_html_(self) -> str:
        from ._display import log_html

        return log_html(self)


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    """Per-model summary of a usage DataFrame (as produced by :attr:`UsageLog.df`)."""
    columns = [
        "calls",
        "errors",
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
        "thinking_tokens",
        "hit_rate",
        "cost_usd",
        "cost_no_cache_usd",
        "savings_usd",
        "mean_latency_s",
        "median_ttft_s",
    ]
    if df.empty:
        empty: pd.DataFrame = pd.DataFrame(columns=pd.Index(columns))
        empty.index.name = "model"
        return empty
    g = df.groupby("model", observed=True, sort=True)
    sums = g[
        [
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
            "thinking_tokens",
        ]
    ].sum(min_count=1)
    out = pd.DataFrame(index=sums.index)
    out["calls"] = g.size().astype("Int64")
    out["errors"] = g["status"].apply(lambda s: int((s.astype("string") != "ok").sum())).astype("Int64")
    for col in sums.columns:
        out[col] = sums[col].astype("Int64")
    priced = df["input_tokens"].notna()
    prompt_sum = df[priced].groupby("model", observed=True)["prompt_tokens"].sum()
    read_sum = df[priced].groupby("model", observed=True)["cache_read_input_tokens"].sum()
    rate = read_sum.astype("Float64") / prompt_sum.astype("Float64").mask(prompt_sum == 0)
    out["hit_rate"] = rate.reindex(out.index).astype("Float64")

    # cost is NA for a model if any of its calls with usage is unpriced
    has_usage = df["input_tokens"].notna() & df["output_tokens"].notna()
    unpriced = (has_usage & df["cost_usd"].isna()).groupby(df["model"], observed=True).any()
    for col in ("cost_usd", "cost_no_cache_usd", "savings_usd"):
        s = g[col].sum(min_count=1).astype("Float64")
        out[col] = s.mask(unpriced.reindex(s.index).fillna(False).astype(bool))
    out["mean_latency_s"] = g["latency_s"].mean().astype("Float64")
    out["median_ttft_s"] = g["ttft_s"].median().astype("Float64")
    out.index = pd.Index(out.index.astype(str), name="model")
    result: pd.DataFrame = out[columns]
    return result


def _read_jsonl(path: Path) -> Iterator[UsageRecord]:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                data = json.loads(text)
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                record = UsageRecord.from_dict(data)
            except (ValueError, TypeError, KeyError) as exc:
                warnings.warn(
                    f"{path}:{lineno}: skipping corrupt usage line ({type(exc).__name__}: {exc})",
                    UsageLogWarning,
                    stacklevel=3,
                )
                continue
            yield record


class UsageLogWarning(UserWarning):
    """A usage JSONL line could not be read."""


_session_lock = threading.Lock()
_session: UsageLog | None = None


def session_log() -> UsageLog:
    """The process-wide log that every chat's log forwards to."""
    global _session
    with _session_lock:
        if _session is None:
            _session = UsageLog()
            _session.subscribe(_to_store)
        return _session


def log_for(usage_log: UsageLog | str | os.PathLike[str] | None) -> UsageLog:
    """A job's usage log: the session's, or the one given (or one on the path given) forwarding to it."""
    if usage_log is None:  # the session's log itself: a job's calls are there "as usual"
        return session_log()
    if isinstance(usage_log, UsageLog):
        return usage_log
    return UsageLog(path=usage_log, parent=session_log())


def _to_store(record: UsageRecord) -> None:
    """Every record of the session goes to its listeners too: the store (unless CLAUDEKIT_STORE=off)."""
    for listener in _seams.usage_listeners:
        listener(record)
