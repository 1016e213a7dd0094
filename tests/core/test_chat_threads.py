"""Chat on message threads (issue 24, "claudekit itself: threads"): a turn sends only what is new, the
service's thread errors resend in full once, and history, cache accounting and usage stay as they were."""

from __future__ import annotations

from typing import Any

import claudekit as ck
from claudekit.offline import OfflineBackend

SYSTEM = "You are a terse assistant. " * 40


def lookup(term: str) -> str:
    """Look a term up."""
    return f"{term}: found"


def _without_ids(value: Any) -> Any:
    """Tool-use ids are derived from each request's bytes, which threads change."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("id", "tool_use_id")}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


async def _session(threads: bool) -> tuple[OfflineBackend, ck.Chat, list[Any]]:
    backend = OfflineBackend(today="2026-12-01")
    chat = ck.Chat(offline=backend, render=False, system=SYSTEM, tools=[lookup], threads=threads)
    replies = [await chat(p) for p in ('Use lookup for term "tides"', "And then?", "Thanks, one more")]
    return backend, chat, replies


async def test_a_threaded_turn_sends_only_what_is_new_and_nothing_else_changes() -> None:
    threaded, chat, replies = await _session(True)
    full, plain_chat, plain_replies = await _session(False)
    bodies = threaded.requests
    assert bodies[0]["thread"] == {"type": "create"} and "system" in bodies[0] and "tools" in bodies[0]
    for body in bodies[1:]:
        assert body["thread"]["type"] == "continue" and "system" not in body and "tools" not in body
    # The tool loop's second request carries only the tool result; the next turn only the new prompt.
    assert [b["type"] for b in bodies[1]["messages"][0]["content"]] == ["tool_result"]
    assert bodies[2]["messages"][-1]["content"][-1]["text"] == "And then?" and len(bodies[2]["messages"]) == 1
    assert all("thread" not in b for b in full.requests)
    # History, answers and the service's accounting (input, cache writes and reads) are the same.
    assert _without_ids(chat.history.to_params()) == _without_ids(plain_chat.history.to_params())
    assert [r.text for r in replies] == [r.text for r in plain_replies]
    usage = [(r.usage.input_tokens, r.usage.cache_read_input_tokens) for r in replies]
    assert usage == [(r.usage.input_tokens, r.usage.cache_read_input_tokens) for r in plain_replies]
    assert sum(len(str(b)) for b in bodies) < sum(len(str(b)) for b in full.requests) / 2


async def test_a_lost_thread_is_resent_in_full_once() -> None:
    backend = OfflineBackend(today="2026-12-01")
    chat = ck.Chat(offline=backend, render=False, system=SYSTEM, threads=True)
    await chat("first")
    backend.threads.forget()  # the server lost it mid-conversation
    second = await chat("second")
    assert second.text and backend.http_log[-2:] == [("POST", "/v1/messages")] * 2  # a 404, then the resend
    last = backend.requests[-1]
    assert last["thread"] == {"type": "create"} and last["system"]
    assert [m["role"] for m in last["messages"]] == ["user", "assistant", "user"]
    backend.advance(301)  # expired on the backend's clock: the same recovery
    assert (await chat("third")).text and backend.requests[-1]["thread"] == {"type": "create"}
    await chat("fourth")
    assert backend.requests[-1]["thread"]["type"] == "continue"
    assert len(chat.history) == 8


async def test_threads_are_off_offline_by_default() -> None:
    backend = OfflineBackend(today="2026-12-01")
    chat = ck.Chat(offline=backend, render=False)
    await chat("one")
    await chat("two")
    assert all("thread" not in b for b in backend.requests)


def test_threads_are_on_by_default_only_for_the_service_itself() -> None:
    key = "sk-ant-api03-THREADS-0123456789abcdefghijklmnopqrstuvwxyz"
    assert ck.Chat(api_key=key, render=False)._thread_cursor() is not None
    assert ck.Chat(api_key=key, render=False, threads=False)._thread_cursor() is None
    gateway = ck.Chat(api_key=key, base_url="http://127.0.0.1:4000", render=False)
    assert gateway._thread_cursor() is None
    assert ck.Chat(api_key=key, base_url="http://127.0.0.1:4000", threads=True, render=False)._thread_cursor()


async def test_after_a_refusal_taken_back_the_next_turn_starts_a_new_thread() -> None:
    from claudekit.offline import Script, Turn

    backend = OfflineBackend(
        today="2026-12-01",
        responder=Script([Turn(text="Sure."), Turn(text="No.", stop_reason="refusal"), Turn(text="Fine.")]),
    )
    chat = ck.Chat(offline=backend, render=False, threads=True)
    await chat("one")
    assert (await chat("two")).refused and len(chat.history) == 2
    assert (await chat("three")).text == "Fine."
    # The service may hold the refused turn: the next turn goes out in full under a new thread.
    last = backend.requests[-1]
    assert last["thread"] == {"type": "create"}
    assert [m["role"] for m in last["messages"]] == ["user", "assistant", "user"]
