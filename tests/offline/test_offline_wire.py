"""Wire protocol: stream shapes, JSON responses, count_tokens, errors, SDK accumulation."""

from __future__ import annotations

import json
import warnings
from typing import Any

import anthropic
import httpx2
import pytest
from offline_helpers import MODEL, WEATHER_TOOL, user

from claudekit.offline import (
    OfflineBackend,
    Script,
    ToolCall,
    Turn,
    count_text,
    count_tokens,
    make_async_client,
)


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in raw.decode().split("\n\n"):
        if not chunk.strip():
            continue
        lines = dict(line.split(": ", 1) for line in chunk.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def post(backend: OfflineBackend, path: str, body: Any, **headers: str) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=backend.async_transport(), base_url="http://x") as http:
        return await http.post(path, json=body, headers={"x-api-key": "offline", **headers})


async def test_stream_event_order_and_shapes(backend: OfflineBackend) -> None:
    backend.responder = Script(
        [
            Turn(
                thinking="Think first.",
                text="Hello there, friend.",
                tool_calls=[ToolCall("get_weather", {"city": "Paris"})],
            )
        ]
    )
    body = {
        "model": MODEL,
        "max_tokens": 4000,
        "stream": True,
        "tools": [WEATHER_TOOL],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [user("weather?")],
    }
    resp = await post(backend, "/v1/messages", body)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["request-id"].startswith("req_")
    events = parse_sse(resp.content)
    names = [e for e, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names[1] == "content_block_start" and names[2] == "ping"
    for name, data in events:
        assert data["type"] == name
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert set(start["usage"]) >= {
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
        "output_tokens",
    }
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert starts[0] == {"type": "thinking", "thinking": "", "signature": ""}
    assert starts[1] == {"type": "text", "text": ""}
    assert (
        starts[2]["type"] == "tool_use"
        and starts[2]["caller"] == {"type": "direct"}
        and starts[2]["input"] == {}
    )
    deltas = [d for n, d in events if n == "content_block_delta"]
    thinking_deltas = [d["delta"] for d in deltas if d["index"] == 0]
    assert thinking_deltas[-1]["type"] == "signature_delta"
    assert "".join(d["thinking"] for d in thinking_deltas[:-1]) == "Think first."
    text = "".join(d["delta"]["text"] for d in deltas if d["index"] == 1)
    assert text == "Hello there, friend."
    assert len([d for d in deltas if d["index"] == 1]) > 1  # streamed in small pieces
    json_frags = [d["delta"]["partial_json"] for d in deltas if d["index"] == 2]
    assert json_frags[0] == ""
    assert json.loads("".join(json_frags)) == {"city": "Paris"}
    assert not any("city" in f for f in json_frags)  # the key itself is split across fragments
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "tool_use"
    expected_out = (
        count_text("Think first.") + count_text("Hello there, friend.") + count_text('{"city": "Paris"}')
    )
    assert delta["usage"]["output_tokens"] == expected_out
    assert delta["usage"]["input_tokens"] == start["usage"]["input_tokens"]
    stops = [d["index"] for n, d in events if n == "content_block_stop"]
    assert stops == [0, 1, 2]


async def test_non_streaming_json_message(backend: OfflineBackend) -> None:
    backend.responder = Script([Turn(text="Plain answer.")])
    body = {"model": MODEL, "max_tokens": 100, "messages": [user("hi")]}
    resp = await post(backend, "/v1/messages", body)
    msg = resp.json()
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert msg["type"] == "message" and msg["role"] == "assistant" and msg["model"] == MODEL
    assert msg["id"].startswith("msg_")
    assert msg["content"] == [{"type": "text", "text": "Plain answer."}]
    assert msg["stop_reason"] == "end_turn" and msg["stop_sequence"] is None
    assert msg["usage"]["input_tokens"] == count_tokens(body)
    assert msg["usage"]["output_tokens"] == count_text("Plain answer.")


async def test_count_tokens_endpoint_matches_counter(backend: OfflineBackend) -> None:
    body = {
        "model": MODEL,
        "system": "Be brief.",
        "tools": [WEATHER_TOOL],
        "messages": [user("Hello, world 2024!")],
    }
    resp = await post(backend, "/v1/messages/count_tokens", body)
    assert resp.status_code == 200
    assert resp.json() == {"input_tokens": count_tokens(body)}
    # The counter grows with content: adding text adds exactly its tokens plus block framing.
    more = {**body, "messages": [user("Hello, world 2024! And more words here.")]}
    assert count_tokens(more) - count_tokens(body) == count_text(" And more words here.")


async def test_error_shape_and_request_id(backend: OfflineBackend) -> None:
    resp = await post(backend, "/v1/messages", {"model": MODEL, "messages": [user("x")]})
    assert resp.status_code == 400
    body = resp.json()
    assert body["type"] == "error"
    assert body["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
    assert body["request_id"] == resp.headers["request-id"]


async def test_unknown_model_is_404(backend: OfflineBackend) -> None:
    resp = await post(
        backend, "/v1/messages", {"model": "claude-nope-9", "max_tokens": 5, "messages": [user("x")]}
    )
    assert resp.status_code == 404
    assert resp.json()["error"]["type"] == "not_found_error"
    assert "claude-nope-9" in resp.json()["error"]["message"]


async def test_missing_api_key_is_401(backend: OfflineBackend) -> None:
    async with httpx2.AsyncClient(transport=backend.async_transport(), base_url="http://x") as http:
        resp = await http.post(
            "/v1/messages", json={"model": MODEL, "max_tokens": 5, "messages": [user("x")]}
        )
    assert resp.status_code == 401 and resp.json()["error"]["type"] == "authentication_error"


async def test_unknown_path_is_404(backend: OfflineBackend) -> None:
    resp = await post(backend, "/v1/nothing", {})
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "not_found_error"


async def test_sdk_stream_accumulates_without_warnings(backend: OfflineBackend) -> None:
    client = make_async_client(backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        async with client.messages.stream(
            model=MODEL,
            max_tokens=3000,
            tools=[WEATHER_TOOL],
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[user("What is the weather in Paris?")],
        ) as stream:
            texts = [t async for t in stream.text_stream]
            final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert "".join(texts) == final.content[1].text
    tool = final.content[2]
    assert tool.type == "tool_use" and tool.name == "get_weather" and tool.input == {"city": "Paris"}
    assert final.stop_reason == "tool_use"
    assert stream.request_id is not None and stream.request_id.startswith("req_")


async def test_sdk_non_streaming_create_and_count_tokens(backend: OfflineBackend) -> None:
    client = make_async_client(backend)
    msg = await client.messages.create(model=MODEL, max_tokens=200, messages=[user("Tell me about otters")])
    assert msg.content[0].type == "text"
    assert msg.content[0].text.startswith("(offline) ")
    assert "Tell me about otters" in msg.content[0].text
    counted = await client.messages.count_tokens(model=MODEL, messages=[user("Tell me about otters")])
    assert counted.input_tokens == msg.usage.input_tokens


async def test_sdk_raises_typed_errors(backend: OfflineBackend) -> None:
    client = make_async_client(backend, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client.messages.create(model=MODEL, max_tokens=5, messages=[])
    assert "messages" in bad.value.message
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.create(model="claude-unknown", max_tokens=5, messages=[user("x")])


def test_sync_transport_with_sync_sdk(backend: OfflineBackend) -> None:
    from claudekit.offline import make_client

    client = make_client(backend)
    with client.messages.stream(model=MODEL, max_tokens=100, messages=[user("sync hello")]) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text" and "sync hello" in final.content[0].text
