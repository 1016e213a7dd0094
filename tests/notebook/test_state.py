"""The view's state machine, from event sequences (no widgets, no kernel)."""

from __future__ import annotations

import asyncio

import pytest

import claudekit as ck
from claudekit.notebook import ViewState
from claudekit.notebook._state import FINAL_STATUSES, citation_text, preview
from claudekit.offline import Turn
from tests.notebook.helpers import collect, offline_chat, recorded_chat, tool_chat, tool_deltas


def start(step: int = 0, model: str = "claude-test") -> ck.MessageStart:
    return ck.MessageStart(step, f"msg_{step}", model, ck.Usage(input_tokens=10, output_tokens=1))


def test_status_follows_the_reply_through_thinking_tools_and_text() -> None:
    st = ViewState("m", "c")
    seen = [st.status]
    events: list[ck.Event] = [
        start(),
        ck.ThinkingDelta(0, "Let me think"),
        ck.ThinkingSignature(0, "sig"),
        ck.ToolCallStart(1, "t1", "weather"),
        *tool_deltas("t1", ['{"ci', 'ty": "Pa', 'ris"}'], index=1),
        ck.ToolCallReady(1, "t1", "weather", {"city": "Paris"}),
    ]
    for ev in events:
        st.apply(ev)
        seen.append(st.status)
    assert seen[0] == "waiting"
    assert "thinking" in seen
    assert seen[-1] == "calling tools"
    assert st.model == "claude-test"
    assert st.cards["t1"].status == "ready"
    st.apply(ck.ToolResult("t1", "weather", "sunny in Paris"))
    assert st.cards["t1"].status == "done"
    assert st.cards["t1"].result == "sunny in Paris"
    st.apply(start(1))
    st.apply(ck.TextDelta(0, "It is sunny."))
    assert st.status == "writing"
    assert st.text == "It is sunny."


def test_tool_arguments_are_parsed_lazily_from_the_last_delta() -> None:
    st = ViewState()
    st.apply(ck.ToolCallStart(0, "t1", "search"))
    deltas = tool_deltas("t1", ['{"query": "cats', " and dogs", '", "limit": 3}'])
    for d in deltas[:2]:
        st.apply(d)
    card = st.cards["t1"]
    assert card.input is None  # nothing parsed until a renderer asks
    assert card.arguments() == {"query": "cats and dogs"}
    st.apply(deltas[2])
    assert card.arguments() == {"query": "cats and dogs", "limit": 3}
    assert '"limit": 3' in card.arguments_text()


def test_text_of_separate_api_calls_is_joined_like_reply_text() -> None:
    st = ViewState()
    st.apply(start(0))
    st.apply(ck.TextDelta(0, "Let me "))
    st.apply(ck.TextDelta(0, "check."))
    st.apply(start(1))
    st.apply(ck.TextDelta(0, "Done."))
    assert st.text == "Let me check.\n\nDone."


def test_redacted_and_signature_only_thinking_are_labelled() -> None:
    st = ViewState()
    st.apply(start())
    st.apply(ck.RedactedThinking(0, "enc"))
    st.apply(ck.ThinkingSignature(1, "sig-only"))
    assert st.redacted == 1
    assert st.omitted == 1
    assert st.has_thinking
    label = st.thinking_label()
    assert "hidden reasoning" in label and "thinking omitted" in label
    # A signature after streamed thinking is not "omitted".
    st.apply(ck.ThinkingDelta(2, "visible"))
    st.apply(ck.ThinkingSignature(2, "sig"))
    assert st.omitted == 1


def test_versions_change_only_for_touched_sections() -> None:
    st = ViewState()
    st.apply(start())
    st.apply(ck.TextDelta(0, "a"))
    before = dict(st.versions)
    st.apply(ck.TextDelta(0, "b"))
    changed = {k for k in st.versions if st.versions[k] != before[k]}
    assert changed == {"text"}


def test_approval_request_marks_cards_and_status() -> None:
    class Pending:
        id = "t1"

    st = ViewState()
    st.apply(ck.ToolCallStart(0, "t1", "rm"))
    st.apply(ck.ToolCallReady(0, "t1", "rm", {"path": "/"}))
    st.apply(ck.ApprovalRequest((Pending(),)))
    assert st.status == "awaiting approval"
    assert st.cards["t1"].status == "awaiting approval"
    st.apply(ck.ToolResult("t1", "rm", "denied by user", is_error=True, decision="denied"))
    assert st.cards["t1"].status == "denied"


@pytest.mark.parametrize(
    ("error", "expected"),
    [(None, "done"), (asyncio.CancelledError(), "interrupted"), (ck.NetworkError("dropped"), "error")],
)
def test_finish_sets_final_status(error: BaseException | None, expected: str) -> None:
    st = ViewState()
    st.apply(ck.ToolCallStart(0, "t1", "weather"))
    st.finish(ck.Reply("m"), error)
    assert st.status == expected
    assert st.final and expected in FINAL_STATUSES
    card = st.cards["t1"]
    assert card.status == ("interrupted" if expected == "interrupted" else "invalid")
    if expected == "error":
        assert st.error is not None and st.error.startswith("dropped — ")


async def test_state_from_a_real_tool_loop_matches_the_reply() -> None:
    chat = tool_chat()
    stream = chat.stream("weather?")
    st = ViewState()
    for ev in await collect(stream):
        st.apply(ev)
    reply = stream.reply
    st.finish(reply, None)
    assert st.status == "done"
    assert st.text == reply.text
    assert [c.name for c in st.cards.values()] == [c.name for c in reply.tool_calls]
    card = next(iter(st.cards.values()))
    assert card.status == "done"
    assert card.arguments() == {"city": "Paris"}
    assert card.result == "sunny in Paris"
    assert st.total_usage().output_tokens == reply.usage.output_tokens


async def test_state_from_recorded_redacted_thinking() -> None:
    stream = recorded_chat("pydantic-ai__redacted_thinking.sse").stream("hi")
    st = ViewState()
    for ev in await collect(stream):
        st.apply(ev)
    redacted = sum(1 for b in stream.reply.message.content if b.type == "redacted_thinking")  # type: ignore[union-attr]
    assert redacted > 0
    assert st.redacted == redacted
    assert st.text == stream.reply.text


async def test_state_from_recorded_web_search_with_citations() -> None:
    stream = recorded_chat("pydantic-ai__thinking_web_search_citations.sse").stream("search")
    st = ViewState()
    for ev in await collect(stream):
        st.apply(ev)
    st.finish(stream.reply, None)
    msg = stream.reply.message
    assert msg is not None
    server_uses = [b for b in msg.content if b.type == "server_tool_use"]
    assert len(server_uses) > 0
    cards = [c for c in st.cards.values() if c.server]
    assert len(cards) == len(server_uses)
    assert all(c.status == "done" and c.result and "result" in c.result for c in cards)
    cited = {citation_text(c) for b in msg.content for c in (getattr(b, "citations", None) or [])}
    assert cited and set(st.citations) == cited
    assert st.thinking == stream.reply.thinking


async def test_thinking_blocks_are_separated() -> None:
    chat = offline_chat([Turn(text="ok", thinking="first thought")], thinking=2048)
    stream = chat.stream("hi")
    st = ViewState()
    for ev in await collect(stream):
        st.apply(ev)
    assert st.thinking == stream.reply.thinking == "first thought"


def test_preview_shortens_and_flattens() -> None:
    assert preview("a\n  b", 10) == "a b"
    long = preview("x" * 500, 50)
    assert len(long) == 50 and long.endswith("…")
    assert preview([{"type": "text", "text": "hi"}, {"type": "image"}]) == "hi [image]"
    assert preview({"k": 1}) == '{"k": 1}'
