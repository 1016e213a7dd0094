"""Plots: assertions on the Figure's artists for 1 call, a few calls with misses, 10k calls, several chats."""

from __future__ import annotations

import warnings
from datetime import timedelta

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from claudekit.usage import (
    UsageLog,
    UsageRecord,
    plot_cache_hit_rate,
    plot_cost,
    plot_input_tokens,
    usage_frame,
)

from ._support import T0

PLOTS = (plot_cache_hit_rate, plot_input_tokens, plot_cost)


def rec(
    i: int,
    chat: str = "a",
    *,
    read: int = 0,
    write: int = 0,
    inp: int = 100,
    out: int = 50,
    reason: str | None = None,
    client: str | None = None,
    model: str = "claude-sonnet-4-6",
) -> UsageRecord:
    return UsageRecord(
        timestamp=T0 + timedelta(seconds=i),
        chat_id=chat,
        turn=i,
        step=0,
        model=model,
        input_tokens=inp,
        output_tokens=out,
        cache_read_input_tokens=read,
        cache_creation_input_tokens=write,
        cache_miss_reason=reason,
        client_miss_reason=client,
    ).priced()


def small_session() -> UsageLog:
    """6 calls, 2 chats, 2 misses with known reasons (hand-made numbers)."""
    log = UsageLog()
    log.append(rec(0, "a", write=1000))  # a: first call, writes
    log.append(rec(1, "b", write=2000))  # b: first call, writes
    log.append(rec(2, "a", read=1000, write=100))
    log.append(rec(3, "b", read=0, write=2100, reason="system_changed"))  # miss (server)
    log.append(rec(4, "a", read=0, write=1200, client="TTL likely expired (idle 6 min > 5m TTL)"))  # miss
    log.append(rec(5, "b", read=2100, write=50))
    return log


def big_session(n: int = 10_000, chats: int = 1) -> UsageLog:
    log = UsageLog()
    for i in range(n):
        miss = i % 500 == 250
        log.append(
            rec(
                i,
                f"c{i % chats}",
                read=0 if miss else 5000,
                write=5000 if miss else 100,
                reason="tools_changed" if miss else None,
            )
        )
    return log


def axis_texts(fig: Figure) -> list[tuple[str, str, str]]:
    return [(ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]


@pytest.mark.parametrize("plot", PLOTS)
def test_every_plot_has_title_labels_units_and_avoids_pyplot(plot) -> None:  # type: ignore[no-untyped-def]
    before = plt.get_fignums()
    for log in (small_session(), big_session(2000, chats=3)):
        fig = plot(log)
        assert isinstance(fig, Figure)
        for title, xlabel, ylabel in axis_texts(fig):
            assert title and xlabel and ylabel
            assert "#" in xlabel or "(" in xlabel
        assert any(u in " ".join(y for _, _, y in axis_texts(fig)) for u in ("%", "USD", "tokens", "Tokens"))
    assert plt.get_fignums() == before  # never registered with pyplot


def test_hit_rate_one_call() -> None:
    log = UsageLog()
    log.append(rec(0, read=300, write=0, inp=100))
    fig = plot_cache_hit_rate(log)
    ax = fig.axes[0]
    per_call = [ln for ln in ax.get_lines() if ln.get_label() == "per call"]
    assert len(per_call) == 1
    assert list(per_call[0].get_ydata()) == [pytest.approx(75.0)]
    cumulative = [ln for ln in ax.get_lines() if "cumulative" in str(ln.get_label())]
    assert list(cumulative[0].get_ydata()) == [pytest.approx(75.0)]


def test_hit_rate_misses_are_marked_and_labelled_per_chat() -> None:
    log = small_session()
    fig = plot_cache_hit_rate(log)
    ax = fig.axes[0]
    chat_lines = {str(ln.get_label()): ln for ln in ax.get_lines() if str(ln.get_label()).startswith("chat ")}
    assert set(chat_lines) == {"chat a", "chat b"}
    assert sum(len(ln.get_xdata()) for ln in chat_lines.values()) == 6
    assert list(chat_lines["chat a"].get_xdata()) == [1, 3, 5]
    annotations = [c for c in ax.get_children() if isinstance(c, Annotation)]
    texts = sorted(a.get_text() for a in annotations)
    assert texts == ["TTL likely expired (idle 6 min > 5m TTL)", "system prompt changed"]
    miss_xy = sorted(tuple(a.xy) for a in annotations)
    assert [x for x, _ in miss_xy] == [4, 5]
    cumulative = next(ln for ln in ax.get_lines() if "cumulative" in str(ln.get_label()))
    # session rate over sums after all 6 calls: reads 3100 / (600 input + 6450 written + 3100 read)
    assert cumulative.get_ydata()[-1] == pytest.approx(3100 / (600 + 6450 + 3100) * 100)
    assert "cache miss (2)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_unknown_miss_reason_detected_from_write_without_read() -> None:
    log = UsageLog()
    log.append(rec(0, write=1000))
    log.append(rec(1, read=1000))
    log.append(rec(2, write=1500))  # wrote again, read nothing, no reason known
    df = usage_frame(log)
    assert df["is_miss"].tolist() == [False, False, True]
    assert df["miss_label"].iloc[2] == "wrote cache, read none (reason unknown)"


def test_hit_rate_10k_calls_is_binned_not_a_forest() -> None:
    log = big_session(10_000)
    fig = plot_cache_hit_rate(log, bins=100)
    ax = fig.axes[0]
    per_bin = [ln for ln in ax.get_lines() if "per bin" in str(ln.get_label())]
    assert len(per_bin) == 1
    assert len(per_bin[0].get_xdata()) == 100
    cumulative = next(ln for ln in ax.get_lines() if "cumulative" in str(ln.get_label()))
    assert len(cumulative.get_xdata()) <= 2001
    assert "10,000 calls in 100 bins" in ax.get_title()
    rug = next(ln for ln in ax.get_lines() if "misses" in str(ln.get_label()))
    assert len(rug.get_xdata()) == 20  # one miss every 500 calls, each in its own bin
    box = [t.get_text() for t in ax.texts if "Top miss reasons" in t.get_text()]
    assert box and "tools changed ×20" in box[0]


def test_hit_rate_many_chats_are_not_one_line_each() -> None:
    log = big_session(3000, chats=50)
    ax = plot_cache_hit_rate(log).axes[0]
    assert len(ax.get_lines()) <= 3
    assert "50 chats" in ax.get_title()


def test_input_tokens_one_call_stack() -> None:
    log = UsageLog()
    log.append(rec(0, read=700, write=200, inp=100))
    ax = plot_input_tokens(log).axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 3
    heights = [[p.get_height() for p in b.patches] for b in bars]
    assert heights == [[700], [200], [100]]
    bottoms = [b.patches[0].get_y() for b in bars]
    assert bottoms == [0, 700, 900]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["cache read", "cache write", "uncached input"]


def test_input_tokens_faceted_by_chat() -> None:
    fig = plot_input_tokens(small_session())
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["chat a", "chat b"]
    assert fig.get_suptitle() == "Input tokens per call"
    bars_a = [c for c in fig.axes[0].containers if isinstance(c, BarContainer)]
    assert [len(b.patches) for b in bars_a] == [3, 3, 3]


def test_input_tokens_10k_binned_sums_preserved() -> None:
    log = big_session(10_000)
    ax = plot_input_tokens(log, bins=80).axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [len(b.patches) for b in bars] == [80, 80, 80]
    read_total = sum(p.get_height() for p in bars[0].patches)
    assert read_total == pytest.approx(sum(r.cache_read_input_tokens or 0 for r in log))
    assert "per bin" in ax.get_ylabel()


def test_cost_lines_end_at_totals_and_show_savings() -> None:
    log = small_session()
    ax = plot_cost(log).axes[0]
    lines = {str(ln.get_label()): ln for ln in ax.get_lines()}
    # hand totals: every call 100 input × $3 + 50 output × $15; writes $3.75; reads $0.30 (per MTok)
    writes, reads = 1000 + 2000 + 100 + 2100 + 1200 + 50, 1000 + 2100
    actual = (6 * (100 * 3 + 50 * 15) + writes * 3.75 + reads * 0.3) / 1e6
    no_cache = (6 * (100 * 3 + 50 * 15) + (writes + reads) * 3) / 1e6
    assert lines["actual (with caching)"].get_ydata()[-1] == pytest.approx(actual)
    assert lines["without caching"].get_ydata()[-1] == pytest.approx(no_cache)
    assert {"chat a (actual)", "chat b (actual)"} <= set(lines)
    note = [t.get_text() for t in ax.texts]
    assert any(("saved" in t or "extra" in t) and "%" in t for t in note)


def test_cost_10k_downsampled_and_unpriced_noted() -> None:
    log = big_session(10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log.append(rec(20_000, model="claude-sonnet-6"))
    ax = plot_cost(log, max_points=1000).axes[0]
    actual = next(ln for ln in ax.get_lines() if ln.get_label() == "actual (with caching)")
    assert len(actual.get_xdata()) <= 1002
    assert actual.get_xdata()[-1] == 10_001
    assert "1 unpriced call excluded" in ax.get_title()
    assert np.all(np.diff(actual.get_ydata()) >= 0)


@pytest.mark.parametrize("plot", PLOTS)
def test_plots_accept_df_records_and_empty(plot) -> None:  # type: ignore[no-untyped-def]
    log = small_session()
    from_df = plot(log.df)
    from_records = plot(log.records)
    assert axis_texts(from_df) == axis_texts(plot(log)) == axis_texts(from_records)
    empty = plot(UsageLog())
    assert any("no calls" in t.get_text() for t in empty.axes[0].texts)


def test_log_plot_is_the_hit_rate_plot() -> None:
    fig = small_session().plot()
    assert fig.axes[0].get_title() == "Prompt cache hit rate per call"


@pytest.mark.parametrize("plot", PLOTS)
def test_few_calls_get_whole_call_numbers_and_theme_neutral_colours(plot) -> None:  # type: ignore[no-untyped-def]
    import matplotlib as mpl

    fig = plot([rec(i, read=10 * i) for i in range(3)])
    fig.canvas.draw()
    for ax in fig.axes:
        if ax.get_xlabel().startswith("API call"):
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert ax.get_facecolor()[3] == 0  # transparent: the notebook's own background shows
    texts = [t for t in fig.findobj(mpl.text.Text) if t.get_text()]
    assert texts and not [t.get_text() for t in texts if mpl.colors.same_color(t.get_color(), "black")]
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_calls_says_so() -> None:
    fig = plot_cache_hit_rate(UsageLog())
    assert "no calls yet" in [t.get_text() for t in fig.axes[0].texts]


def _contrast(a: str | tuple[float, ...], b: str) -> float:
    import matplotlib as mpl

    def lum(c: str | tuple[float, ...]) -> float:
        rgb = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in mpl.colors.to_rgb(c)]
        return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("plot", PLOTS)
def test_lines_read_on_light_and_dark_notebooks(plot) -> None:  # type: ignore[no-untyped-def]
    # The figure is transparent: its lines sit on the notebook's white or on JupyterLab's dark theme
    # (#111111). WCAG asks 3:1 for graphics; black lines vanish on the dark theme. (matplotlib's own
    # colour cycle, used per chat, and its grid grey get 2:1 on white: lighter, still seen.)
    from matplotlib.lines import Line2D

    fig = plot(
        [rec(i, "a" if i % 2 else "b", read=10 * i, reason="ttl" if i == 3 else None) for i in range(6)]
    )
    lines = [ln for ln in fig.findobj(Line2D) if len(ln.get_xdata()) > 1 and ln.get_visible()]
    assert lines
    for ln in lines:
        colour = ln.get_color()
        assert _contrast(colour, "#111111") >= 3, (ln.get_label(), colour)
        assert _contrast(colour, "#ffffff") >= 2, (ln.get_label(), colour)
