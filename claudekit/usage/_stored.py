"""Usage across sessions: the store's ``calls`` table as the usage DataFrame."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pandas as pd

from .. import _seams
from .._base._errors import ConfigError
from ._frame import _build_frame
from ._log import summarize
from ._record import miss_reason_text

__all__ = ["UsageFrame", "history"]

_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w|wk|weeks?)\s*$", re.I
)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class _UsagePlot:
    """``frame.plot()`` is the cache hit-rate figure (as ``UsageLog.plot()``); ``frame.plot.bar(...)``,
    ``frame.plot(kind=...)`` and the rest are pandas' own plotting."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def _pandas(self) -> Any:
        from pandas.plotting import PlotAccessor

        return PlotAccessor(self._frame)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args or "kind" in kwargs or "x" in kwargs or "y" in kwargs:
            return self._pandas()(*args, **kwargs)
        from ._plots import plot_cache_hit_rate

        return plot_cache_hit_rate(self._frame, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pandas(), name)


class UsageFrame(pd.DataFrame):
    """The usage DataFrame (the columns and dtypes of ``chat.usage.df``) with ``.summary()`` (one row per
    model) and ``.plot()`` (the cache hit-rate figure)."""

    @property
    def _constructor(self) -> type[UsageFrame]:
        return UsageFrame

    def summary(self) -> pd.DataFrame:
        """One row per model, as ``UsageLog.summary()``."""
        return summarize(pd.DataFrame(self))

    @property
    def plot(self) -> _UsagePlot:  # type: ignore[override]
        return _UsagePlot(pd.DataFrame(self))


def _to_us(at: datetime) -> int:
    at = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)
    return (at - _EPOCH) // timedelta(microseconds=1)


def _time_us(value: Any, name: str) -> int | None:
    """A bound given as "7d"/"12h"/"30m" (ago), a timedelta (ago), a datetime/date, or an ISO string."""
    if value is None:
        return None
    now = datetime.now(timezone.utc)
    if isinstance(value, timedelta):
        return _to_us(now - value)
    if isinstance(value, datetime):
        return _to_us(value)
    if isinstance(value, date):
        return _to_us(datetime.combine(value, time(), tzinfo=timezone.utc))
    if isinstance(value, pd.Timestamp):
        return _to_us(value.to_pydatetime())
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            seconds = float(m.group(1)) * _UNIT_S[m.group(2)[0].lower()]
            return _to_us(now - timedelta(seconds=seconds))
        try:
            return _to_us(pd.Timestamp(value).to_pydatetime())
        except ValueError:
            pass
    raise ConfigError(
        f"{name}={value!r} is not a time: use a duration such as '7d', '12h' or '30m', a datetime, "
        "or an ISO date such as '2026-11-01'"
    )


def history(
    since: str | timedelta | datetime | date | None = None,
    *,
    until: str | timedelta | datetime | date | None = None,
    model: str | list[str] | None = None,
    notebook: str | None = None,
    chat: str | None = None,
    session: str | None = None,
) -> UsageFrame:
    """Every stored API call (all kernels, all sessions) as the usage DataFrame, oldest first.

    ``since="7d"`` (or "12h", "30m", a timedelta, a datetime, "2026-11-01"), ``until``, ``model`` (one
    name or a list), ``notebook`` (a path, or just its file name), ``chat`` (name or stored id) and
    ``session`` (a kernel's session id) narrow it down. Empty when the store is off or empty."""
    query_calls = _seams.store_hooks.get("query_calls")  # the store registers it: usage never imports it
    if query_calls is None:
        raise ConfigError(
            "usage.history() reads claudekit's store, which is not loaded", hint="import claudekit"
        )
    cols = query_calls(
        since_us=_time_us(since, "since"),
        until_us=_time_us(until, "until"),
        model=model,
        notebook=notebook,
        chat=chat,
        session=session,
    )
    cols["miss_reason"] = [
        miss_reason_text(s, c)
        for s, c in zip(cols["cache_miss_reason"], cols["client_miss_reason"], strict=True)
    ]
    frame: UsageFrame = UsageFrame(_build_frame(cols))
    return frame
