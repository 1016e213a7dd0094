"""Throttling, the widget renderer (widgets without a kernel), the text renderer and the factory."""

from __future__ import annotations

import asyncio
import sys
import types
from typing import Any

import pytest

import claudekit as ck
import claudekit.notebook as nb
from claudekit.notebook import Throttle, ViewState
from claudekit.notebook._text import TextRenderer
from claudekit.notebook._widget import WidgetRenderer
from tests.notebook.helpers import collect, delta_chat, tool_chat, tool_deltas


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FakeDisplay:
    """Stands in for IPython.display.display: records bundles and display-handle updates."""

    def __init__(self) -> None:
        self.shown: list[tuple[Any, dict[str, Any]]] = []
        self.updates: list[Any] = []

    def __call__(self, obj: Any, **kw: Any) -> Any:
        self.shown.append((obj, kw))
        outer = self

        class Handle:
            def update(self, data: Any, **_: Any) -> None:
                outer.updates.append(data)

        return Handle() if kw.get("display_id") else None


def answer_markdown(r: WidgetRenderer) -> str:
    outputs = r.answer.outputs
    return str(outputs[0]["data"]["text/markdown"]) if outputs else ""


@pytest.fixture(autouse=True)
def _reset_config() -> Any:
    yield
    nb.configure(mode="env", rate=15, static=True)


def test_throttle_first_at_once_then_at_most_rate() -> None:
    clock = Clock()
    th = Throttle(10, clock)
    assert th.poll()
    assert not th.poll()
    clock.t += 0.05
    assert not th.poll()
    clock.t += 0.05
    assert th.poll()
    assert th.refreshes == 2
    with pytest.raises(ValueError):
        Throttle(0)


def text_events(n: int) -> list[ck.Event]:
    return [
        ck.MessageStart(0, "m", "claude-test", ck.Usage(1, 1)),
        *(ck.TextDelta(0, f"w{i} ") for i in range(n)),
    ]


def test_instant_stream_is_coalesced_and_final_state_flushed() -> None:
    clock = Clock()
    disp = FakeDisplay()
    r = WidgetRenderer(15, clock=clock, display=disp, static=False)
    r.start({"model": "claude-test", "chat": "c"})
    events = text_events(10_000)
    for ev in events:
        r.event(ev)
    during = r.refreshes
    assert during <= 4  # build + first event + status changes, never one per delta
    reply = ck.Reply("claude-test")
    r.finish(reply, None)
    assert r.refreshes == during + 1
    full = "".join(e.text for e in events if isinstance(e, ck.TextDelta))
    assert r.state.text == full
    assert answer_markdown(r) == full
    assert r.state.status == "done" and "done" in r.header.value


async def test_with_static_output_the_final_state_goes_to_the_static_bundle() -> None:
    disp = FakeDisplay()
    # rate 0.2: the trailing-edge timer (5 s) cannot fire during this instant stream.
    r = WidgetRenderer(0.2, clock=Clock(), display=disp)
    stream = delta_chat(3000, render=False).stream("go")
    r.start({"model": "claude-test"})
    async for ev in stream:
        r.event(ev)
    assert "w2999" not in answer_markdown(r)  # coalesced away during the instant stream
    r.finish(stream.reply, None)
    final, _ = disp.shown[-1]
    assert "w2999" in final["text/markdown"] and "w2999" in final["text/plain"]


def test_slow_stream_refreshes_at_most_rate_per_second() -> None:
    clock = Clock()
    r = WidgetRenderer(15, clock=clock, display=FakeDisplay(), static=False)
    r.start({"model": "m"})
    for ev in text_events(2000):  # 2000 events over 2 seconds
        clock.t += 0.001
        r.event(ev)
        if isinstance(ev, ck.TextDelta) and ev.text == "w0 ":
            assert "w0" in answer_markdown(r)  # the first delta shows at once
    assert 2 * 15 <= r.refreshes <= 2 * 15 + 4
    # Between refreshes the widget lags; the last events are not shown until finish flushes.
    assert answer_markdown(r) != r.state.text
    r.finish(ck.Reply("m"), None)
    assert answer_markdown(r) == r.state.text


async def test_a_held_change_is_shown_when_the_interval_ends_without_another_event() -> None:
    r = WidgetRenderer(20, display=FakeDisplay(), static=False)  # real clock, real event loop
    r.start({"model": "m"})
    r.event(ck.MessageStart(0, "m", "m", ck.Usage(1, 1)))
    r.event(ck.TextDelta(0, "Hello"))  # a status change: shown at once
    assert answer_markdown(r) == "Hello"
    r.event(ck.TextDelta(0, " world"))  # inside the 50 ms interval: held
    assert answer_markdown(r) == "Hello"
    refreshes = r.refreshes
    await asyncio.sleep(0.3)  # no further event: the stream paused (a slow tool, a long think)
    assert answer_markdown(r) == "Hello world"
    assert r.refreshes == refreshes + 1  # one trailing refresh, not one per tick
    r.event(ck.TextDelta(0, "!"))
    r.finish(ck.Reply("m"), None)
    await asyncio.sleep(0.1)  # finish cancelled the pending timer: no refresh after it
    assert answer_markdown(r) == "Hello world!" and r._timer is None


async def test_a_trailing_refresh_keeps_the_interval_after_a_refresh_in_between() -> None:
    clock = Clock()  # the throttle's clock; the timer runs on the real event loop
    r = WidgetRenderer(10, clock=clock, display=FakeDisplay(), static=False)
    r.start({"model": "m"})
    r.event(ck.MessageStart(0, "m", "m", ck.Usage(1, 1)))
    r.event(ck.TextDelta(0, "a"))  # status change: shown
    r.event(ck.TextDelta(0, "b"))  # held: a timer is set for the end of the interval (0.1 s)
    clock.t += 0.05
    r.flush()  # e.g. a status change refreshed in between; a new interval starts
    r.event(ck.TextDelta(0, "c"))  # held again; the timer already set must not show it early
    await asyncio.sleep(0.15)
    assert answer_markdown(r) == "ab"
    clock.t += 0.1
    await asyncio.sleep(0.3)
    assert answer_markdown(r) == "abc"
    r.finish(ck.Reply("m"), None)


def test_live_footer_shows_tokens_and_cost_so_far() -> None:
    r = WidgetRenderer(15, clock=Clock(), display=FakeDisplay(), static=False)
    r.start({"model": "claude-sonnet-4-6"})
    r.event(ck.MessageStart(0, "m", "claude-sonnet-4-6", ck.Usage(1000, 10)))
    r.event(ck.TextDelta(0, "Hi"))  # a status change: refreshed at once
    # $3 per million input tokens and $15 per million output: 0.003 + 0.00015
    assert "1.0k in" in r.footer.value and "10 out" in r.footer.value and "$0.0032" in r.footer.value


def test_live_footer_prices_each_call_on_its_own() -> None:
    # Two calls of 60k input tokens on claude-haiku-5-5 ($0.10/M; $0.50/M above 100k tokens in one
    # request): each call is under the long-prompt threshold, their sum is not.
    r = WidgetRenderer(15, clock=Clock(), display=FakeDisplay(), static=False)
    r.start({"model": "claude-haiku-5-5"})
    r.event(ck.MessageStart(0, "m1", "claude-haiku-5-5", ck.Usage(60_000, 0)))
    r.event(ck.TextDelta(0, "a"))
    r.event(ck.MessageStart(1, "m2", "claude-haiku-5-5", ck.Usage(60_000, 0)))
    r.event(ck.ToolCallStart(0, "t1", "f"))  # a status change: refreshed at once
    expected = 2 * 60_000 * 0.10 / 1e6  # $0.012, not 120k at the long-prompt rate ($0.060)
    assert "120k in" in r.footer.value and f"${expected:,.3f}" in r.footer.value, r.footer.value


def test_tool_arguments_are_shown_at_refresh_only() -> None:
    clock = Clock()
    r = WidgetRenderer(10, clock=clock, display=FakeDisplay())
    r.start({"model": "m"})
    r.event(ck.ToolCallStart(0, "t1", "search"))
    deltas = tool_deltas("t1", ['{"q": "a', "bc", '"}'])
    for d in deltas:
        r.event(d)
    card = r.card_widget("t1")
    assert card is not None
    assert "abc" not in card.args.value  # coalesced: not refreshed yet
    clock.t += 1
    r.event(ck.ToolCallReady(0, "t1", "search", {"q": "abc"}))
    assert "abc" in card.args.value and "search" in card.title.value


async def test_finish_replaces_live_view_with_static_markdown() -> None:
    disp = FakeDisplay()
    chat = tool_chat()
    stream = chat.stream("weather?")
    r = WidgetRenderer(display=disp)
    r.start({"model": chat.model, "chat": chat.name})
    for ev in await collect(stream):
        r.event(ev)
    r.finish(stream.reply, None)
    first, kw = disp.shown[0]
    assert kw.get("display_id") and "application/vnd.jupyter.widget-view+json" in first
    assert first["text/plain"] == ""
    assert disp.updates == [{"text/plain": ""}]
    static, kw2 = disp.shown[-1]
    assert kw2 == {"raw": True}
    assert static == nb.static_bundle(stream.reply)
    assert stream.reply.text in static["text/markdown"]
    assert r.root.comm is None  # closed after the reply


def test_renderer_failure_does_not_break_the_stream(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("no frontend")

    r = WidgetRenderer(display=broken)
    r.start({"model": "m"})
    for ev in text_events(5):
        r.event(ev)
    r.finish(ck.Reply("m"), None)
    assert r.state.status == "done"
    assert r.state.text.startswith("w0 w1")
    assert "live view failed" in capsys.readouterr().err


class Pending:
    def __init__(self, id: str) -> None:
        self.id = id
        self.name = "rm"
        self.input = {"path": "/"}
        self.claimed = 0

    def claim(self) -> bool:
        self.claimed += 1
        return self.claimed == 1


def test_approval_widget_goes_into_the_tool_card(monkeypatch: pytest.MonkeyPatch) -> None:
    import ipywidgets

    made: list[Any] = []

    def approval_widget(pending: Any, group_controls: bool = True, in_card: bool = False) -> Any:
        w = ipywidgets.Button(description=f"approve {pending.name}")
        made.append(w)
        assert in_card, "inside a card the approval part must not repeat the name and arguments"
        return w

    fake = types.ModuleType("claudekit.notebook._approval")
    fake.approval_widget = approval_widget  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "claudekit.notebook._approval", fake)
    r = WidgetRenderer(display=FakeDisplay())
    r.start({"model": "m"})
    r.event(ck.ToolCallStart(0, "t1", "rm"))
    r.event(ck.ToolCallReady(0, "t1", "rm", {"path": "/"}))
    pending = Pending("t1")
    r.event(ck.ApprovalRequest((pending,)))
    card = r.card_widget("t1")
    assert card is not None and card.approval.children == (made[0],)
    assert pending.claimed == 1
    assert "awaiting approval" in card.title.value


def test_without_an_approval_module_nothing_is_claimed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "claudekit.notebook._approval", None)  # import raises ImportError
    r = WidgetRenderer(display=FakeDisplay())
    r.start({"model": "m"})
    r.event(ck.ToolCallStart(0, "t1", "rm"))
    pending = Pending("t1")
    r.event(ck.ApprovalRequest((pending,)))
    assert pending.claimed == 0
    assert r.state.status == "awaiting approval"


async def test_text_renderer_prints_answer_and_trace(capsys: pytest.CaptureFixture[str]) -> None:
    chat = tool_chat()
    stream = chat.stream("weather?")
    r = TextRenderer()
    r.start({})
    for ev in await collect(stream):
        r.event(ev)
    r.finish(stream.reply, None)
    out, err = capsys.readouterr()
    assert out == stream.reply.text + "\n"
    assert '→ weather({"city": "Paris"})' in err
    assert "← weather: sunny in Paris" in err
    assert "widget" not in out + err


async def test_rendering_never_changes_what_the_stream_yields(capsys: pytest.CaptureFixture[str]) -> None:
    plain = await collect(tool_chat().stream("weather?", render=False))
    nb.configure(mode="text")
    rendered_stream = tool_chat(render=None).stream("weather?")
    rendered = await collect(rendered_stream)

    def shape(evs: list[ck.Event]) -> list[Any]:
        return [(type(e).__name__, getattr(e, "text", None), getattr(e, "name", None)) for e in evs]

    assert shape(rendered) == shape(plain)
    assert capsys.readouterr().out == rendered_stream.reply.text + "\n"


def test_factory_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDEKIT_RENDER", "0")
    assert nb.render_mode() == "off" and nb.make_renderer() is None
    monkeypatch.setenv("CLAUDEKIT_RENDER", "text")
    assert isinstance(nb.make_renderer(), TextRenderer)
    monkeypatch.setenv("CLAUDEKIT_RENDER", "auto")
    assert nb.render_mode() == "text"  # pytest is not a kernel
    assert not nb.in_widget_kernel()
    nb.configure(mode="widget", rate=5)
    made = nb.make_renderer()
    assert isinstance(made, WidgetRenderer)
    assert made.throttle.interval == pytest.approx(0.2)
    nb.configure(mode="off")
    assert nb.make_renderer() is None
    with pytest.raises(ValueError):
        nb.configure(mode="loud")


def test_the_factory_is_registered_with_the_core() -> None:
    from claudekit import _render

    assert _render.get_renderer_factory() is nb.make_renderer


def test_view_state_is_exported() -> None:
    assert nb.ViewState is ViewState
