"""Record from the loopback server, then replay with it stopped."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from offline_helpers import MODEL, WEATHER_TOOL, user

from claudekit.offline import Cassette, CassetteMiss, OfflineBackend, RecordingTransport

SECRET = "sk-ant-api03-THISISNOTAREALKEY_abcdefghijklmnop"


def _keyless(messages: list[Any]) -> str:
    """The messages as JSON with the key, whole or redacted in pieces, written as <key>."""
    text = json.dumps([m.model_dump() for m in messages]).replace(SECRET, "<key>")
    return re.sub(r"(?:sk-)?(?:\[redacted\])+", "<key>", text)


_open: list[anthropic.AsyncAnthropic] = []


def client_on(
    transport: httpx2.AsyncBaseTransport, base_url: str, *, api_key: str = SECRET, max_retries: int = 0
) -> anthropic.AsyncAnthropic:
    client = anthropic.AsyncAnthropic(
        api_key=api_key,
        base_url=base_url,
        max_retries=max_retries,
        http_client=httpx2.AsyncClient(transport=transport),
    )
    _open.append(client)
    return client


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    """Each client's pooled loopback connection is closed by the test that opened it (no unclosed sockets)."""
    yield
    while _open:
        await _open.pop().close()


async def session(client: anthropic.AsyncAnthropic) -> list[Any]:
    out = []
    async with client.messages.stream(
        model=MODEL,
        max_tokens=2048,
        tools=[WEATHER_TOOL],
        messages=[user(f"weather in Paris? my key is {SECRET}")],
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        out.append(await stream.get_final_message())
    out.append(await client.messages.create(model=MODEL, max_tokens=100, messages=[user("plain question")]))
    return out


async def test_record_then_replay_with_server_stopped(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    backend = OfflineBackend()
    with backend.serve() as server:
        base_url = server.base_url
        recorder = RecordingTransport(path, mode="once", inner=httpx2.AsyncHTTPTransport())
        recorded = await session(client_on(recorder, base_url))
    text = path.read_text()
    assert len(text.splitlines()) == 2
    assert SECRET not in text and "sk-ant-" not in text.replace("sk-ant-[REDACTED]", "")
    for line in text.splitlines():
        entry = json.loads(line)
        assert "x-api-key" not in entry["request"]["headers"]
        assert "authorization" not in entry["request"]["headers"]
    first = json.loads(text.splitlines()[0])["response"]
    assert first["status"] == 200 and first["body"].startswith("event: message_start")

    # The server is gone: replay only.
    replayer = RecordingTransport(path, mode="none")
    replayed = await session(client_on(replayer, base_url))
    # The answer echoes the key, split over stream events: the file holds no piece of it, so the replay
    # differs from the live answer there and only there.
    assert _keyless(replayed) == _keyless(recorded)
    assert not any(SECRET[i : i + 16] in text for i in range(len(SECRET) - 15))


async def test_miss_names_the_request_and_modes(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    backend = OfflineBackend()
    with backend.serve() as server:
        rec = RecordingTransport(path, mode="once", inner=httpx2.AsyncHTTPTransport())
        await client_on(rec, server.base_url).messages.create(
            model=MODEL, max_tokens=10, messages=[user("a")]
        )
        # "once" on an existing cassette replays and refuses new requests.
        once = RecordingTransport(path, mode="once", inner=httpx2.AsyncHTTPTransport())
        with pytest.raises(anthropic.APIConnectionError) as exc:
            await client_on(once, server.base_url).messages.create(
                model=MODEL, max_tokens=10, messages=[user("brand new question")]
            )
        cause = exc.value.__cause__
        assert isinstance(cause, CassetteMiss)
        assert "brand new question" in str(cause) and "/v1/messages" in str(cause)
        # "new_episodes" records what is missing and replays what matches.
        grow = RecordingTransport(path, mode="new_episodes", inner=httpx2.AsyncHTTPTransport())
        await client_on(grow, server.base_url).messages.create(
            model=MODEL, max_tokens=10, messages=[user("b")]
        )
        await client_on(grow, server.base_url).messages.create(
            model=MODEL, max_tokens=10, messages=[user("a")]
        )
        assert len(Cassette(path).entries) == 2
        before = len(backend.requests)
        # "all" re-records everything.
        again = RecordingTransport(path, mode="all", inner=httpx2.AsyncHTTPTransport())
        await client_on(again, server.base_url).messages.create(
            model=MODEL, max_tokens=10, messages=[user("a")]
        )
        assert len(backend.requests) == before + 1 and len(Cassette(path).entries) == 1


async def test_replays_recorded_retry_sequence(tmp_path: Path) -> None:
    from claudekit.offline import Fault, Script, Turn

    path = tmp_path / "retry.jsonl"
    backend = OfflineBackend(responder=Script([Fault.status(429, retry_after=0), Turn(text="ok now")]))
    with backend.serve() as server:
        rec = RecordingTransport(path, inner=httpx2.AsyncHTTPTransport())
        client = client_on(rec, server.base_url, api_key="k", max_retries=1)
        msg = await client.messages.create(model=MODEL, max_tokens=10, messages=[user("q")])
    statuses = [e["response"]["status"] for e in Cassette(path).entries]
    assert statuses == [429, 200]
    nowhere = "http://127.0.0.1:9"  # replay only: nothing listens there
    replay = client_on(RecordingTransport(path, mode="none"), nowhere, api_key="k", max_retries=1)
    again = await replay.messages.create(model=MODEL, max_tokens=10, messages=[user("q")])
    assert again.content[0].text == msg.content[0].text == "ok now"
