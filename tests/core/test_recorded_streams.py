"""Every shared recorded stream through the real SDK and claudekit, compared with the SDK's own result.

The oracle for good streams is ``MessageStream.get_final_message()`` run in the same test on the same
bytes, plus the wire itself (deltas parsed straight from the file) and EXPECTED.json (written by another
session from the SDK). For streams the SDK cannot handle, claudekit must raise its own error type with
the partial reply kept, or (for the documented usage-less stream) succeed with usage recorded as missing.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

import claudekit as ck
from tests.conftest import SSE_DIR, sdk_client, sse_transport

EXPECTED = json.loads((SSE_DIR / "EXPECTED.json").read_text())["files"]
FILES = sorted(p.name for p in SSE_DIR.glob("*.sse"))
SDK_RAISES = {name for name, exp in EXPECTED.items() if exp["messages"]["get_final_message"] == "raises"}


def wire_events(body: bytes) -> list[dict[str, Any]]:
    """Parse an SSE body by hand: the `data:` JSON of each event that has an `event:` line."""
    out = []
    for chunk in body.decode().split("\n\n"):
        lines = chunk.strip().splitlines()
        names = [ln[6:].strip() for ln in lines if ln.startswith("event:")]
        data = "".join(ln[5:].strip() for ln in lines if ln.startswith("data:"))
        if names and data and names[0] != "ping":
            try:
                out.append(json.loads(data))
            except json.JSONDecodeError:
                break  # the SDK raises here, so nothing after it reaches anyone
    return out


def wire_text(events: list[dict[str, Any]], kind: str = "text_delta", field: str = "text") -> list[str]:
    return [
        e["delta"][field]
        for e in events
        if e.get("type") == "content_block_delta" and e["delta"]["type"] == kind
    ]


async def sdk_final(body: bytes) -> anthropic.types.Message:
    client = sdk_client(sse_transport(body))
    async with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=1024, messages=[{"role": "user", "content": "hi"}]
    ) as s:
        return await s.get_final_message()


async def run_claudekit(body: bytes) -> tuple[ck.Chat, list[ck.Event], ck.Reply, BaseException | None]:
    chat = ck.Chat(client=sdk_client(sse_transport(body)), render=False, cache=False, max_steps=1)
    stream = chat.stream("hi")
    events: list[ck.Event] = []
    err: BaseException | None = None
    try:
        async for ev in stream:
            events.append(ev)
    except ck.ClaudekitError as exc:
        err = exc
    return chat, events, stream.reply, err


def test_every_fixture_is_covered() -> None:
    assert len(FILES) == 30
    assert set(FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", [f for f in FILES if f not in SDK_RAISES])
async def test_good_stream_equals_sdk(name: str) -> None:
    body = (SSE_DIR / name).read_bytes()
    expected_msg = await sdk_final(body)
    chat, events, reply, err = await run_claudekit(body)
    assert err is None, err
    # The final message is exactly what the SDK's MessageStream builds, except that claudekit gathers an
    # mcp_tool_use block's streamed input (the connector's block is no type of the non-beta SDK, which
    # keeps the start's {}: EXPECTED's "messages" vs "beta" tool_inputs), so that it goes back as it came.
    for block in expected_msg.content:
        if block.type == "mcp_tool_use":
            [beta_input] = [i for i in EXPECTED[name]["beta"]["tool_inputs"] if i]
            block.input = beta_input  # type: ignore[union-attr]
    assert reply.message == expected_msg
    assert type(reply.message) is type(expected_msg)
    # Cross-check with EXPECTED.json, written independently from the SDK.
    exp = EXPECTED[name]["messages"]
    assert reply.stop_reason == exp["stop_reason"]
    assert [b.type for b in reply.message.content] == exp["content_types"]
    for key, value in exp["usage"].items():
        assert getattr(reply.message.usage, key) == value, key
    # Events agree with the wire: every text / thinking delta arrives, in order.
    wire = wire_events(body)
    assert "".join(e.text for e in events if isinstance(e, ck.TextDelta)) == "".join(wire_text(wire))
    assert "".join(e.thinking for e in events if isinstance(e, ck.ThinkingDelta)) == "".join(
        wire_text(wire, "thinking_delta", "thinking")
    )
    assert sum(isinstance(e, ck.Citation) for e in events) == exp["citations"]
    gathered = "beta" if any(b.type == "mcp_tool_use" for b in reply.message.content) else "messages"
    assert [
        getattr(b, "input", None) for b in reply.message.content if getattr(b, "input", None) is not None
    ] == EXPECTED[name][gathered]["tool_inputs"]
    tracked = [
        b.input for b in reply.message.content if b.type in ("tool_use", "server_tool_use", "mcp_tool_use")
    ]
    assert [e.input for e in events if isinstance(e, ck.ToolCallReady)] == tracked
    assert all(e.error is None for e in events if isinstance(e, ck.ToolCallReady)) == (
        exp["stop_reason"] != "max_tokens"
    )
    done = [e for e in events if isinstance(e, ck.MessageDone)]
    assert len(done) == 1 and done[0].message is reply.message
    assert done[0].usage == ck.Usage.from_sdk(expected_msg.usage)
    # The conversation stays valid for the next turn; after a refusal the service says the context
    # must be reset, so the refused prompt is taken back out.
    assert chat.history.problems() == []
    if exp["stop_reason"] == "refusal":
        assert len(chat.history) == 0 and reply.status == "refused" and reply.stop_details is not None
    else:
        assert chat.history[0]["role"] == "user" and reply.status == "ok"


async def test_usage_less_documented_stream_succeeds_with_usage_missing() -> None:
    # The SDK crashes with AttributeError on this documented stream; claudekit keeps the answer.
    name = "docs__extended_thinking.sse"
    assert EXPECTED[name]["messages"]["exception"] == "builtins.AttributeError"
    body = (SSE_DIR / name).read_bytes()
    chat, _, reply, err = await run_claudekit(body)
    assert err is None
    wire = wire_events(body)
    assert reply.text == "".join(wire_text(wire))
    assert reply.thinking == "".join(wire_text(wire, "thinking_delta", "thinking"))
    sig = wire_text(wire, "signature_delta", "signature")[-1]
    assert reply.message.content[0].signature == sig
    assert reply.usage.input_tokens is None and reply.usage.output_tokens is None
    assert reply.stop_reason == "end_turn"
    record = chat.usage.records[-1]
    assert record.status == "ok" and record.output_tokens is None and record.input_tokens is None
    assert chat.usage.df["output_tokens"].isna().all()
    assert chat.history.problems() == []


@pytest.mark.parametrize(
    ("name", "error_type", "partial_text"),
    [
        ("docs__error_event_overloaded.sse", ck.OverloadedError, ""),
        ("composite__text_then_midstream_overloaded_error.sse", ck.OverloadedError, None),
        ("docs__web_search_elided.sse", ck.MalformedStreamError, None),
    ],
)
async def test_broken_stream_raises_claudekit_error_and_keeps_partial(
    name: str, error_type: type[Exception], partial_text: str | None
) -> None:
    body = (SSE_DIR / name).read_bytes()
    with pytest.raises(Exception) as sdk_exc:
        await sdk_final(body)
    assert type(sdk_exc.value).__name__ == EXPECTED[name]["messages"]["exception"].rsplit(".", 1)[-1]
    chat, _, reply, err = await run_claudekit(body)
    assert isinstance(err, error_type)
    assert err.reply is reply and reply.error is err
    assert "\n" not in str(err) and len(str(err)) < 400
    wire = wire_events(body)
    expected_text = "".join(wire_text(wire)) if partial_text is None else partial_text
    assert reply.text == expected_text
    assert chat.history.problems() == []
    if expected_text:
        # The partial answer stays in the conversation, after the prompt.
        assert chat.history[-1]["role"] == "assistant"
        assert chat.history[-1]["content"][-1]["text"] == expected_text
    else:
        assert len(chat.history) == 0  # nothing came back: the prompt is taken out again


async def test_overloaded_midstream_maps_by_error_type_not_status() -> None:
    body = (SSE_DIR / "docs__error_event_overloaded.sse").read_bytes()
    _, _, _, err = await run_claudekit(body)
    assert isinstance(err, ck.OverloadedError)
    assert err.status == 200 and err.type == "overloaded_error"
    assert isinstance(err.__cause__, anthropic.APIStatusError)


def test_hot_path_events_are_the_same_objects_the_dataclasses_build() -> None:
    from dataclasses import FrozenInstanceError

    from claudekit._base._events import new_text_delta, new_thinking_delta

    fast, slow = new_text_delta(3, "hé"), ck.TextDelta(3, "hé")
    assert fast == slow and repr(fast) == repr(slow) and hash(fast) == hash(slow)
    assert type(fast) is ck.TextDelta and new_thinking_delta(1, "t") == ck.ThinkingDelta(1, "t")
    with pytest.raises(FrozenInstanceError):
        fast.text = "changed"  # type: ignore[misc]


def test_a_hot_path_tool_fragment_is_the_object_the_dataclass_builds() -> None:
    from dataclasses import FrozenInstanceError

    from claudekit._base._events import _JsonBuffer, new_tool_call_delta

    buf = _JsonBuffer()
    buf.parts.extend(['{"a": ', "1}"])
    fast, slow = new_tool_call_delta(0, "toolu_1", "1}", buf, 2), ck.ToolCallDelta(0, "toolu_1", "1}", buf, 2)
    assert type(fast) is ck.ToolCallDelta and fast == slow and repr(fast) == repr(slow)
    assert fast.arguments_json == slow.arguments_json == '{"a": 1}'
    assert fast.partial == {"a": 1}
    with pytest.raises(FrozenInstanceError):
        fast.fragment = "changed"  # type: ignore[misc]
