"""Text and HTML renderings: the per-reply footer and the log's notebook table (no IPython import)."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from typing import TYPE_CHECKING, Protocol

from .._base._markup import clean
from ._record import UsageRecord

if TYPE_CHECKING:
    import pandas as pd


class LogView(Protocol):
    """What the table needs of a :class:`~claudekit.usage.UsageLog` (the log imports this module)."""

    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[UsageRecord]: ...
    def summary(self) -> pd.DataFrame: ...
    @property
    def df(self) -> pd.DataFrame: ...
    @property
    def hit_rate(self) -> float | None: ...
    @property
    def total_cost(self) -> float | None: ...
    @property
    def total_cost_no_cache(self) -> float | None: ...
    @property
    def unpriced_calls(self) -> int: ...


__all__ = ["compact_frame", "footer_html", "footer_text", "log_html"]


def _tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def _money(x: float) -> str:
    if x == 0:
        return "$0"
    if abs(x) < 0.01:
        return f"${x:.4f}"
    return f"${x:,.3f}" if abs(x) < 10 else f"${x:,.2f}"


def _parts(record: UsageRecord, latency_label: str = "") -> list[str]:
    parts: list[str] = []
    if record.status != "ok":
        parts.append(record.status)
    if record.input_tokens is None and record.output_tokens is None:
        parts.append("usage n/a")
    else:
        prompt = record.prompt_tokens
        parts.append(f"{_tokens(prompt)} in" if prompt is not None else "in n/a")
        if record.output_tokens is not None:
            out = f"{_tokens(record.output_tokens)} out"
            if record.thinking_tokens:
                out += f" ({_tokens(record.thinking_tokens)} thinking)"
            parts.append(out)
        else:
            parts.append("out n/a")
        rate = record.hit_rate
        if rate is not None:
            cache = f"cache {rate:.0%}"
            if record.cache_creation_input_tokens:
                cache += f", +{_tokens(record.cache_creation_input_tokens)} written"
            parts.append(cache)
    server = _server_tools_text(record)
    if server:
        parts.append(server)
    if record.cost_usd is not None:
        cost = _money(record.cost_usd)
        saved = record.savings_usd
        if saved is not None and saved > 0:
            cost += f" (saved {_money(saved)})"
        parts.append(cost)
    elif record.input_tokens is not None:
        parts.append("cost n/a")
    if record.latency_s is not None:
        lat = f"{latency_label}{record.latency_s:.1f} s"
        if record.ttft_s is not None:
            lat += f" (first token {record.ttft_s:.1f} s)"
        parts.append(lat)
    return parts


_SERVER_TOOLS = (
    ("web_search_requests", "search", "searches"),
    ("web_fetch_requests", "fetch", "fetches"),
    ("code_execution_requests", "code run", "code runs"),
)


def _server_tools_text(record: UsageRecord) -> str:
    """``2 searches, 1 code run``: the service's own tools this call used (they are in the cost)."""
    said = []
    for name, one, many in _SERVER_TOOLS:
        n = getattr(record, name)
        if n:
            said.append(f"{n} {one if n == 1 else many}")
    return ", ".join(said)


# Costs are text: JupyterLab typesets "$0.01 … $0.02" in HTML outputs as inline math without this.
_NO_MATH = "tex2jax_ignore mathjax_ignore"


def footer_text(record: UsageRecord, *, latency_label: str = "") -> str:
    """One line under a reply, e.g. ``12.3k in · 410 out · cache 92% · $0.0121 (saved $0.0290) · 2.4 s``.

    ``latency_label`` qualifies the time (``"API "`` when a reply also waited for tools or a person).
    """
    text = " · ".join(_parts(record, latency_label))
    reason = record.miss_reason
    if reason:
        text += f" · cache miss: {reason}"
    return text


def footer_html(record: UsageRecord) -> str:
    """:func:`footer_text` as a small grey HTML line; the model and request id are in the tooltip."""
    title = f"{record.model} · {record.request_id or 'no request id'}"
    body = escape(" · ".join(_parts(record)))
    reason = record.miss_reason
    if reason:
        body += f" · <b>cache miss:</b> {escape(reason)}"
    # JupyterLab's theme colour where there is one (dark themes), a grey readable on white elsewhere.
    ok = record.status == "ok"
    colour = "var(--jp-ui-font-color2, #4b5563)" if ok else "var(--jp-error-color1, #b91c1c)"
    return clean(
        f'<div class="claudekit-usage-footer {_NO_MATH}" title="{escape(title)}" '
        f'style="font-size:0.8em;color:{colour};font-family:system-ui,sans-serif;margin-top:2px">'
        f"{body}</div>"
    )


def compact_frame(df: pd.DataFrame, *, chats: bool | None = None) -> pd.DataFrame:
    """The calls of a usage DataFrame for people: time, turn, model, tokens, cache %, cost, status and
    why the cache missed (``log.df`` has every column, ids and microsecond timestamps included).
    ``chats``: a chat column (default: when the calls come from more than one chat)."""
    from datetime import datetime

    import pandas as pd

    here = datetime.now().astimezone().tzinfo  # the reader's clock, to the second
    times = df["timestamp"].dt.tz_convert(here).dt.strftime("%H:%M:%S") if len(df) else []
    out = pd.DataFrame(
        {
            "time": pd.Series(times, index=df.index, dtype="object"),
            "turn": df["turn"],
            "model": df["model"].astype("object"),
            "in": df["prompt_tokens"],
            "out": df["output_tokens"],
            "cache %": (df["hit_rate"] * 100).round(0).astype("Int64"),
            "cost $": df["cost_usd"].round(4),
            "status": df["status"].astype("object"),
            "miss reason": df["miss_reason"].astype("object").fillna(""),
        }
    )
    for name, _, many in _SERVER_TOOLS:  # only when some call used the service's own tools
        if name in df and df[name].fillna(0).sum() > 0:
            out.insert(out.columns.get_loc("cost $"), many, df[name])
    if chats or (chats is None and df["chat_id"].nunique() > 1):
        out.insert(1, "chat", df["chat_id"].astype("object"))
    result: pd.DataFrame = out.reset_index(drop=True)
    return result


# Tables sit in the cell's width: short headers, no wrapped model names, a scroll bar when still wider.
_FIT = "overflow-x:auto;max-width:100%"
_SUMMARY_HEADERS = {
    "input_tokens": "input",
    "cache_creation_input_tokens": "cache write",
    "cache_read_input_tokens": "cache read",
    "output_tokens": "output",
    "thinking_tokens": "thinking",
    "hit_rate": "hit rate",
    "cost_usd": "cost $",
    "cost_no_cache_usd": "no cache $",
    "savings_usd": "saved $",
    "mean_latency_s": "latency s",
    "median_ttft_s": "first token s",
}


def log_html(log: LogView, max_rows: int = 10) -> str:
    """Compact notebook table: a header line, the per-model summary and the last ``max_rows`` calls."""
    n = len(log)
    rate = log.hit_rate
    cost = log.total_cost
    head = f"<b>UsageLog</b>: {n} call{'s' if n != 1 else ''}, {len({r.chat_id for r in log})} chat(s)"
    if rate is not None:
        head += f" · cache hit rate {rate:.1%}"
    if cost is not None:
        head += f" · cost {escape(_money(cost))}"
        no_cache = log.total_cost_no_cache
        if no_cache is not None:
            head += f" (without caching {escape(_money(no_cache))})"
    elif log.unpriced_calls:
        head += f" · cost unknown ({log.unpriced_calls} unpriced call(s))"
    if n == 0:
        return f"<div>{head}</div>"
    summary = log.summary().rename(columns=_SUMMARY_HEADERS)
    summary_html = summary.to_html(
        na_rep="–",
        float_format=lambda x: f"{x:,.4f}",
        classes="claudekit-usage-summary",
        border=0,
    ).replace("<th>", '<th style="white-space:nowrap">')
    recent = compact_frame(log.df.tail(max_rows), chats=True)
    recent_html = recent.to_html(
        na_rep="–",
        index=False,
        float_format=lambda x: f"{x:,.4f}",
        classes="claudekit-usage-recent",
        border=0,
    )
    # Model names and chat ids come from the service and the user: through the one allow-list too.
    return clean(
        f'<div class="claudekit-usage-log {_NO_MATH}" style="font-size:0.85em">'
        f'<div>{head}</div><div style="{_FIT}">{summary_html}</div>'
        f"<details><summary>last {min(max_rows, n)} calls</summary>"
        f'<div style="{_FIT}">{recent_html}</div></details></div>'
    )
