"""Throttling, the widget renderer (widgets without a kernel), the text renderer and the factory."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import claudekit as ck
import claudekit.notebook as nb
from claudekit.notebook import Throttle, ViewState
from claudekit.notebook._text import TextRenderer
from claudekit.notebook._widget import WidgetRenderer
from claudekit.offline import ToolCall, Turn
from tests.notebook.helpers import (
    FakeWidget,
    Page,
    collect,
    delta_chat,
    offline_chat,
    tool_chat,
    tool_deltas,
    weather,
)


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


def renderer(rate: float = 15, **kw: Any) -> tuple[WidgetRenderer, FakeDisplay, list[FakeWidget]]:
    disp = FakeDisplay()
    made: list[FakeWidget] = []

    def factory(on_message: Any) -> FakeWidget:
        made.append(FakeWidget(on_message))
        return made[-1]

    kw.setdefault("static", False)
    return WidgetRenderer(rate, display=disp, widget_factory=factory, **kw), disp, made


def page(made: list[FakeWidget]) -> Page:
    return made[0].page


@pytest.fixture(autouse=True)
def _reset_config() -> Any:
    yield
    nb.configure(mode="env", rate=15, static=True, math=False)


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


def test_instant_stream_is_coalesced_and_only_new_text_travels() -> None:
    clock = Clock()
    r, disp, made = renderer(15, clock=clock)
    r.start({"model": "claude-test", "chat": "c"})
    events = text_events(10_000)
    for ev in events:
        r.event(ev)
    during = r.refreshes
    assert during <= 4  # build + first event + status changes, never one per delta
    r.finish(ck.Reply("claude-test"), None)
    assert r.refreshes == during + 1
    full = "".join(e.text for e in events if isinstance(e, ck.TextDelta))
    assert r.state.text == full and page(made).text == full
    # Each character of the answer was sent once: the bytes grow with the answer, not its square.
    sent = sum(len(op[2]) for batch in made[0].pushed for op in batch if op[0] == "text")
    assert sent == len(full)
    assert page(made).final and page(made).status == "done"
    (bundle, kw) = disp.shown[0]
    assert list(bundle) == ["application/vnd.jupyter.widget-view+json"] and kw.get("display_id")


async def test_the_saved_copy_replaces_the_view_a_page_showed() -> None:
    r, disp, made = renderer(0.2, static=True)  # rate 0.2: no trailing timer during this instant stream
    stream = delta_chat(300, render=False).stream("go")
    r.start({"model": "claude-test"})
    await asyncio.sleep(0)  # the view is built when the loop first turns
    made[0].say(kind="view", shown=True)
    await asyncio.sleep(0)  # page messages are handled on the event loop
    async for ev in stream:
        r.event(ev)
    r.finish(stream.reply, None)
    assert len(disp.shown) == 1  # no second output: the view's own output became the saved copy
    (update,) = disp.updates
    assert update == nb.static_bundle(stream.reply, show_error=True)
    assert "w299" in update["text/html"] and made[0].closed


async def test_without_a_page_the_saved_copy_is_a_new_output_and_the_view_empties() -> None:
    r, disp, made = renderer(static=True)
    chat = tool_chat()
    stream = chat.stream("weather?")
    r.start({"model": chat.model, "chat": chat.name})
    await asyncio.sleep(0)  # the view is built when the loop first turns
    for ev in await collect(stream):
        r.event(ev)
    r.finish(stream.reply, None)
    assert disp.updates == [{}]  # nbval skips the widget mime type: this output compares as nothing
    static, kw = disp.shown[-1]
    assert kw == {"raw": True}
    assert static == nb.static_bundle(stream.reply, show_error=True)
    assert made[0].closed


async def test_a_reply_done_before_the_loop_turned_leaves_only_its_saved_copy() -> None:
    r, disp, made = renderer(static=True)
    r.start({"model": "claude-test"})  # the view would be built at the next turn of the loop
    for ev in text_events(50):
        r.event(ev)
    reply = ck.Reply("claude-test")
    r.finish(reply, None)
    await asyncio.sleep(0)
    assert made == [] and disp.updates == []  # no widget, nothing to empty
    assert [bundle for bundle, _ in disp.shown] == [nb.static_bundle(reply, show_error=True)]


def test_slow_stream_refreshes_at_most_rate_per_second() -> None:
    clock = Clock()
    r, _, made = renderer(15, clock=clock)
    r.start({"model": "m"})
    for ev in text_events(2000):  # 2000 events over 2 seconds
        clock.t += 0.001
        r.event(ev)
        if isinstance(ev, ck.TextDelta) and ev.text == "w0 ":
            assert page(made).text == "w0 "  # the first delta shows at once
    assert 2 * 15 <= r.refreshes <= 2 * 15 + 4
    assert len(made[0].pushed) == r.refreshes  # one message per refresh
    assert page(made).text != r.state.text  # between refreshes the page lags; finish catches up
    r.finish(ck.Reply("m"), None)
    assert page(made).text == r.state.text


def test_after_the_free_allowance_refreshes_slow_down_unless_the_answer_pays_for_them() -> None:
    clock = Clock()
    r, _, made = renderer(15, clock=clock)
    r.start({"model": "m"})
    r.event(ck.MessageStart(0, "m", "m", ck.Usage(1, 1)))
    for _ in range(3000):  # one character every 60 ms for 3 minutes: a very slow stream
        clock.t += 0.06
        r.event(ck.TextDelta(0, "x"))
    sent = len(made[0].pushed)
    assert sent < 3000 * 0.06 * 15 / 2, sent  # well under 15 a second
    assert 140 <= sent <= 300, sent  # ~140 messages fill the allowance, then about one a second


async def test_a_held_change_is_shown_when_the_interval_ends_without_another_event() -> None:
    r, _, made = renderer(20)  # real clock, real event loop
    r.start({"model": "m"})
    await asyncio.sleep(0)  # the view is built when the loop first turns
    r.event(ck.MessageStart(0, "m", "m", ck.Usage(1, 1)))
    r.event(ck.TextDelta(0, "Hello"))  # a status change: shown at once
    assert page(made).text == "Hello"
    r.event(ck.TextDelta(0, " world"))  # inside the 50 ms interval: held
    assert page(made).text == "Hello"
    refreshes = r.refreshes
    await asyncio.sleep(0.3)  # no further event: the stream paused (a slow tool, a long think)
    assert page(made).text == "Hello world"
    assert r.refreshes == refreshes + 1  # one trailing refresh, not one per tick
    r.event(ck.TextDelta(0, "!"))
    r.finish(ck.Reply("m"), None)
    await asyncio.sleep(0.1)  # finish cancelled the pending timer: no refresh after it
    assert page(made).text == "Hello world!" and r._timer is None


async def test_a_trailing_refresh_keeps_the_interval_after_a_refresh_in_between() -> None:
    clock = Clock()  # the throttle's clock; the timer runs on the real event loop
    r, _, made = renderer(10, clock=clock)
    r.start({"model": "m"})
    await asyncio.sleep(0)  # the view is built when the loop first turns
    r.event(ck.MessageStart(0, "m", "m", ck.Usage(1, 1)))
    r.event(ck.TextDelta(0, "a"))  # status change: shown
    r.event(ck.TextDelta(0, "b"))  # held: a timer is set for the end of the interval (0.1 s)
    clock.t += 0.05
    r.flush()  # e.g. a status change refreshed in between; a new interval starts
    r.event(ck.TextDelta(0, "c"))  # held again; the timer already set must not show it early
    await asyncio.sleep(0.15)
    assert page(made).text == "ab"
    clock.t += 0.1
    await asyncio.sleep(0.3)
    assert page(made).text == "abc"
    r.finish(ck.Reply("m"), None)


def test_live_footer_shows_tokens_and_cost_so_far() -> None:
    r, _, made = renderer(15, clock=Clock())
    r.start({"model": "claude-sonnet-4-6"})
    r.event(ck.MessageStart(0, "m", "claude-sonnet-4-6", ck.Usage(1000, 10)))
    r.event(ck.TextDelta(0, "Hi"))  # a status change: refreshed at once
    # $3 per million input tokens and $15 per million output: 0.003 + 0.00015
    foot = page(made).foot
    assert "1.0k in" in foot and "10 out" in foot and "$0.0032" in foot


def test_live_footer_estimates_output_while_text_streams() -> None:
    clock = Clock()
    r, _, made = renderer(15, clock=clock)
    r.start({"model": "claude-sonnet-4-6"})
    r.event(ck.MessageStart(0, "m", "claude-sonnet-4-6", ck.Usage(1000, 1)))
    r.event(ck.TextDelta(0, "x" * 400))  # the API says "1 out" until message_delta; ~4 chars a token
    assert page(made).foot.startswith("claudekit · ≈ 1.0k in · 100 out"), page(made).foot
    clock.t += 1
    r.event(ck.UsageUpdate(0, ck.Usage(1000, 90)))  # message_delta: the real count
    r.event(ck.TextDelta(0, "y"))
    assert "100 out" in page(made).foot  # the estimate (401 // 4) is still higher
    clock.t += 1
    r.event(ck.UsageUpdate(0, ck.Usage(1000, 150)))
    r.event(ck.TextDelta(0, "z"))
    assert "150 out" in page(made).foot and "≈" not in page(made).foot


def test_live_footer_prices_each_call_on_its_own() -> None:
    # Two calls of 60k input tokens on claude-haiku-5-5 ($0.10/M; $0.50/M above 100k tokens in one
    # request): each call is under the long-prompt threshold, their sum is not.
    r, _, made = renderer(15, clock=Clock())
    r.start({"model": "claude-haiku-5-5"})
    r.event(ck.MessageStart(0, "m1", "claude-haiku-5-5", ck.Usage(60_000, 0)))
    r.event(ck.TextDelta(0, "a"))
    r.event(ck.MessageStart(1, "m2", "claude-haiku-5-5", ck.Usage(60_000, 0)))
    r.event(ck.ToolCallStart(0, "t1", "f"))  # a status change: refreshed at once
    expected = 2 * 60_000 * 0.10 / 1e6  # $0.012, not 120k at the long-prompt rate ($0.060)
    foot = page(made).foot
    assert "120k in" in foot and f"${expected:,.3f}" in foot, foot


def test_tool_arguments_stream_as_fragments_then_show_pretty() -> None:
    clock = Clock()
    r, _, made = renderer(10, clock=clock)
    r.start({"model": "m"})
    r.event(ck.ToolCallStart(0, "t1", "search"))
    for d in tool_deltas("t1", ['{"q": "a', "bc", '"}']):
        r.event(d)
    assert page(made).cards["t1"]["raw"] == ""  # coalesced: not refreshed yet
    clock.t += 1
    r.flush()
    assert page(made).cards["t1"]["raw"] == '{"q": "abc"}'  # only the fragments travelled
    clock.t += 1
    r.event(ck.ToolCallReady(0, "t1", "search", {"q": "abc"}))
    card = page(made).cards["t1"]
    assert json.loads(card["args"]) == {"q": "abc"} and card["name"] == "search"


async def test_text_and_tools_are_in_the_order_they_happened() -> None:
    r, _, made = renderer()
    chat = tool_chat()
    stream = chat.stream("weather?")
    r.start({"model": chat.model})
    await asyncio.sleep(0)  # the view is built when the loop first turns
    for ev in await collect(stream):
        r.event(ev)
    r.finish(stream.reply, None)
    assert page(made).order() == ["text:Let me check.", "tool:weather", "text:It is **sunny** in Paris."]


class Pending:
    """Enough of a PendingCall for the renderer (the real one is used in tests/tools)."""

    def __init__(self, id: str) -> None:
        self.id = id
        self.name = "rm"
        self.input = self.arguments = {"path": "/"}
        self.claimed = 0
        self.group = (self,)
        self.done = False
        self.views: list[int] = []

    def claim(self) -> bool:
        self.claimed += 1
        return self.claimed == 1

    def track_views(self) -> None:
        pass

    def views_changed(self, n: int) -> None:
        self.views.append(n)

    def on_decided(self, cb: Any) -> None:
        pass


def test_the_approval_goes_into_the_tool_card_and_views_are_reported() -> None:
    r, _, made = renderer()
    r.start({"model": "m"})
    r.event(ck.ToolCallStart(0, "t1", "rm"))
    r.event(ck.ToolCallReady(0, "t1", "rm", {"path": "/"}))
    pending = Pending("t1")
    r.event(ck.ApprovalRequest((pending,)))  # type: ignore[arg-type]
    card = page(made).cards["t1"]
    assert pending.claimed == 1 and card["status"] == "awaiting approval"
    assert card["approval"] == {"args": '{\n  "path": "/"\n}', "group": 1, "first": True}
    made[0].say(kind="view", shown=True)
    assert pending.views == [1]


def test_the_stop_button_calls_the_turns_stop() -> None:
    stops: list[int] = []
    r, _, made = renderer()
    r.start({"model": "m", "stop": lambda: stops.append(1)})
    made[0].say(kind="stop")
    assert stops == [1]
    r.finish(ck.Reply("m"), None)
    made[0].say(kind="stop")  # after the end: nothing to stop
    assert stops == [1]


def test_renderer_failure_does_not_break_the_stream(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("no frontend")

    r = WidgetRenderer(display=broken, widget_factory=FakeWidget)
    r.start({"model": "m"})
    for ev in text_events(5):
        r.event(ev)
    r.finish(ck.Reply("m"), None)
    assert r.state.status == "done"
    assert r.state.text.startswith("w0 w1")
    assert "live view failed" in capsys.readouterr().err


async def test_text_renderer_prints_answer_and_trace(capsys: pytest.CaptureFixture[str]) -> None:
    chat = tool_chat()
    stream = chat.stream("weather?")
    r = TextRenderer()
    r.start({})
    await asyncio.sleep(0)  # the view is built when the loop first turns
    for ev in await collect(stream):
        r.event(ev)
    r.finish(stream.reply, None)
    out, err = capsys.readouterr()
    assert out == stream.reply.text + "\n"
    assert '→ weather({"city": "Paris"})' in err
    assert "← weather: sunny in Paris" in err
    assert "widget" not in out + err


async def test_a_script_iterating_the_events_is_not_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    # The README's streaming snippet in a plain script: the loop prints the text, claudekit must not too.
    nb.configure(mode="text")
    chat = tool_chat(render=None)
    printed = []
    async for ev in chat.stream("weather?"):
        if isinstance(ev, ck.TextDelta):
            printed.append(ev.text)
            print(ev.text, end="")
    out, err = capsys.readouterr()
    assert out == "".join(printed) and err == ""
    reply = await tool_chat(render=None)("again?")  # awaited: the text renderer shows the reply
    assert capsys.readouterr().out == reply.text + "\n"


async def test_rendering_never_changes_what_the_stream_yields(capsys: pytest.CaptureFixture[str]) -> None:
    plain = await collect(tool_chat().stream("weather?", render=False))
    nb.configure(mode="text")
    rendered_stream = tool_chat(render=None).stream("weather?")
    rendered = await collect(rendered_stream)

    def shape(evs: list[ck.Event]) -> list[Any]:
        return [(type(e).__name__, getattr(e, "text", None), getattr(e, "name", None)) for e in evs]

    assert shape(rendered) == shape(plain)
    assert capsys.readouterr().out == ""  # iterated by the caller: nothing echoed


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
    from claudekit import _seams as _render

    assert _render.get_renderer_factory() is nb.make_renderer


def test_view_state_is_exported() -> None:
    assert nb.ViewState is ViewState


ESCAPES = "\x1b]52;c;ZWNobyBwd25lZA==\x07ok\x1b[2J\rfake prompt$ \x9b31m"  # clipboard write, clear, overwrite


async def test_a_script_never_passes_terminal_control_sequences_from_the_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    turns = [
        Turn(text="Checking " + ESCAPES, tool_calls=[ToolCall("weather", {"city": ESCAPES})]),
        Turn(text="Done " + ESCAPES + "\n"),
    ]
    nb.configure(mode="text")
    reply = await offline_chat(turns, tools=[weather], render=None)("weather?")
    out, err = capsys.readouterr()
    assert "\x1b" in reply.text and "\r" in reply.text  # the reply itself keeps what the model wrote
    for stream in (out, err):
        assert not any((ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) < 0xA0 for c in stream), stream
    assert out.count("␛]52;c;ZWNobyBwd25lZA==␇ok␛[2Jfake prompt$ \ufffd31m") == 2  # visible, not obeyed
    assert "␛]52" in err  # the tool call's arguments in the trace, the same way
