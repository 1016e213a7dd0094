"""Faults before and during the stream: claudekit errors, partial replies kept, history valid."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

import claudekit as ck
from tests import sse
from tests.conftest import SHARED, sdk_client, sse_transport


def err_body(etype: str, message: str) -> bytes:
    return json.dumps(
        {"type": "error", "error": {"type": etype, "message": message}, "request_id": "req_e"}
    ).encode()


async def test_401_is_an_authentication_error_naming_what_to_do() -> None:
    seen: list[httpx2.Request] = []
    client = sdk_client(
        sse_transport(err_body("authentication_error", "invalid x-api-key"), status=401, seen=seen)
    )
    chat = ck.Chat(client=client, render=False)
    with pytest.raises(ck.AuthenticationError) as info:
        await chat("hi")
    msg = str(info.value)
    assert "invalid x-api-key" in msg and "ANTHROPIC_API_KEY" in msg and "\n" not in msg
    assert info.value.status == 401
    assert len(seen) == 1  # 401 is not retried
    assert len(chat.history) == 0  # the prompt can simply be sent again
    assert info.value.reply is not None and info.value.reply.status == "error"


async def test_400_carries_the_api_message() -> None:
    client = sdk_client(
        sse_transport(err_body("invalid_request_error", "messages.0.content: field required"), status=400)
    )
    chat = ck.Chat(client=client, render=False)
    with pytest.raises(ck.BadRequestError, match=r"messages\.0\.content: field required"):
        await chat("hi")


async def test_recorded_429_is_retried_then_reported() -> None:
    rec = json.loads(
        (SHARED / "fixtures/anthropic/http/sdk-python__recorded_429_rate_limit.json").read_text()
    )
    seen: list[httpx2.Request] = []
    transport = sse_transport(
        json.dumps(rec["body"]).encode(),
        status=rec["status_code"],
        headers=rec["headers"] | {"retry-after-ms": "5", "request-id": rec["body"]["request_id"]},
        seen=seen,
    )
    chat = ck.Chat(client=sdk_client(transport, max_retries=2), render=False)
    with pytest.raises(ck.RateLimitError, match="rate limit of 20,000,000 prompt bytes") as info:
        await chat("hi")
    assert len(seen) == 3  # the SDK's own retries ran: 1 + max_retries
    assert info.value.type == "rate_limit_error" and info.value.request_id == "req_011CYK5n67SytMUxm8WMZUWY"


async def test_429_then_success_returns_the_answer() -> None:
    seen: list[httpx2.Request] = []
    transport = sse_transport(
        [err_body("rate_limit_error", "slow down"), sse.text_reply("Fine.")],
        status=[429, 200],
        headers={"retry-after-ms": "5"},
        seen=seen,
    )
    reply = await ck.Chat(client=sdk_client(transport), render=False)("hi")
    assert reply.text == "Fine." and len(seen) == 2


@pytest.mark.parametrize(
    ("status", "etype", "cls"),
    [(529, "overloaded_error", ck.OverloadedError), (500, "api_error", ck.ServerError)],
)
async def test_server_errors_after_retries(status: int, etype: str, cls: type[Exception]) -> None:
    seen: list[httpx2.Request] = []
    transport = sse_transport(
        err_body(etype, "boom"), status=status, headers={"retry-after-ms": "1"}, seen=seen
    )
    with pytest.raises(cls):
        await ck.Chat(client=sdk_client(transport, max_retries=1), render=False)("hi")
    assert len(seen) == 2


async def test_stream_without_message_stop_is_detected_and_partial_kept() -> None:
    full = sse.body(sse.message_start(), sse.text_block(0, ["Partial ", "answer"]), sse.message_end())
    cut = full[: full.index(b"event: message_delta")]
    chat = ck.Chat(client=sdk_client(sse_transport([cut, sse.text_reply("next")])), render=False)
    with pytest.raises(ck.IncompleteStreamError) as info:
        await chat("hi")
    assert info.value.reply.text == "Partial answer"
    assert chat.history.problems() == []
    assert chat.history[-1]["content"] == [{"type": "text", "text": "Partial answer"}]
    assert (await chat("go on")).text == "next"  # the next turn is accepted


async def test_malformed_tool_json_is_reported_never_silently_empty() -> None:
    ran: list[Any] = []

    def lookup(key: str) -> str:
        ran.append(key)
        return "x"

    broken = sse.body(
        sse.message_start(),
        sse.tool_block(0, "toolu_1", "lookup", ['{"key": ', "]]"]),
        sse.message_end("tool_use"),
    )
    chat = ck.Chat(
        client=sdk_client(sse_transport([broken, sse.text_reply("ok")])), render=False, tools=[lookup]
    )
    events = [ev async for ev in chat.stream("go")]
    ready = [e for e in events if isinstance(e, ck.ToolCallReady)]
    assert len(ready) == 1 and ready[0].error is not None and "not valid JSON" in ready[0].error
    assert ran == []  # never run with made-up arguments
    results = [e for e in events if isinstance(e, ck.ToolResult)]
    assert results and results[0].is_error and "not valid JSON" in str(results[0].content)


async def test_tool_arguments_cut_by_max_tokens_are_flagged() -> None:
    cut = sse.body(
        sse.message_start(),
        sse.tool_block(0, "toolu_1", "lookup", ['{"key": "ab'], stop=False),
        sse.message_end("max_tokens"),
    )
    chat = ck.Chat(
        client=sdk_client(sse_transport(cut)),
        render=False,
        tools=[{"name": "lookup", "input_schema": {"type": "object"}}],
    )
    reply = await chat("go")
    assert reply.tool_calls[0].error == "tool arguments were cut off by max_tokens"
    assert reply.stop_reason == "max_tokens"


@pytest.mark.parametrize(
    "events",
    [
        [
            sse.message_start(),
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}},
        ],
        [
            sse.message_start(),
            *sse.text_block(0, ["a"])[:1],
            {"type": "content_block_start", "index": 3, "content_block": {"type": "text", "text": ""}},
        ],
        [*sse.text_block(0, ["a"])],
        [
            sse.message_start(),
            *sse.text_block(0, [])[:1],
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "x"}},
        ],
    ],
    ids=["delta-before-start", "index-gap", "no-message-start", "wrong-delta-type"],
)
async def test_events_out_of_order_are_malformed(events: list[dict[str, Any]]) -> None:
    chat = ck.Chat(client=sdk_client(sse_transport(sse.body(events))), render=False)
    with pytest.raises(ck.MalformedStreamError) as info:
        await chat("hi")
    assert "\n" not in str(info.value)
    assert chat.history.problems() == []


def test_missing_key_with_real_backend_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ck.MissingAPIKeyError) as info:
        ck.Chat(backend="anthropic")
    line = str(info.value)
    assert "\n" not in line and "ANTHROPIC_API_KEY" in line and "backend='offline'" in line


class SlowStream(httpx2.AsyncByteStream):
    """Streams the body in small pieces with a pause, and records whether it was closed."""

    def __init__(self, data: bytes, pause: float = 0.01, piece: int = 40) -> None:
        self.data, self.pause, self.piece = data, pause, piece
        self.closed = False
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), self.piece):
            await asyncio.sleep(self.pause)
            self.sent = i + self.piece
            yield self.data[i : i + self.piece]

    async def aclose(self) -> None:
        self.closed = True


async def test_cancelling_the_task_closes_the_stream_and_keeps_a_valid_partial_turn() -> None:
    chunks = [f"word{i} " for i in range(200)]
    body = sse.body(
        sse.message_start(),
        sse.thinking_block(0, ["plan"], "SIG"),
        sse.text_block(1, chunks),
        sse.message_end(),
    )
    streams: list[SlowStream] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        s = SlowStream(body)
        streams.append(s)
        return httpx2.Response(200, stream=s, headers={"content-type": "text/event-stream"})

    chat = ck.Chat(client=sdk_client(httpx2.MockTransport(handler)), render=False)
    rs = chat.stream("write a lot")
    got: list[str] = []

    async def consume() -> None:
        async for ev in rs:
            if isinstance(ev, ck.TextDelta):
                got.append(ev.text)

    task = asyncio.create_task(consume())
    while len(got) < 5:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert streams[0].closed and streams[0].sent < len(body)
    reply = rs.reply
    assert reply.interrupted and reply.status == "interrupted"
    assert reply.text.startswith("".join(got))
    assert chat.history.problems() == []
    kept = chat.history[-1]["content"]
    assert kept[0] == {"type": "thinking", "thinking": "plan", "signature": "SIG"}
    assert kept[1]["type"] == "text" and kept[1]["text"].startswith("word0 word1")


async def test_incomplete_thinking_is_dropped_on_interrupt() -> None:
    events = [sse.message_start(), *sse.thinking_block(0, ["half a thought"])[:2]]
    chat = ck.Chat(client=sdk_client(sse_transport(sse.body(events))), render=False)
    with pytest.raises(ck.IncompleteStreamError) as info:
        await chat("hi")
    assert info.value.reply.thinking == "half a thought"  # kept on the reply for the user to see
    assert len(chat.history) == 0  # but not sent back unsigned: the turn is undone


async def test_unknown_block_and_delta_types_pass_through_as_generic_events() -> None:
    events = [
        sse.message_start(),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "hologram", "frames": 3}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "hologram_delta", "frame": "abc"}},
        {"type": "content_block_stop", "index": 0},
        *sse.text_block(1, ["still ", "fine"]),
        *sse.message_end(),
    ]
    chat = ck.Chat(client=sdk_client(sse_transport(sse.body(events))), render=False)
    got = [ev async for ev in chat.stream("hi")]
    unknown = [e for e in got if isinstance(e, ck.UnknownEvent)]
    assert [u.type for u in unknown] == ["hologram_delta", "hologram"]
    assert chat.last_reply is not None and chat.last_reply.text == "still fine"
    assert chat.last_reply.message.content[0].type == "hologram"  # on the reply, verbatim
    assert chat.last_reply.message.content[0].frames == 3
    # but not replayed: the API would reject a block type it does not accept as input
    assert chat.history[-1]["content"] == [{"type": "text", "text": "still fine"}]


async def test_partial_usage_after_an_error_is_missing_not_stale() -> None:
    full = sse.body(
        sse.message_start(input_tokens=42, output_tokens=1), sse.text_block(0, ["a", "b"]), sse.message_end()
    )
    cut = full[: full.index(b"event: message_delta")]
    chat = ck.Chat(client=sdk_client(sse_transport(cut)), render=False)
    with pytest.raises(ck.IncompleteStreamError):
        await chat("hi")
    record = chat.usage.records[-1]
    assert record.input_tokens == 42  # what message_start reported is real
    assert record.output_tokens is None  # its output count is a placeholder: unknown, not 1
    assert record.status == "incomplete_stream_error"  # the style of the API's error types
