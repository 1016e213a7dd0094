"""Regression tests for the defects the reliability runs found (each failed before its fix)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import httpx2
import pytest

import claudekit as ck
from tests import sse


class _Broken(httpx2.AsyncByteStream):
    """A body that delivers ``data`` and then fails with ``exc`` (what a dropped or stalled socket does)."""

    def __init__(self, data: bytes, exc: Exception) -> None:
        self.data = data
        self.exc = exc

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data
        raise self.exc


def _client(data: bytes, exc: Exception) -> anthropic.AsyncAnthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_Broken(data, exc), request=request
        )

    return anthropic.AsyncAnthropic(
        api_key="sk-test",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )


PARTIAL = sse.body(
    sse.message_start(),
    [
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Half an ans"}},
    ],
)


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (
            httpx2.RemoteProtocolError("peer closed connection without sending complete message body"),
            ck.NetworkError,
        ),
        (httpx2.ReadError("connection reset by peer"), ck.NetworkError),
        (httpx2.ReadTimeout("The read operation timed out"), ck.TimeoutError),
    ],
)
async def test_a_connection_lost_mid_stream_is_a_network_error_not_a_malformed_stream(
    exc: Exception, cls: type[ck.ClaudekitError]
) -> None:
    # Before the fix: MalformedStreamError ("malformed response stream: …", or an empty detail for
    # a read timeout), which tells the user the service sent garbage when the network dropped.
    chat = ck.Chat(client=_client(PARTIAL, exc), render=False)
    with pytest.raises(ck.ClaudekitError) as info:
        await chat("hi")
    assert type(info.value) is cls
    assert "\n" not in str(info.value) and str(info.value).split(" — ")[0].strip(": ")
    assert info.value.reply is not None and info.value.reply.text == "Half an ans"
    assert chat.usage.records[-1].status == info.value.kind  # e.g. "network_error", as API errors are named
    assert chat.history.problems() == []


async def test_a_failed_stream_logs_unknown_output_tokens_not_the_message_start_placeholder() -> None:
    # message_start carries output_tokens=1 as a placeholder; before the fix a cut or interrupted call
    # was logged (and priced) with output_tokens=1.
    chat = ck.Chat(client=_client(PARTIAL, httpx2.ReadError("reset")), render=False)
    with pytest.raises(ck.NetworkError) as info:
        await chat("hi")
    rec = chat.usage.records[-1]
    assert rec.input_tokens == 10  # what message_start reported is real
    assert rec.output_tokens is None
    # Issue 23 item 11: the cost counts what is known (10 input tokens) and what arrived ("Half an ans":
    # 11 characters, 3 tokens at 4 characters a token), never $0 or a stale output count.
    price = ck.usage.get_prices().lookup(rec.model)
    assert price is not None
    assert rec.cost_usd == pytest.approx((10 * price.input + 3 * price.output) * 1e-6)
    assert info.value.reply is not None and info.value.reply.usage.output_tokens is None


async def test_a_connection_dropped_after_message_stop_keeps_the_complete_answer() -> None:
    # Before the fix: NetworkError, the tool call dropped from the history, although every event
    # up to message_stop had arrived (only the end of the HTTP body was lost).
    full = sse.body(
        sse.message_start(), sse.text_block(0, ["All ", "of it."]), sse.message_end(output_tokens=7)
    )
    chat = ck.Chat(client=_client(full, httpx2.RemoteProtocolError("incomplete chunked read")), render=False)
    reply = await chat("hi")
    assert reply.text == "All of it." and reply.status == "ok" and reply.stop_reason == "end_turn"
    assert chat.usage.records[-1].status == "ok" and chat.usage.records[-1].output_tokens == 7
    assert chat.history[-1] == {"role": "assistant", "content": [{"type": "text", "text": "All of it."}]}


async def test_a_block_type_this_version_does_not_know_is_not_sent_back() -> None:
    # Before the fix the block went into the history and every later request was rejected (400).
    mystery = [
        {"type": "content_block_start", "index": 0, "content_block": {"type": "mystery_block", "data": "x"}},
        {"type": "content_block_stop", "index": 0},
    ]
    first = sse.body(sse.message_start(), mystery, sse.text_block(1, ["Answer."]), sse.message_end())
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        body = first if len(seen) == 1 else sse.text_reply("Second.")
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    client = anthropic.AsyncAnthropic(
        api_key="sk-test", http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    )
    chat = ck.Chat(client=client, render=False)
    reply = await chat("hi")
    assert [b.type for b in reply.message.content] == ["mystery_block", "text"]  # still on the reply
    await chat("again")
    sent = json.loads(seen[1].content)["messages"]
    assert sent[1] == {"role": "assistant", "content": [{"type": "text", "text": "Answer."}]}
    assert chat.history.problems() == []


async def test_a_thinking_block_without_a_signature_is_a_malformed_stream() -> None:
    # Found by the fuzzer (a dropped signature_delta). Before the fix the reply succeeded and the
    # unsigned thinking block went into the history, so the API would reject every later request.
    unsigned = [
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}},
        {"type": "content_block_stop", "index": 0},
    ]
    body = sse.body(sse.message_start(), unsigned, sse.text_block(1, ["Answer."]), sse.message_end())
    chat = ck.Chat(client=_client(body, httpx2.ReadError("unused")), render=False)
    with pytest.raises(ck.MalformedStreamError, match="signature") as info:
        await chat("hi")
    assert info.value.reply is not None and info.value.reply.thinking == "Hmm."
    assert chat.history.problems() == []
    assert len(chat.history) == 0  # nothing replayable arrived: the prompt is taken back


@pytest.mark.parametrize("system", [1, "\ud800", [{"type": "text", "text": "ok"}, 5]])
def test_a_saved_chat_with_a_broken_system_prompt_is_refused_at_load(system: object, tmp_path: Path) -> None:
    # Found by the corrupted-file fuzzer. Before the fix the file loaded, and the next prompt raised a
    # bare TypeError / UnicodeEncodeError and stayed in the history unanswered.
    path = tmp_path / "chat.json"
    path.write_text(
        json.dumps({"version": 1, "system": system, "messages": [{"role": "user", "content": "hi"}]})
    )
    chat = ck.Chat(client=_client(b"", httpx2.ReadError("unused")), render=False)
    with pytest.raises(ck.ConfigError, match="saved conversation") as info:
        chat.load(path)
    assert "\n" not in str(info.value)
    assert len(chat.history) == 0 and chat.settings.system is None


async def test_a_request_that_cannot_be_built_leaves_no_unanswered_prompt_behind() -> None:
    # Before the fix an exception while building the request (here: a system prompt of the wrong
    # type set after construction) escaped raw and left the prompt in the history.
    chat = ck.Chat(client=_client(b"", httpx2.ReadError("unused")), render=False)
    chat.settings.system = 42  # type: ignore[assignment]
    with pytest.raises(ck.ConfigError) as info:
        await chat("hi")
    assert "\n" not in str(info.value)
    assert len(chat.history) == 0


_TOOL_TURN = [
    {"role": "user", "content": "weather?"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "rain"}]},
]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ((1, "content", 0, "id"), None),  # tool_use without an id
        ((1, "content", 0, "id"), {"a": 1}),  # an id that is not text
        ((1, "content", 0, "input"), [1]),  # arguments that are not an object
        ((1, "content", 0, "type"), None),  # a block without a type
        ((1, "content", 0, "type"), "mystery_block"),  # a type the API does not take back
        ((2, "content", 0, "tool_use_id"), ["toolu_1"]),
        ((0, "content"), [{"type": "text", "text": 5}]),
    ],
)
def test_a_saved_chat_the_api_would_reject_is_refused_at_load(
    path: tuple[object, ...], value: object, tmp_path: Path
) -> None:
    # Found by the corrupted-file fuzzer: these loaded (or raised a bare KeyError/TypeError from
    # History.problems()), and then every request was rejected by the API.
    messages = json.loads(json.dumps(_TOOL_TURN))
    node: object = messages
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    if value is None:
        del node[path[-1]]  # type: ignore[attr-defined]
    else:
        node[path[-1]] = value  # type: ignore[index]
    file = tmp_path / "chat.json"
    file.write_text(json.dumps({"version": 1, "system": None, "messages": messages}))
    with pytest.raises(ck.ConfigError) as info:
        ck.History.load(file)
    assert "\n" not in str(info.value)
    assert ck.History.from_dict({"messages": _TOOL_TURN}).problems() == []  # the intact one loads


def test_the_offline_backend_answers_400_to_malformed_requests_instead_of_crashing() -> None:
    # Found by fuzzing requests: these raised TypeError / UnicodeEncodeError inside the backend,
    # which a client sees as a dropped connection (NetworkError), not as the 400 the API gives.
    from claudekit.offline import OfflineBackend

    base = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    bad = [
        {**base, "messages": [{"role": "user", "content": [{"type": ["text"], "text": "hi"}]}]},
        {**base, "messages": [{"role": "user", "content": "\ud800"}]},
        {**base, "model": {"name": "x"}},
        {**base, "tools": [{"name": "t", "input_schema": {"type": {"object": 1}}}]},
        {
            **base,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": ["image/png"], "data": "AA=="},
                        }
                    ],
                }
            ],
        },
    ]
    backend = OfflineBackend()
    for body in bad:
        reply = backend.handle("POST", "/v1/messages", {"x-api-key": "k"}, json.dumps(body).encode())
        assert 400 <= reply.status < 500, (body, reply.status)
        assert json.loads(reply.body)["error"]["type"] in ("invalid_request_error", "not_found_error")


async def test_tool_arguments_that_are_not_an_object_do_not_make_the_history_unsendable() -> None:
    # Found by the long fuzz run (a dropped first input_json_delta): the tool_use went into the history
    # with a string as its input, which the API rejects on every later request.
    body = sse.body(
        sse.message_start(),
        sse.tool_block(0, "toolu_1", "lookup", ['"query": ', '""}']),
        sse.message_end("tool_use"),
    )
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        data = body if len(seen) == 1 else sse.text_reply("ok")
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=data)

    client = anthropic.AsyncAnthropic(
        api_key="sk-test", http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    )
    chat = ck.Chat(client=client, render=False)
    reply = await chat("hi")
    assert reply.tool_calls[0].error  # the call says why it cannot run
    assert chat.history.problems() == []
    await chat("next")
    sent = json.loads(seen[1].content)["messages"][1]["content"][0]
    assert sent["type"] == "tool_use" and sent["input"] == {}
