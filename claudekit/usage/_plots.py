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


def _axes() -> tuple[Figure, Axes]:
    """A figure of the usual size with one Axes."""
    fig = Figure(figsize=_FIGSIZE, layout="constrained")
    return fig, fig.add_subplot()


def _label(ax: Axes, title: str | None, xlabel: str, ylabel: str) -> None:
    if title is not None:
        ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _finish_axes(ax: Axes, texts: tuple[str, str, str], n: int, *, grid_axis: str = "both") -> None:
    """The axis set-up the plots share: title and labels, a light grid, one call centred on its tick."""
    _label(ax, *texts)
    ax.grid(True, axis=grid_axis, alpha=0.3)  # type: ignore[arg-type]
    if n == 1:
        ax.set_xlim(0.5, 1.5)
        ax.set_xticks([1])


def _empty_figure(title: str, xlabel: str, ylabel: str) -> Figure:
    fig, ax = _axes()
    _label(ax, title, xlabel, ylabel)
    ax.text(0.5, 0.5, "no calls yet", ha="center", va="center", transform=ax.transAxes, color=_INK)
    _neutral(fig)
    return fig


def _thin(n: int, max_points: int) -> np.ndarray:
    """Indices of every ``n // max_points``-th of n points, the last one always kept."""
    step = max(1, n // max_points)
    return np.unique(np.r_[np.arange(0, n, step), n - 1])


def _chat_series(df: pd.DataFrame, max_chats: int) -> tuple[list[str], list[str], np.ndarray]:
    """All chats; the chats drawn apart (["all"] for one, or more than ``max_chats``); each call's series."""
    all_chats = [str(c) for c in pd.unique(df["chat_id"].astype("object"))]
    if 1 < len(all_chats) <= max_chats:
        return all_chats, all_chats, df["chat_id"].astype("object").to_numpy()
    return all_chats, ["all"], np.full(len(df), "all", dtype=object)


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
    fig, ax = _axes()
    all_chats, chats, chat_arr = _chat_series(df, max_chats)
    if len(all_chats) > max_chats:
        title += f", {len(all_chats):,} chats"
    series = _HitRateSeries(df, chats, chat_arr)
    if len(df) <= max_points:
        series.draw_calls(ax, max_labels)
    else:
        title += series.draw_bins(ax, min(bins, len(df)))
    ax.set_ylim(-6, 112)
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    _finish_axes(ax, (title, xlabel, ylabel), len(df))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, framealpha=0.85, borderaxespad=0)
    _neutral(fig)
    return fig


_CUMULATIVE = "session, cumulative (over sums)"


class _HitRateSeries:
    """The numbers of the hit-rate plot, and its two ways to draw them (per call, or in bins)."""

    def __init__(self, df: pd.DataFrame, chats: list[str], chat_arr: np.ndarray) -> None:
        self.df, self.chats, self.chat_arr = df, chats, chat_arr
        self.multi = chats != ["all"]
        self.colours = _chat_colours(chats)
        self.x = df["call"].to_numpy()
        self.read = df["cache_read_input_tokens"].fillna(0).to_numpy(dtype="float64")
        self.prompt = _as_float(df["prompt_tokens"])
        self.known = ~np.isnan(self.prompt)
        cum_read = np.cumsum(np.where(self.known, self.read, 0.0))
        cum_prompt = np.cumsum(np.where(self.known, self.prompt, 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            self.cum_rate = np.where(cum_prompt > 0, cum_read / cum_prompt * 100.0, np.nan)
        self.miss_idx = np.flatnonzero(df["is_miss"].to_numpy(dtype=bool))

    def draw_calls(self, ax: Axes, max_labels: int) -> None:
        """One point per call and chat, misses crossed and labelled, the cumulative line."""
        n, x = len(self.df), self.x
        rate = _as_float(self.df["hit_rate"]) * 100.0
        for chat in self.chats:
            sel = (self.chat_arr == chat) & ~np.isnan(rate)
            ax.plot(
                x[sel],
                rate[sel],
                marker="o",
                markersize=4 if n > 60 else 6,
                linestyle="-" if not self.multi else ":",
                linewidth=0.8,
                color=self.colours[chat],
                label=f"chat {chat}" if self.multi else "per call",
            )
        if self.miss_idx.size:
            self._cross_misses(ax, np.nan_to_num(rate[self.miss_idx], nan=0.0), max_labels)
        ax.plot(x, self.cum_rate, color=_LINE, linewidth=2, label=_CUMULATIVE)

    def _cross_misses(self, ax: Axes, y_miss: np.ndarray, max_labels: int) -> None:
        idx = self.miss_idx
        ax.scatter(
            self.x[idx],
            y_miss,
            marker="x",
            s=60,
            color=_MISS,
            zorder=5,
            linewidths=2,
            label=f"cache miss ({idx.size}" + (f", {max_labels} labelled)" if idx.size > max_labels else ")"),
        )
        labels = self.df["miss_label"].to_numpy()
        for k, i in enumerate(idx[:max_labels]):
            ax.annotate(
                _shorten(str(labels[i])),
                xy=(self.x[i], y_miss[k]),
                xytext=(4, 28 + 14 * (k % 3)),
                textcoords="offset points",
                fontsize=7.5,
                color=_MISS,
                rotation=0,
                arrowprops={"arrowstyle": "-", "color": _MISS, "lw": 0.6},
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": _MISS, "lw": 0.5, "alpha": 0.85},
            )

    def draw_bins(self, ax: Axes, nb: int) -> str:
        """One rate per bin and chat (over the bin's sums), the cumulative line, misses as a rug and a box
        of top reasons; returns what the title should add."""
        n, x = len(self.df), self.x
        b = _bins(n, nb)
        centres = np.array([x[b == i].mean() for i in range(nb)])
        for chat in self.chats:
            sel_chat = (self.chat_arr == chat) & self.known
            r = np.bincount(b[sel_chat], weights=self.read[sel_chat], minlength=nb)
            p = np.bincount(b[sel_chat], weights=self.prompt[sel_chat], minlength=nb)
            with np.errstate(invalid="ignore", divide="ignore"):
                rate_b = np.where(p > 0, r / p * 100.0, np.nan)
            label = f"chat {chat}, per bin" if self.multi else "per bin (over sums)"
            ax.plot(centres, rate_b, marker=".", linewidth=1, color=self.colours[chat], label=label)
        keep = _thin(n, 2000)
        ax.plot(x[keep], self.cum_rate[keep], color=_LINE, linewidth=2, label=_CUMULATIVE)
        if self.miss_idx.size:
            self._miss_rug(ax, centres[np.unique(b[self.miss_idx])])
        return f" ({n:,} calls in {nb} bins of ~{max(1, n // nb)})"

    def _miss_rug(self, ax: Axes, centres: np.ndarray) -> None:
        idx = self.miss_idx
        ax.plot(
            centres,
            np.full(centres.size, -3.0),
            linestyle="none",
            marker="|",
            markersize=10,
            color=_MISS,
            label=f"bins with misses ({idx.size:,} misses)",
        )
        counts = Counter(str(v) for v in self.df["miss_label"].to_numpy()[idx])
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
        if len(sub) <= max_bars:
            _token_bars(ax, sub, legend=(k == 0))
            panel_ylabel = ylabel
        else:
            binned_any = True
            panel_ylabel = _token_bins(ax, sub, min(bins, len(sub)), legend=(k == 0))
        ax.yaxis.set_major_formatter(_tokens_formatter())
        if chat is not None:
            _label(ax, None, xlabel, panel_ylabel)
            ax.set_title(f"chat {chat}", fontsize=10)
        else:
            binned = f" ({len(df):,} calls, binned)" if binned_any else ""
            several = f", {len(chats)} chats" if len(chats) > 1 else ""
            _label(ax, title + binned + several, xlabel, panel_ylabel)
        ax.grid(True, axis="y", alpha=0.3)
    if len(facets) > 1:
        fig.suptitle(title + (" (binned)" if binned_any else ""))
    axes[0].legend(loc="best", fontsize=8, framealpha=0.85)
    _neutral(fig)
    return fig


def _token_columns(sub: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Call number, cache read, cache write and uncached input tokens of each call."""
    return (
        sub["call"].to_numpy(),
        sub["cache_read_input_tokens"].fillna(0).to_numpy(dtype="float64"),
        sub["cache_creation_input_tokens"].fillna(0).to_numpy(dtype="float64"),
        sub["input_tokens"].fillna(0).to_numpy(dtype="float64"),
    )


def _token_bars(ax: Axes, sub: pd.DataFrame, *, legend: bool) -> None:
    x, read, write, unc = _token_columns(sub)
    width = 0.8 if len(sub) < 2 else max(0.8 * float(np.min(np.diff(x))), 0.8)
    _stack(ax, x, read, write, unc, width, legend=legend)
    if len(sub) == 1:
        ax.set_xlim(x[0] - 1, x[0] + 1)
        ax.set_xticks([int(x[0])])


def _token_bins(ax: Axes, sub: pd.DataFrame, nb: int, *, legend: bool) -> str:
    """Calls summed into nb bins of equal width; returns the panel's y label."""
    x, read, write, unc = _token_columns(sub)
    b = _bins(len(sub), nb)
    starts = np.array([x[b == i].min() for i in range(nb)], dtype="float64")
    ends = np.array([x[b == i].max() for i in range(nb)], dtype="float64")
    r, w, u = (np.bincount(b, weights=column, minlength=nb) for column in (read, write, unc))
    _stack(ax, (starts + ends) / 2, r, w, u, float(np.min(ends - starts + 1)) * 0.9, legend=legend)
    return f"Input tokens per bin (~{len(sub) // nb} calls)"


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
    fig, ax = _axes()
    x = df["call"].to_numpy()
    cost = np.nan_to_num(_as_float(df["cost_usd"]), nan=0.0)
    cum_cost = np.cumsum(cost)
    cum_nc = np.cumsum(np.nan_to_num(_as_float(df["cost_no_cache_usd"]), nan=0.0))
    _cost_lines(ax, x, cum_cost, cum_nc, max_points)
    _, chats, chat_arr = _chat_series(df, max_chats)
    if chats != ["all"]:
        colours = _chat_colours(chats)
        for chat in chats:
            sel = chat_arr == chat
            cx, cy = x[sel], np.cumsum(cost[sel])
            kk = _thin(len(cx), max_points)
            ax.plot(cx[kk], cy[kk], linewidth=1, color=colours[chat], label=f"chat {chat} (actual)")
    _savings_note(ax, float(x[-1]), float(cum_cost[-1]), float(cum_nc[-1]))
    unpriced = int((df["cost_usd"].isna() & df["input_tokens"].notna() & df["output_tokens"].notna()).sum())
    if unpriced:
        title += f" ({unpriced:,} unpriced call{'s' if unpriced != 1 else ''} excluded)"
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: _usd(v, tick=True)))
    _finish_axes(ax, (title, xlabel, ylabel), len(df))
    ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
    _neutral(fig)
    return fig


def _cost_lines(ax: Axes, x: np.ndarray, cum_cost: np.ndarray, cum_nc: np.ndarray, max_points: int) -> None:
    """The session's cumulative cost with and without caching, the gap shaded green (saved) or red."""
    keep = _thin(len(x), max_points)
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


def _savings_note(ax: Axes, last_x: float, cost: float, no_cache: float) -> None:
    saved = no_cache - cost
    pct = saved / no_cache * 100.0 if no_cache > 0 else 0.0
    verb = "saved" if saved >= 0 else "extra"
    ax.annotate(
        f"{verb} {_usd(abs(saved))} ({abs(pct):.0f}%)\nactual {_usd(cost)} · no cache {_usd(no_cache)}",
        xy=(last_x, cost),
        xytext=(-10, 12),
        textcoords="offset points",
        ha="right",
        fontsize=8,
        bbox={"boxstyle": "round", "fc": "white", "ec": "grey", "alpha": 0.9},
    )
