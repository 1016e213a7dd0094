"""Message threads on the backend's clock, and what a long-lived server keeps (issue 24 items 2 and 6)."""

from __future__ import annotations

import http.client
import json
from typing import Any

import anthropic
import pytest
from offline_helpers import MODEL, WEATHER_TOOL, user

from claudekit.offline import OfflineBackend
from claudekit.offline._threads import THREAD_TTL, ThreadStore

THREADS = "message-threads-2026-08-12"


def _client(server_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="offline", base_url=server_url, max_retries=0)


def _create(c: anthropic.Anthropic, text: str, **kw: Any) -> Any:
    return c.beta.messages.create(model=MODEL, max_tokens=200, messages=[user(text)], betas=[THREADS], **kw)


def test_a_thread_expires_five_minutes_after_its_last_request_and_the_sdk_resends() -> None:
    backend = OfflineBackend()
    with backend.serve() as server:
        thread = _client(server.base_url).beta.messages.thread(
            model=MODEL, max_tokens=200, system="Be brief."
        )
        thread.send(user("first"))
        backend.advance(THREAD_TTL - 10)
        thread.send(user("second"))  # still there: each stored reply restarts the 5 minutes
        assert backend.requests[-1]["thread"]["type"] == "continue"
        backend.advance(THREAD_TTL - 10)
        third = thread.send(user("third"))
        assert backend.requests[-1]["thread"]["type"] == "continue"
        backend.advance(THREAD_TTL + 1)
        fourth = thread.send(user("fourth"))
    # The continue got thread_not_found, and the SDK replayed the whole history under a new thread.
    last = backend.requests[-1]
    assert last["thread"] == {"type": "create"} and last["system"] == "Be brief."
    assert [m["content"] for m in last["messages"] if m["role"] == "user"] == [
        "first",
        "second",
        "third",
        "fourth",
    ]
    assert fourth.usage.input_tokens > third.usage.input_tokens


def test_a_continue_in_flight_or_with_another_model_is_refused() -> None:
    backend = OfflineBackend()
    with backend.serve() as server:
        c = _client(server.base_url)
        first = _create(c, "hi", thread={"type": "create"})
        cont = {"type": "continue", "previous_message_id": first.id}
        with pytest.raises(anthropic.BadRequestError) as mismatch:
            c.beta.messages.create(
                model="claude-opus-4-6", max_tokens=50, messages=[user("x")], betas=[THREADS], thread=cont
            )
        assert mismatch.value.body["error"]["details"]["error_code"] == "thread_fingerprint_mismatch"
        # A refused continue leaves the reply continuable.
        assert _create(c, "again", thread=cont).type == "message"
    store = ThreadStore(lambda: 0.0)
    store.store("msg_1", {"model": MODEL, "messages": [user("a")]}, [{"type": "text", "text": "b"}])
    body = {
        "model": MODEL,
        "messages": [user("c")],
        "thread": {"type": "continue", "previous_message_id": "msg_1"},
    }
    full, pid = store.expand(body, frozenset({THREADS}))
    assert pid == "msg_1" and [m["role"] for m in full["messages"]] == ["user", "assistant", "user"]
    with pytest.raises(Exception, match="still continuing") as in_flight:
        store.expand(body, frozenset({THREADS}))
    assert in_flight.value.details == {"error_code": "thread_continue_in_flight"}  # type: ignore[attr-defined]


def test_stored_threads_and_kept_requests_are_bounded() -> None:
    store = ThreadStore(lambda: 0.0, limit=3)
    for i in range(10):
        store.store(f"msg_{i}", {"model": MODEL, "messages": [user("a")]}, [])
    assert len(store) == 3
    backend = OfflineBackend()
    body = json.dumps({"model": MODEL, "max_tokens": 1, "messages": [user("hi")]}).encode()
    for _ in range(600):
        assert backend.handle("POST", "/v1/messages", {"x-api-key": "k"}, body).status == 200
    assert len(backend.requests) == 512 and backend.requests[-1]["messages"] == [user("hi")]
    backend.requests.clear()
    backend.requests.append({"big": 1}, 40 * 2**20)
    backend.requests.append({"big": 2}, 40 * 2**20)
    assert backend.requests == [{"big": 2}]  # a byte budget as well as a count


def test_closing_the_server_closes_its_keep_alive_connections() -> None:
    server = OfflineBackend().serve()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    conn.request("GET", "/v1/models", headers={"x-api-key": "k"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read()
    assert conn.sock is not None
    server.close()  # the worker was waiting for this connection's next request
    assert conn.sock.recv(1) == b""  # closed now, not after the idle timeout (nor at interpreter exit)
    conn.close()


CHANGES = "mid-conversation-tool-changes-2026-07-01"
INLINE = "inline-tools-2026-09-15"
GAUGE = {"name": "read_gauge", "description": "Read the gauge", "input_schema": {"type": "object"}}


def _change(kind: str, tool: dict[str, Any]) -> dict[str, Any]:
    return {"role": "system", "content": [{"type": kind, "tool": tool}]}


def _ref(name: str) -> dict[str, Any]:
    return {"type": "tool_reference", "name": name}


def test_tool_changes_sent_in_thread_continues_change_what_the_model_may_call() -> None:
    # A continue may not send `tools`: tool_removal / tool_addition system blocks change them, and the thread
    # carries every earlier change (the SDK's tool-change block types; _tool_changes.py).
    backend = OfflineBackend()
    with backend.serve() as server:
        c = _client(server.base_url)

        def turn(previous: Any, *messages: dict[str, Any]) -> Any:
            extra: dict[str, Any] = {"thread": {"type": "create"}, "tools": [WEATHER_TOOL]}
            if previous:
                extra = {"thread": {"type": "continue", "previous_message_id": previous.id}}
            extra["betas"] = [THREADS, CHANGES, INLINE]
            return c.beta.messages.create(model=MODEL, max_tokens=200, messages=list(messages), **extra)

        def called(reply: Any) -> list[str]:
            return [b.name for b in reply.content if b.type == "tool_use"]

        ask = user("Use get_weather for Paris")
        assert called(turn(turn(None, user("hello")), ask)) == ["get_weather"]  # offered from the start
        removed = turn(turn(None, user("hello")), _change("tool_removal", _ref("get_weather")), ask)
        assert called(removed) == [] and removed.stop_reason == "end_turn"
        back = turn(removed, _change("tool_addition", _ref("get_weather")), ask)  # by name, once removed
        assert called(back) == ["get_weather"]
        gauge = user("Use read_gauge now")
        plain = turn(turn(None, user("hello")), gauge)
        assert called(plain) == []  # not offered yet
        added = turn(plain, _change("tool_addition", {"type": "tool_definition", "definition": GAUGE}), gauge)
        assert called(added) == ["read_gauge"]
