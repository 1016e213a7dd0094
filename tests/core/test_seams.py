"""The core's seams (issue 22): a renderer is a context manager that nothing can leave unfinished, and
the loop waker a turn holds belongs to the notebook layer, which registers it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import claudekit as ck
from claudekit import _seams
from claudekit.notebook import _interrupt
from claudekit.offline import OfflineBackend, Script, Turn

LONG = " ".join(f"word{i}" for i in range(300))


def backend(*turns: Turn) -> OfflineBackend:
    return OfflineBackend(responder=Script(list(turns)), signing_key=b"seam-tests")


class Counting(_seams.View):
    def __init__(self) -> None:
        self.started: dict[str, Any] = {}
        self.finishes: list[tuple[Any, BaseException | None]] = []

    def start(self, info: dict[str, Any]) -> None:
        self.started = info
        self.reply = info["reply"]

    def event(self, event: Any) -> None:
        pass

    def finish(self, reply: Any, error: BaseException | None) -> None:
        self.finishes.append((reply, error))


def test_leaving_the_context_finishes_a_view_once_with_the_error() -> None:
    view = Counting()
    view.start({"reply": "the reply"})
    with pytest.raises(ValueError), view:
        raise ValueError("boom")
    with view:  # a second exit finishes nothing more
        pass
    assert len(view.finishes) == 1
    reply, error = view.finishes[0]
    assert reply == "the reply" and isinstance(error, ValueError)


@pytest.mark.parametrize("how", ["break", "to the end"])
async def test_a_reply_finishes_its_view_once_however_the_stream_ends(how: str) -> None:
    views: list[Counting] = []
    previous = _seams.get_renderer_factory()

    def factory(render: Any) -> Counting:
        views.append(Counting())
        return views[-1]

    _seams.set_renderer_factory(factory)
    try:
        chat = ck.Chat(offline=backend(Turn(text=LONG), Turn(text="ok")))
        async for ev in chat.stream("hi", render=True):
            if how == "break" and isinstance(ev, ck.TextDelta):
                break
        reply = await chat("again")
    finally:
        _seams.set_renderer_factory(previous)
    assert reply.text == "ok"
    assert [len(v.finishes) for v in views] == [1, 1]
    first = views[0]
    assert first.finishes[0][0] is first.started["reply"] and first.finishes[0][1] is None
    assert first.reply.text != LONG if how == "break" else first.reply.text == LONG
    assert views[1].finishes == [(reply, None)]


async def test_a_turn_holds_the_registered_loop_waker_while_it_runs() -> None:
    held: list[str] = []

    def waker() -> Any:
        held.append("acquired")
        return lambda: held.append("released")

    previous = _seams.get_loop_waker()
    _seams.set_loop_waker(waker)
    try:
        chat = ck.Chat(offline=backend(Turn(text=LONG)), render=False)
        during: list[list[str]] = []
        async for _ev in chat.stream("hi"):
            if not during:
                during.append(list(held))
    finally:
        _seams.set_loop_waker(previous)
    assert during == [["acquired"]] and held == ["acquired", "released"]


async def test_the_notebook_layer_registers_the_interrupt_waker() -> None:
    assert _seams.get_loop_waker() is _interrupt.keep_awake
    before = len(asyncio.all_tasks())
    release = _interrupt.keep_awake()
    release_too = _interrupt.keep_awake()  # one task per loop, however many turns hold it
    assert len(asyncio.all_tasks()) == before + 1
    release()
    assert len(asyncio.all_tasks()) == before + 1
    release_too()
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == before


async def test_a_turn_runs_on_its_context_alone() -> None:
    from claudekit._base._reply import Reply
    from claudekit._runner._turn import Turn as Runner
    from claudekit._runner._turn import TurnContext

    chat = ck.Chat(offline=backend(Turn(text="from the context")), render=False)
    kept: list[str | None] = []
    closed: list[BaseException | None] = []

    class Host:
        def _begin(self) -> None:
            return None

        def _closed(self, error: BaseException | None) -> None:
            closed.append(error)

    ctx = TurnContext(
        chat.history, chat.toolset, chat.client, None, "ctx", 4, None, None, None, keep_message_id=kept.append
    )
    reply = Reply(chat.settings.model)
    prompt = [{"type": "text", "text": "hi"}]
    events = [ev async for ev in Runner(lambda: ctx, prompt, chat.settings, reply, Host()).events()]
    assert reply.text == "from the context" and events and closed == [None]
    assert kept == [ctx.last_message_id] and ctx.last_message_id is not None
    assert chat._last_message_id is None  # the turn wrote nothing of the Chat's own
