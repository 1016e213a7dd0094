"""Fault injection, in process and over the loopback server, from scripts and from the request header."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import httpx2
import pytest
from offline_helpers import MODEL, WEATHER_TOOL, user

from claudekit.offline import FAULT_HEADER, Fault, OfflineBackend, Script, ToolCall, Turn, make_async_client

Factory = Callable[..., anthropic.AsyncAnthropic]


@pytest.fixture(params=["in_process", "loopback"])
async def make(request: pytest.FixtureRequest, backend: OfflineBackend) -> AsyncIterator[Factory]:
    clients: list[anthropic.AsyncAnthropic] = []

    def remember(client: anthropic.AsyncAnthropic) -> anthropic.AsyncAnthropic:
        clients.append(client)
        return client

    if request.param == "in_process":
        yield lambda **kw: remember(make_async_client(backend, **kw))
    else:
        with backend.serve() as server:
            yield lambda **kw: remember(
                anthropic.AsyncAnthropic(api_key="offline", base_url=server.base_url, **kw)
            )
            for client in clients:
                await client.close()


async def run_stream(
    client: anthropic.AsyncAnthropic, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[list[Any], Any]:
    params = {
        "model": MODEL,
        "max_tokens": 500,
        "messages": [user("Say something long enough to stream")],
        **kw,
    }
    async with client.messages.stream(**params, extra_headers=headers) as stream:
        events = [e async for e in stream]
        return events, await stream.get_final_message()


def test_fault_header_round_trip() -> None:
    faults = [
        Fault.status(429, retry_after=0),
        Fault.status(529),
        Fault.status(500, should_retry=False),
        Fault.error_event(after_events=4),
        Fault.cut(after_bytes=77),
        Fault.stall(2.5, after_events=3),
        Fault.truncated_tool_json(),
        Fault.malformed_json(after_events=5),
        Fault.unknown_block("odd_block"),
    ]
    for f in faults:
        assert Fault.parse(f.to_header()) == f
    with pytest.raises(ValueError):
        Fault.parse("explode:now=1")


async def test_429_with_retry_after_is_retried(make: Factory, backend: OfflineBackend) -> None:
    script = Script([Fault.status(429, retry_after=0), Turn(text="after the retry")])
    backend.responder = script
    _, final = await run_stream(make())
    assert final.content[0].text == "after the retry"
    assert len(script.requests) == 2


async def test_429_headers_and_body(make: Factory, backend: OfflineBackend) -> None:
    client = make(max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as exc:
        await run_stream(client, {FAULT_HEADER: Fault.status(429, retry_after=7).to_header()})
    assert exc.value.response.headers["retry-after"] == "7"
    assert exc.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert exc.value.request_id and exc.value.request_id.startswith("req_")


@pytest.mark.parametrize(
    ("code", "cls"), [(529, anthropic.OverloadedError), (500, anthropic.InternalServerError)]
)
async def test_server_errors(make: Factory, code: int, cls: type[Exception]) -> None:
    with pytest.raises(cls):
        await run_stream(make(max_retries=0), {FAULT_HEADER: Fault.status(code).to_header()})


async def test_error_event_mid_stream(make: Factory, backend: OfflineBackend) -> None:
    backend.responder = Script([Turn(text="partial text then boom", fault=Fault.error_event(after_events=4))])
    with pytest.raises(anthropic.APIStatusError) as exc:
        await run_stream(make(max_retries=0))
    assert exc.value.status_code == 200 and "overloaded_error" in str(exc.value.body)


async def test_cut_after_bytes(make: Factory) -> None:
    with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError, httpx2.ReadError)):
        await run_stream(make(max_retries=0), {FAULT_HEADER: Fault.cut(after_bytes=300).to_header()})


async def test_stall_longer_than_read_timeout(make: Factory) -> None:
    client = make(max_retries=0, timeout=httpx2.Timeout(5.0, read=0.3))
    with pytest.raises(anthropic.APITimeoutError):
        await client.messages.create(
            model=MODEL,
            max_tokens=20,
            messages=[user("x")],
            extra_headers={FAULT_HEADER: Fault.stall(1.0).to_header()},
        )


async def test_stall_mid_stream(make: Factory) -> None:
    client = make(max_retries=0, timeout=httpx2.Timeout(5.0, read=0.3))
    with pytest.raises((anthropic.APITimeoutError, httpx2.ReadTimeout)):
        await run_stream(client, {FAULT_HEADER: Fault.stall(1.0, after_events=3).to_header()})


async def test_malformed_event_json(make: Factory) -> None:
    with pytest.raises(json.JSONDecodeError):
        await run_stream(
            make(max_retries=0), {FAULT_HEADER: Fault.malformed_json(after_events=3).to_header()}
        )


async def test_unknown_block_type(make: Factory) -> None:
    _events, final = await run_stream(
        make(), {FAULT_HEADER: Fault.unknown_block("mystery_block").to_header()}
    )
    assert final.content[0].type == "mystery_block"
    assert final.content[1].type == "text" and final.stop_reason == "end_turn"


async def test_truncated_tool_json(make: Factory, backend: OfflineBackend) -> None:
    call = ToolCall("get_weather", {"city": "Paris", "unit": "celsius"})
    backend.responder = Script([Turn(tool_calls=[call], fault=Fault.truncated_tool_json())])
    events, final = await run_stream(make(), tools=[WEATHER_TOOL])
    raw = "".join(
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    assert json.dumps(call.input).startswith(raw)
    assert final.stop_reason == "tool_use" and final.content[0].input != call.input


@pytest.mark.parametrize("n", [40, 120, 260, 500, 900])
async def test_many_cut_points_never_complete(n: int, backend: OfflineBackend) -> None:
    transport = backend.async_transport()
    async with httpx2.AsyncClient(transport=transport, base_url="http://x") as http:
        with pytest.raises(httpx2.RemoteProtocolError):
            await http.post(
                "/v1/messages",
                headers={"x-api-key": "k", FAULT_HEADER: f"cut:after_bytes={n}"},
                json={"model": MODEL, "max_tokens": 100, "stream": True, "messages": [user("hello")]},
            )
