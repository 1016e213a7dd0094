"""The turn runner keeps its promises (issue 12), through the public API against the offline backend.

Each test names the problem it covers; each failed before the turn runner was rewritten.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from pathlib import Path
from typing import Any

import anthropic
import pytest

import claudekit as ck
from claudekit import _seams as _render
from claudekit.offline import OfflineBackend, Script, ToolCall, Turn
from tests import sse
from tests.conftest import SSE_DIR, busy_connections, sdk_client, sse_transport

LONG = " ".join(f"word{i}" for i in range(400))


def backend(*turns: Turn, **kw: Any) -> OfflineBackend:
    return OfflineBackend(responder=Script(list(turns)), signing_key=b"turn-tests", **kw)


def user_texts(chat: ck.Chat) -> list[str]:
    return [
        b["text"]
        for m in chat.history
        if m["role"] == "user"
        for b in m["content"]
        if b.get("type") == "text"
    ]


# -- 1. stopping a stream early finishes the turn at once ------------------------------------------------


async def test_break_finishes_the_turn_at_once_and_the_next_prompt_is_its_own_turn() -> None:
    b = backend(Turn(text=LONG), Turn(text="Second answer."))
    with b.serve() as server:  # a real socket, to see the connection released
        sdk = anthropic.AsyncAnthropic(api_key="sk-test-not-a-real-key", base_url=server.base_url)
        await _break_then_continue(b, ck.Chat(client=sdk, render=False))
        await sdk.close()


async def _break_then_continue(b: OfflineBackend, chat: ck.Chat) -> None:
    n = 0
    async for ev in chat.stream("first"):
        n += isinstance(ev, ck.TextDelta)
        if n == 3:
            break
    # Finished at the break, not by the garbage collector: the partial answer is in the history.
    first = chat.last_reply
    assert first is not None and first.interrupted and 0 < len(first.text) < len(LONG)
    assert [m["role"] for m in chat.history] == ["user", "assistant"]
    assert chat.history[1]["content"][0]["text"] == first.text
    for _ in range(3):
        await asyncio.sleep(0)
    assert busy_connections(chat.client) == 0  # the HTTP response was closed too
    second = await chat("second")
    gc.collect()  # nothing left over to append anything later
    assert second.text == "Second answer." and chat.last_reply is second
    assert user_texts(chat) == ["first", "second"]
    assert [m["role"] for m in chat.history] == ["user", "assistant", "user", "assistant"]
    assert chat.history.problems() == []
    # The second request carried the first turn's partial answer, as its own turn.
    sent = b.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]


async def test_aclose_and_async_with_finish_the_turn() -> None:
    b = backend(Turn(text=LONG), Turn(text=LONG), Turn(text="ok"))
    chat = ck.Chat(offline=b, render=False)
    stream = chat.stream("one")
    async for ev in stream:
        if isinstance(ev, ck.TextDelta):
            break
    await stream.aclose()  # already finished by the break: closing again is harmless
    async with chat.stream("two") as s:
        async for ev in s:
            if isinstance(ev, ck.TextDelta):
                break
    assert len(chat.history) == 4 and chat.history.problems() == []
    assert chat.last_reply is s.reply and s.reply.interrupted
    assert (await chat("three")).text == "ok"


async def test_an_exception_in_the_loop_body_finishes_the_turn() -> None:
    chat = ck.Chat(offline=backend(Turn(text=LONG), Turn(text="fine")), render=False)
    with pytest.raises(ZeroDivisionError):
        async for ev in chat.stream("first"):
            if isinstance(ev, ck.TextDelta):
                1 / 0  # noqa: B018
    assert chat.last_reply is not None and chat.last_reply.interrupted
    assert [m["role"] for m in chat.history] == ["user", "assistant"]
    assert (await chat("again")).text == "fine" and chat.history.problems() == []


async def test_a_renderer_that_raises_surfaces_as_itself_and_the_turn_is_finished() -> None:
    class Broken:
        def start(self, info: dict[str, Any]) -> None:
            pass

        def event(self, event: ck.Event) -> None:
            if isinstance(event, ck.TextDelta):
                raise RuntimeError("view bug")

        def finish(self, reply: ck.Reply, error: BaseException | None) -> None:
            self.finished = (reply, error)

    broken = Broken()
    previous = _render.get_renderer_factory()
    _render.set_renderer_factory(lambda render: broken)
    try:
        chat = ck.Chat(offline=backend(Turn(text="Hello there."), Turn(text="ok")))
        with pytest.raises(RuntimeError, match="view bug"):  # itself, not a "malformed stream"
            await chat("hi")
    finally:
        _render.set_renderer_factory(previous)
    assert broken.finished[0] is chat.last_reply and isinstance(broken.finished[1], RuntimeError)
    assert chat.usage.records[-1].status == "RuntimeError"
    assert chat.history.problems() == [] and (await chat("go on", render=False)).text == "ok"


async def test_one_turn_at_a_time_a_concurrent_prompt_is_a_clear_error() -> None:
    chat = ck.Chat(offline=backend(Turn(text=LONG), Turn(text="later"), event_delay=0.001), render=False)
    first = asyncio.ensure_future(chat("first"))
    await asyncio.sleep(0.05)
    with pytest.raises(ck.BusyError) as info:
        await chat("second")
    assert "\n" not in str(info.value) and "await the first reply" in str(info.value)
    reply = await first
    assert reply.text == LONG and user_texts(chat) == ["first"]
    assert (await chat("now")).text == "later"


# -- 2 and 3. cache markers within the budget, TTLs in order ----------------------------------------------


def marker_ttls(body: dict[str, Any]) -> list[str]:
    """Every cache_control in prompt order (tools, system, messages, then the automatic one)."""
    found: list[str] = []
    for block in [*body.get("tools", []), *(body.get("system") or [])]:
        if "cache_control" in block:
            found.append(block["cache_control"].get("ttl", "5m"))
    for m in body["messages"]:
        for block in m["content"] if isinstance(m["content"], list) else []:
            if "cache_control" in block:
                found.append(block["cache_control"].get("ttl", "5m"))
    if "cache_control" in body:
        found.append(body["cache_control"].get("ttl", "5m"))
    return found


@ck.tool
def lookup(term: str) -> str:
    """Look a term up."""
    return f"{term}: found"


async def test_users_own_markers_never_push_a_request_past_four(caplog: pytest.LogCaptureFixture) -> None:
    b = backend(*[Turn(text=f"answer {i}") for i in range(6)])
    chat = ck.Chat(offline=b, render=False, system="You are terse. " * 50, tools=[lookup])
    with caplog.at_level(logging.WARNING, logger="claudekit"):
        for i in range(6):
            prompt = [{"type": "text", "text": f"doc {i} " + LONG, "cache_control": {"type": "ephemeral"}}]
            reply = await chat(prompt)  # the offline backend refuses > 4 markers, like the service
            assert reply.text == f"answer {i}"
    counts = [len(marker_ttls(body)) for body in b.requests]
    assert max(counts) == 4 and counts[0] == 4  # tools + system + the user's + automatic
    assert all("cache_control" in body for body in b.requests)  # the automatic marker is always kept
    # The user's newest marker is always sent; the oldest ones are dropped from later requests, said once.
    last = b.requests[-1]["messages"][-1]["content"][-1]
    assert "cache_control" in last
    notes = [r for r in caplog.records if "cache_control markers" in r.getMessage()]
    assert len(notes) == 1 and "\n" not in notes[0].getMessage()


async def test_claudekits_markers_take_their_ttl_from_the_users() -> None:
    b = backend(Turn(text="a"), Turn(text="b"))
    system = [
        {"type": "text", "text": "Long rules. " * 100, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    chat = ck.Chat(offline=b, render=False, system=system, tools=[lookup])  # default cache: 5m
    await chat("hi")
    body = b.requests[-1]
    assert body["tools"][-1]["cache_control"]["ttl"] == "1h"  # never a 5m marker ahead of the 1h one
    assert marker_ttls(body) == ["1h", "1h", "5m"]
    chat1h = ck.Chat(
        offline=b, render=False, cache="1h", system=[{**system[0], "cache_control": {"type": "ephemeral"}}]
    )
    await chat1h("hi")
    assert marker_ttls(b.requests[-1]) == ["5m", "5m"]  # the automatic marker follows the user's 5m


async def test_users_markers_out_of_ttl_order_fail_before_sending() -> None:
    b = backend(Turn(text="never"))
    system = [{"type": "text", "text": "rules", "cache_control": {"type": "ephemeral", "ttl": "5m"}}]
    chat = ck.Chat(offline=b, render=False, system=system)
    prompt = [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    with pytest.raises(ck.ConfigError, match="ttl '1h' comes after one with ttl '5m'"):
        await chat(prompt)
    assert b.requests == [] and len(chat.history) == 0


# -- 4. refusal -----------------------------------------------------------------------------------------


async def test_refusal_takes_the_prompt_back_and_keeps_stop_details(caplog: pytest.LogCaptureFixture) -> None:
    refusal = (SSE_DIR / "sdk-python__refusal_stop_details.sse").read_bytes()
    chat = ck.Chat(client=sdk_client(sse_transport([sse.text_reply("Hi."), refusal])), render=False)
    await chat("hello")
    before = chat.history.to_params()
    with caplog.at_level(logging.WARNING, logger="claudekit"):
        reply = await chat("something refused")
    assert reply.stop_reason == "refusal" and reply.status == "refused" and reply.refused
    assert reply.stop_details.category == "cyber"
    assert reply.stop_details.explanation == "This request was refused due to policy."
    assert chat.history.to_params() == before  # the refused prompt is out of the conversation
    lines = [r.getMessage() for r in caplog.records if "declined" in r.getMessage()]
    assert len(lines) == 1 and "refused due to policy" in lines[0] and "\n" not in lines[0]


async def test_after_a_refusal_in_a_tool_loop_the_next_turn_is_valid() -> None:
    b = backend(
        Turn(tool_calls=[ToolCall("lookup", {"term": "x"})]),
        Turn(text="I won't", stop_reason="refusal"),
        Turn(text="Fine."),
    )
    chat = ck.Chat(offline=b, render=False, tools=[lookup])
    reply = await chat("look x up")
    assert reply.refused and len(chat.history) == 0
    assert (await chat("something else")).text == "Fine."  # accepted by the offline validator
    assert [m["role"] for m in b.requests[-1]["messages"]] == ["user"]


# -- 5. whitespace-only text is never sent back ----------------------------------------------------------


async def test_whitespace_text_before_a_tool_call_is_not_sent_back() -> None:
    b = backend(Turn(text="\n\n", tool_calls=[ToolCall("lookup", {"term": "x"})]), Turn(text="Done."))
    chat = ck.Chat(offline=b, render=False, tools=[lookup])
    assert (await chat("look x up")).text == "Done."
    assistant = b.requests[-1]["messages"][1]
    assert [blk["type"] for blk in assistant["content"]] == ["tool_use"]
    h = ck.History(
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [{"type": "text", "text": " \n"}]},
        ]
    )
    assert len(h) == 1  # dropped on the way in
    h.messages.append({"role": "assistant", "content": [{"type": "text", "text": "\n\n"}]})
    assert any("only whitespace" in p for p in h.problems())


# -- 6. definition-only tools: one result per call, mixed steps -------------------------------------------

CALC = {"name": "calculator", "description": "Compute.", "input_schema": {"type": "object", "properties": {}}}


async def test_a_definition_only_tool_gets_exactly_the_callers_result() -> None:
    b = backend(Turn(tool_calls=[ToolCall("calculator", {})]), Turn(text="It is 4."))
    chat = ck.Chat(offline=b, render=False, tools=[CALC])
    first = await chat("2+2?")
    (call,) = first.tool_calls
    reply = await chat([{"type": "tool_result", "tool_use_id": call.id, "content": "4"}])
    assert reply.text == "It is 4."
    results = [
        blk for m in b.requests[-1]["messages"] for blk in m["content"] if blk.get("type") == "tool_result"
    ]
    assert results == [{"type": "tool_result", "tool_use_id": call.id, "content": "4"}]
    assert chat.history.problems() == []


async def test_a_result_for_no_pending_call_is_refused_before_sending() -> None:
    b = backend(Turn(text="never"))
    chat = ck.Chat(offline=b, render=False)
    with pytest.raises(ck.ConfigError, match="answers no pending tool call"):
        await chat([{"type": "tool_result", "tool_use_id": "toolu_nope", "content": "4"}])
    assert b.requests == []


async def test_a_mixed_step_runs_the_runnable_tool_and_leaves_the_other_to_the_caller() -> None:
    b = backend(
        Turn(tool_calls=[ToolCall("lookup", {"term": "pi"}), ToolCall("calculator", {})]),
        Turn(text="Both done."),
    )
    chat = ck.Chat(offline=b, render=False, tools=[lookup, CALC])
    first = await chat("do both")
    by_name = {c.name: c for c in first.tool_calls}
    assert by_name["lookup"].result == "pi: found"  # claudekit ran the tool it can run
    assert by_name["calculator"].result is None and len(b.requests) == 1  # the caller's turn
    assert [blk["id"] for blk in chat.history.pending_tool_uses()] == [by_name["calculator"].id]
    answer = [{"type": "tool_result", "tool_use_id": by_name["calculator"].id, "content": "3.14"}]
    assert (await chat(answer)).text == "Both done."
    results = [blk["tool_use_id"] for blk in b.requests[-1]["messages"][-1]["content"]]
    assert sorted(results) == sorted(c.id for c in first.tool_calls)  # exactly one each


# -- 7. logging is best effort --------------------------------------------------------------------------


async def test_an_unwritable_usage_log_warns_once_and_keeps_the_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chat = ck.Chat(
        offline=backend(Turn(text="one"), Turn(text="two")),
        render=False,
        usage_log=tmp_path / "no" / "log.jsonl",
    )
    with caplog.at_level(logging.WARNING, logger="claudekit"):
        assert (await chat("a")).text == "one"
        assert (await chat("b")).text == "two"
    assert [m["role"] for m in chat.history] == ["user", "assistant", "user", "assistant"]
    lines = [r.getMessage() for r in caplog.records if "usage log could not be written" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]


# -- 10. errors that name the truth ---------------------------------------------------------------------


async def test_an_interrupted_sync_tool_is_reported_as_maybe_completed() -> None:
    started, release = threading.Event(), threading.Event()

    @ck.tool
    def slow_write(path: str) -> str:
        """Write a file slowly."""
        started.set()
        release.wait(5)
        return "written"

    b = backend(Turn(tool_calls=[ToolCall("slow_write", {"path": "a.txt"})]), Turn(text="ok"))
    chat = ck.Chat(offline=b, render=False, tools=[slow_write])
    task = asyncio.ensure_future(chat("write it"))
    while not started.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    result = chat.history[-1]["content"][0]
    assert result["type"] == "tool_result" and result["is_error"] is True
    assert "may have completed" in result["content"]
    assert (await chat("next")).text == "ok" and chat.history.problems() == []


# -- 11. the stream shows what has arrived --------------------------------------------------------------


async def test_stream_text_and_snapshot_show_what_arrived_so_far() -> None:
    chat = ck.Chat(offline=backend(Turn(text=LONG)), render=False)
    stream = chat.stream("go")
    seen = ""
    checked = 0
    async for ev in stream:
        if isinstance(ev, ck.TextDelta):
            seen += ev.text
            if checked < 5:
                assert stream.text == seen
                snap = stream.current_message_snapshot
                assert snap is not None and snap.content[0].text == seen
                checked += 1
    assert checked == 5 and stream.text == LONG


# -- reset() and load() start the cache bookkeeping over -------------------------------------------------


async def test_reset_and_load_forget_the_previous_message(tmp_path: Path) -> None:
    b = backend(Turn(text="a"), Turn(text="b"), Turn(text="c"))
    chat = ck.Chat(offline=b, render=False)
    await chat("one")
    chat.save(tmp_path / "c.json")
    chat.reset()
    await chat("two")
    assert "diagnostics" not in b.requests[-1]  # no previous message after reset
    chat.load(tmp_path / "c.json")
    await chat("three")
    assert "diagnostics" not in b.requests[-1]
    assert repr(chat).count("turns=2")  # prompts, not messages


def test_the_core_imports_nothing_from_the_notebook_layer() -> None:
    import ast

    core = Path(ck.__file__).parent
    for path in core.glob("_*.py"):  # the core modules (the package's __init__ only re-exports)
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                name = ("." * node.level) + (node.module or "")
                assert "notebook" not in name, f"{path.name} imports {name}"
            elif isinstance(node, ast.Import):
                assert not any("notebook" in a.name for a in node.names), path.name


def test_import_claudekit_loads_no_pandas_matplotlib_or_widgets() -> None:
    # They load on first use (the usage DataFrame, a plot, the live view); the cost is in bench_import.
    import subprocess
    import sys

    heavy = ("pandas", "matplotlib", "numpy", "ipywidgets", "IPython", "dask", "distributed", "pyarrow")
    # One interpreter for both checks (each start imports the SDK: seconds on a busy machine): the first
    # line is what `import claudekit` loaded, the second whether the lazy attribute then loads matplotlib.
    code = (
        f"import sys, claudekit; print(' '.join(m for m in {heavy!r} if m in sys.modules), end='|')\n"
        "claudekit.usage.plot_cost; print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, _, lazy = out.stdout.partition("|")
    assert loaded.split() == []
    assert lazy.strip() == "True"  # the lazy attribute does load it


# -- found in review: the ends of a stream, and markers --------------------------------------------------


async def test_peeking_at_the_first_event_does_not_leave_the_chat_busy() -> None:
    chat = ck.Chat(offline=backend(Turn(text=LONG), Turn(text="second")), render=False)
    stream = chat.stream("first")
    first = await anext(aiter(stream))  # the temporary iterator dies before the turn has begun
    assert isinstance(first, ck.MessageStart)
    await stream.aclose()
    assert (await chat("second")).text == "second"


async def test_awaiting_a_stream_after_break_adds_nothing_twice() -> None:
    chat = ck.Chat(offline=backend(Turn(text=LONG), Turn(text="x")), render=False)
    stream = chat.stream("first")
    async for ev in stream:
        if isinstance(ev, ck.TextDelta):
            break
    reply = await stream  # already finished: nothing more streams or lands in the history
    assert reply.interrupted and len(chat.history[1]["content"]) == 1
    assert [r.status for r in chat.usage.records] == ["interrupted"]


async def test_aclose_from_another_task_interrupts_the_reader() -> None:
    chat = ck.Chat(offline=backend(Turn(text=LONG), Turn(text="next"), event_delay=0.01), render=False)
    stream = chat.stream("first")
    task = asyncio.ensure_future(stream.collect())
    await asyncio.sleep(0.1)
    await stream.aclose()  # returns once the turn is finished
    assert stream.reply.interrupted and chat.history.problems() == []  # finished; the reader is unwinding
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await chat("again")).text == "next" and chat.history.problems() == []


async def test_a_busy_stream_does_not_replace_last_reply() -> None:
    chat = ck.Chat(offline=backend(Turn(text=LONG), Turn(text="x"), event_delay=0.001), render=False)
    first = asyncio.ensure_future(chat("first"))
    await asyncio.sleep(0.05)
    with pytest.raises(ck.BusyError):
        async for _ in chat.stream("second"):
            pass
    reply = await first
    assert chat.last_reply is reply and reply.text == LONG


async def test_a_null_cache_control_is_not_a_marker_and_an_old_5m_one_gives_way() -> None:
    b = backend(Turn(text="a"), Turn(text="b"))
    system = [{"type": "text", "text": "rules " * 50, "cache_control": None}]
    chat = ck.Chat(offline=b, render=False, system=system)
    await chat([{"type": "text", "text": "doc one", "cache_control": {"type": "ephemeral"}}])
    assert b.requests[0]["system"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "5m"}  # claudekit's
    prompt = [{"type": "text", "text": "doc two", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    assert (await chat(prompt)).text == "b"
    body = b.requests[-1]
    assert "cache_control" not in body["messages"][0]["content"][0]  # the earlier 5m marker gave way
    assert marker_ttls(body) == ["1h", "1h", "5m"]  # system (claudekit's, lifted), the user's, automatic


async def test_a_prompt_answering_a_call_twice_is_refused_before_sending() -> None:
    b = backend(Turn(tool_calls=[ToolCall("calculator", {})]), Turn(text="never"))
    chat = ck.Chat(offline=b, render=False, tools=[CALC])
    (call,) = (await chat("2+2?")).tool_calls
    twice = [{"type": "tool_result", "tool_use_id": call.id, "content": str(n)} for n in (4, 5)]
    with pytest.raises(ck.ConfigError, match="more than once"):
        await chat(twice)
    assert len(b.requests) == 1


async def test_the_final_failed_attempt_keeps_its_request_id() -> None:
    from claudekit.offline import Fault

    chat = ck.Chat(offline=backend(*[Fault.status(529)] * 3), render=False, max_retries=2)  # type: ignore[arg-type]
    with pytest.raises(ck.OverloadedError) as info:
        await chat("hi")
    last = chat.usage.records[-1]
    assert last.status == "overloaded_error" and last.request_id is not None
    assert last.request_id == info.value.request_id
