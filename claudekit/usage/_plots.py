"""Matplotlib figures for a usage log (object-oriented API only; nothing is shown or touches pyplot)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure as _MplFigure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from ._frame import records_frame
from ._record import UsageRecord


class Figure(_MplFigure):
    """A matplotlib Figure that shows itself in Jupyter without pyplot.

    Our plots never touch pyplot's global state, so the inline backend's display hook is not
    registered; ``_repr_png_`` makes the figure render as a picture anyway.
    """

    def _repr_png_(self) -> bytes:
        import io

        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=100, transparent=True)
        return buf.getvalue()


# Text, axes and grid in a grey that reads on a light and on a dark notebook (4.5:1 on white, 4.2:1 on
# JupyterLab's dark background) over a transparent figure: the kernel cannot know the page's theme.
_INK = "#767676"
# The session's own line, drawn black before: invisible on a dark notebook. A lighter grey, at least 3:1
# (WCAG's figure for graphics) against white and against JupyterLab's dark background alike.
_LINE = "#8c8c8c"


def _neutral(fig: _MplFigure) -> None:
    """Theme-neutral colours for everything drawn in the default black, and integer call numbers."""
    from matplotlib.text import Text

    fig.patch.set_alpha(0.0)
    for ax in fig.axes:
        ax.set_facecolor("none")
        ax.tick_params(colors=_INK, which="both")
        for spine in ax.spines.values():
            spine.set_color(_INK)
        if ax.get_xlabel().startswith("API call"):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        legend = ax.get_legend()
        if legend is not None:
            legend.get_frame().set_facecolor("none")
            legend.get_frame().set_edgecolor(_INK)
    for text in fig.findobj(Text):
        if mpl.colors.same_color(text.get_color(), "black"):
            text.set_color(_INK)


__all__ = ["plot_cache_hit_rate", "plot_cost", "plot_input_tokens", "usage_frame"]


@runtime_checkable
class HasFrame(Protocol):
    """A :class:`~claudekit.usage.UsageLog`, or anything with the usage DataFrame as ``.df``."""

    @property
    def df(self) -> pd.DataFrame: ...


_FIGSIZE = (9.0, 4.5)
_READ, _WRITE, _UNCACHED = "#2e7d32", "#ef6c00", "#5c6bc0"
_MISS = "#c62828"


def usage_frame(source: HasFrame | pd.DataFrame | Iterable[UsageRecord]) -> pd.DataFrame:
    """The DataFrame of a log, a DataFrame from ``log.df`` or an iterable of records, in session order,
    with a 1-based ``call`` column and an ``is_miss`` flag.

    A call is a miss when a reason is known (server diagnostics or client tracker), or when it wrote to the
    cache and read nothing although an earlier call of the same chat exists (reason unknown).
    """
    if isinstance(source, pd.DataFrame):
        df = source.copy()
    elif isinstance(source, HasFrame):  # a UsageLog (this module does not import it: the log plots itself)
        df = source.df
    else:
        df = records_frame(source)
    df = df.sort_values("timestamp", kind="stable").reset_index(drop=True)
    df["call"] = np.arange(1, len(df) + 1)
    read = df["cache_read_input_tokens"].fillna(0).to_numpy(dtype="int64")
    write = df["cache_creation_input_tokens"].fillna(0).to_numpy(dtype="int64")
    later = df.groupby("chat_id", observed=True, sort=False).cumcount().to_numpy() > 0
    has_reason = df["miss_reason"].notna().to_numpy(dtype=bool)
    df["is_miss"] = has_reason | ((read == 0) & (write > 0) & later)
    labels = df["miss_reason"].astype("object").where(df["miss_reason"].notna(), None)
    frame: pd.DataFrame = df
    frame["miss_label"] = [
        (lab if lab is not None else "wrote cache, read none (reason unknown)") if miss else None
        for lab, miss in zip(labels, df["is_miss"], strict=True)
    ]
    return frame


def _as_float(series: pd.Series) -> np.ndarray:
    return series.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)


def _chat_colours(chats: list[str]) -> dict[str, Any]:
    cycle = list(mpl.rcParams["axes.prop_cycle"].by_key().get("color", [])) or [f"C{i}" for i in range(10)]
    return {chat: cycle[i % len(cycle)] for i, chat in enumerate(chats)}


def _usd(value: float, tick: bool = False) -> str:
    """A dollar amount for matplotlib text (the $ is escaped so it is not read as mathtext)."""
    a = abs(value)
    if tick:
        text = f"{value:,.0f}" if a >= 100 else f"{value:,.2f}" if a >= 1 else f"{value:.4g}"
    else:
        text = f"{value:,.2f}" if a >= 100 else f"{value:,.4f}"
    return "\\$" + text


def _bins(n: int, nbins: int) -> np.ndarray:
    """Bin number (0-based) of each of n calls, for nbins equal-width bins over call order."""
    return (np.arange(n) * nbins) // n


def _shorten(text: str, width: int = 42) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _empty_figure(title: str, xlabel: str, ylabel: str) -> Figure:
    fig = Figure(figsize=_FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.text(0.5, 0.5, "no calls yet", ha="center", va="center", transform=ax.transAxes, color=_INK)
    _neutral(fig)
    return fig


def plot_cache_hit_rate(
    source: HasFrame | pd.DataFrame | Iterable[UsageRecord],
    *,
    max_points: int = 400,
    bins: int = 100,
    max_labels: int = 8,
    max_chats: int = 8,
) -> Figure:
    """Per-call cache hit rate (%, coloured by chat), the cumulative session rate (over sums) as a line,
    and misses marked with a red ✕ and labelled with their reason.

    Above ``max_points`` calls, per-call points are replaced by per-bin rates (``bins`` bins, rate over the
    bin's sums, one line per chat) and misses by a rug of ticks plus a box counting the top reasons.
    With more than ``max_chats`` chats, chats are not told apart (one series for all).
    """
    xlabel, ylabel = "API call # (session order)", "Cache hit rate (% of prompt tokens)"
    title = "Prompt cache hit rate per call"
    df = usage_frame(source)
    if df.empty:
        return _empty_figure(title, xlabel, ylabel)
    fig = Figure(figsize=_FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    n = len(df)
    x = df["call"].to_numpy()
    read = df["cache_read_input_tokens"].fillna(0).to_numpy(dtype="float64")
    prompt = _as_float(df["prompt_tokens"])
    known = ~np.isnan(prompt)
    cum_read = np.cumsum(np.where(known, read, 0.0))
    cum_prompt = np.cumsum(np.where(known, prompt, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        cum_rate = np.where(cum_prompt > 0, cum_read / cum_prompt * 100.0, np.nan)
    all_chats = [str(c) for c in pd.unique(df["chat_id"].astype("object"))]
    multi = 1 < len(all_chats) <= max_chats
    if multi:
        chats = all_chats
        chat_arr = df["chat_id"].astype("object").to_numpy()
    else:
        chats = ["all"]
        chat_arr = np.full(n, "all", dtype=object)
    colours = _chat_colours(chats)
    if len(all_chats) > max_chats:
        title += f", {len(all_chats):,} chats"
    misses = df["is_miss"].to_numpy(dtype=bool)

    if n <= max_points:
        rate = _as_float(df["hit_rate"]) * 100.0
        for chat in chats:
            sel = (chat_arr == chat) & ~np.isnan(rate)
            ax.plot(
                x[sel],
                rate[sel],
                marker="o",
                markersize=4 if n > 60 else 6,
                linestyle="-" if not multi else ":",
                linewidth=0.8,
                color=colours[chat],
                label=f"chat {chat}" if multi else "per call",
            )
        miss_idx = np.flatnonzero(misses)
        if miss_idx.size:
            y_miss = np.nan_to_num(rate[miss_idx], nan=0.0)
            ax.scatter(
                x[miss_idx],
                y_miss,
                marker="x",
                s=60,
                color=_MISS,
                zorder=5,
                linewidths=2,
                label=f"cache miss ({miss_idx.size}"
                + (f", {max_labels} labelled)" if miss_idx.size > max_labels else ")"),
            )
            labels = df["miss_label"].to_numpy()
            for k, i in enumerate(miss_idx[:max_labels]):
                dy = 28 + 14 * (k % 3)
                ax.annotate(
                    _shorten(str(labels[i])),
                    xy=(x[i], y_miss[k]),
                    xytext=(4, dy),
                    textcoords="offset points",
                    fontsize=7.5,
                    color=_MISS,
                    rotation=0,
                    arrowprops={"arrowstyle": "-", "color": _MISS, "lw": 0.6},
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": _MISS, "lw": 0.5, "alpha": 0.85},
                )
        ax.plot(x, cum_rate, color=_LINE, linewidth=2, label="session, cumulative (over sums)")
    else:
        nb = min(bins, n)
        b = _bins(n, nb)
        centres = np.array([x[b == i].mean() for i in range(nb)])
        per = max(1, n // nb)
        title += f" ({n:,} calls in {nb} bins of ~{per})"
        for chat in chats:
            sel_chat = (chat_arr == chat) & known
            r = np.bincount(b[sel_chat], weights=read[sel_chat], minlength=nb)
            p = np.bincount(b[sel_chat], weights=prompt[sel_chat], minlength=nb)
            with np.errstate(invalid="ignore", divide="ignore"):
                rate_b = np.where(p > 0, r / p * 100.0, np.nan)
            ax.plot(
                centres,
                rate_b,
                marker=".",
                linewidth=1,
                color=colours[chat],
                label=(f"chat {chat}, per bin" if multi else "per bin (over sums)"),
            )
        step = max(1, n // 2000)
        keep = np.unique(np.r_[np.arange(0, n, step), n - 1])
        ax.plot(x[keep], cum_rate[keep], color=_LINE, linewidth=2, label="session, cumulative (over sums)")
        miss_idx = np.flatnonzero(misses)
        if miss_idx.size:
            miss_bins = np.unique(b[miss_idx])
            ax.plot(
                centres[miss_bins],
                np.full(miss_bins.size, -3.0),
                linestyle="none",
                marker="|",
                markersize=10,
                color=_MISS,
                label=f"bins with misses ({miss_idx.size:,} misses)",
            )
            counts = Counter(str(v) for v in df["miss_label"].to_numpy()[miss_idx])
            lines = [f"{_shorten(reason, 48)} ×{c:,}" for reason, c in counts.most_common(4)]
            ax.text(
                0.99,
                0.03,
                "Top miss reasons:\n" + "\n".join(lines),
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=7.5,
                color=_MISS,
                bbox={"boxstyle": "round", "fc": "white", "ec": _MISS, "alpha": 0.85},
            )
    ax.set_ylim(-6, 112)
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if n == 1:
        ax.set_xlim(0.5, 1.5)
        ax.set_xticks([1])
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, framealpha=0.85, borderaxespad=0)
    _neutral(fig)
    return fig


def _stack(
    ax: Axes,
    x: np.ndarray,
    read: np.ndarray,
    write: np.ndarray,
    uncached: np.ndarray,
    width: float,
    legend: bool,
) -> None:
    ax.bar(x, read, width=width, color=_READ, label="cache read" if legend else None)
    ax.bar(x, write, width=width, bottom=read, color=_WRITE, label="cache write" if legend else None)
    ax.bar(
        x,
        uncached,
        width=width,
        bottom=read + write,
        color=_UNCACHED,
        label="uncached input" if legend else None,
    )


def _tokens_formatter() -> FuncFormatter:
    def fmt(value: float, _pos: int) -> str:
        if abs(value) >= 1e6:
            return f"{value / 1e6:.1f}M"
        if abs(value) >= 1e3:
            return f"{value / 1e3:.0f}k"
        return f"{value:.0f}"

    return FuncFormatter(fmt)


def plot_input_tokens(
    source: HasFrame | pd.DataFrame | Iterable[UsageRecord],
    *,
    max_bars: int = 120,
    bins: int = 80,
    max_facets: int = 4,
) -> Figure:
    """Stacked input tokens per call: cache read / cache write / uncached.

    Several chats (up to ``max_facets``) get one panel each; more chats share one panel in session order.
    Above ``max_bars`` calls per panel, calls are summed into ``bins`` bins.
    """
    title = "Input tokens per call"
    xlabel, ylabel = "API call # (session order)", "Input tokens"
    df = usage_frame(source)
    if df.empty:
        return _empty_figure(title, xlabel, ylabel)
    chats = [str(c) for c in pd.unique(df["chat_id"].astype("object"))]
    facets = chats if 1 < len(chats) <= max_facets else [None]
    fig = Figure(
        figsize=(_FIGSIZE[0], 1.0 + 2.4 * len(facets)) if len(facets) > 1 else _FIGSIZE, layout="constrained"
    )
    axes = fig.subplots(len(facets), 1, squeeze=False, sharex=False)[:, 0]
    chat_arr = df["chat_id"].astype("object").to_numpy()
    binned_any = False
    for k, (ax, chat) in enumerate(zip(axes, facets, strict=True)):
        sub = df if chat is None else df[chat_arr == chat]
        x = sub["call"].to_numpy()
        read = sub["cache_read_input_tokens"].fillna(0).to_numpy(dtype="float64")
        write = sub["cache_creation_input_tokens"].fillna(0).to_numpy(dtype="float64")
        unc = sub["input_tokens"].fillna(0).to_numpy(dtype="float64")
        m = len(sub)
        if m <= max_bars:
            width = 0.8 if m < 2 else max(0.8 * float(np.min(np.diff(x))), 0.8)
            _stack(ax, x, read, write, unc, width, legend=(k == 0))
            ax.set_ylabel(ylabel)
            if m == 1:
                ax.set_xlim(x[0] - 1, x[0] + 1)
                ax.set_xticks([int(x[0])])
        else:
            binned_any = True
            nb = min(bins, m)
            b = _bins(m, nb)
            starts = np.array([x[b == i].min() for i in range(nb)], dtype="float64")
            ends = np.array([x[b == i].max() for i in range(nb)], dtype="float64")
            centres = (starts + ends) / 2
            width = float(np.min(ends - starts + 1)) * 0.9
            _stack(
                ax,
                centres,
                np.bincount(b, weights=read, minlength=nb),
                np.bincount(b, weights=write, minlength=nb),
                np.bincount(b, weights=unc, minlength=nb),
                width,
                legend=(k == 0),
            )
            ax.set_ylabel(f"Input tokens per bin (~{m // nb} calls)")
        ax.yaxis.set_major_formatter(_tokens_formatter())
        ax.set_xlabel(xlabel)
        ax.grid(True, axis="y", alpha=0.3)
        if chat is not None:
            ax.set_title(f"chat {chat}", fontsize=10)
        else:
            ax.set_title(
                title
                + (f" ({len(df):,} calls, binned)" if binned_any else "")
                + (f", {len(chats)} chats" if len(chats) > 1 else "")
            )
    if len(facets) > 1:
        fig.suptitle(title + (" (binned)" if binned_any else ""))
    axes[0].legend(loc="best", fontsize=8, framealpha=0.85)
    _neutral(fig)
    return fig


def plot_cost(
    source: HasFrame | pd.DataFrame | Iterable[UsageRecord],
    *,
    max_points: int = 2000,
    max_chats: int = 8,
) -> Figure:
    """Cumulative cost against the cost without caching (savings shaded); per-chat cumulative cost as thin
    lines when there are several chats (up to ``max_chats``). Calls with no known price are left out and
    counted in the title."""
    title = "Cumulative cost vs. no caching"
    xlabel, ylabel = "API call # (session order)", "Cumulative cost (USD)"
    df = usage_frame(source)
    if df.empty:
        return _empty_figure(title, xlabel, ylabel)
    fig = Figure(figsize=_FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    n = len(df)
    x = df["call"].to_numpy()
    cost = np.nan_to_num(_as_float(df["cost_usd"]), nan=0.0)
    no_cache = np.nan_to_num(_as_float(df["cost_no_cache_usd"]), nan=0.0)
    unpriced = int((df["cost_usd"].isna() & df["input_tokens"].notna() & df["output_tokens"].notna()).sum())
    cum_cost, cum_nc = np.cumsum(cost), np.cumsum(no_cache)
    step = max(1, n // max_points)
    keep = np.unique(np.r_[np.arange(0, n, step), n - 1])
    xs, cc, nc = x[keep], cum_cost[keep], cum_nc[keep]
    ax.plot(xs, nc, color=_INK, linestyle="--", linewidth=1.8, label="without caching")
    ax.plot(xs, cc, color=_LINE, linewidth=2, label="actual (with caching)")
    ax.fill_between(xs, cc, nc, where=nc >= cc, color=_READ, alpha=0.2, interpolate=True, label="saved")
    ax.fill_between(
        xs,
        cc,
        nc,
        where=nc < cc,
        color=_MISS,
        alpha=0.2,
        interpolate=True,
        label="cache writes not yet repaid",
    )
    chats = [str(c) for c in pd.unique(df["chat_id"].astype("object"))]
    if 1 < len(chats) <= max_chats:
        colours = _chat_colours(chats)
        chat_arr = df["chat_id"].astype("object").to_numpy()
        for chat in chats:
            sel = chat_arr == chat
            cx = x[sel]
            cy = np.cumsum(cost[sel])
            s = max(1, len(cx) // max_points)
            kk = np.unique(np.r_[np.arange(0, len(cx), s), len(cx) - 1])
            ax.plot(cx[kk], cy[kk], linewidth=1, color=colours[chat], label=f"chat {chat} (actual)")
    saved = float(cum_nc[-1] - cum_cost[-1])
    pct = saved / cum_nc[-1] * 100.0 if cum_nc[-1] > 0 else 0.0
    verb = "saved" if saved >= 0 else "extra"
    ax.annotate(
        f"{verb} {_usd(abs(saved))} ({abs(pct):.0f}%)\n"
        f"actual {_usd(cum_cost[-1])} · no cache {_usd(cum_nc[-1])}",
        xy=(x[-1], cum_cost[-1]),
        xytext=(-10, 12),
        textcoords="offset points",
        ha="right",
        fontsize=8,
        bbox={"boxstyle": "round", "fc": "white", "ec": "grey", "alpha": 0.9},
    )
    if unpriced:
        title += f" ({unpriced:,} unpriced call{'s' if unpriced != 1 else ''} excluded)"
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: _usd(v, tick=True)))
    ax.grid(True, alpha=0.3)
    if n == 1:
        ax.set_xlim(0.5, 1.5)
        ax.set_xticks([1])
    ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
    _neutral(fig)
    return fig
