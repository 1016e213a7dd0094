"""PrefixTracker: client-side reasons for expected cache misses."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from claudekit.usage import PrefixTracker, canonical_hash

from ._support import T0

TOOLS = [
    {"name": "search", "description": "Search", "input_schema": {"type": "object"}},
    {"name": "fetch", "description": "Fetch", "input_schema": {"type": "object"}},
]


def body(n_msgs: int = 1, **over: Any) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = []
    for i in range(n_msgs):
        role = "user" if i % 2 == 0 else "assistant"
        msgs.append({"role": role, "content": [{"type": "text", "text": f"{role} message {i}"}]})
    b: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "tools": copy.deepcopy(TOOLS),
        "messages": msgs,
    }
    b.update(over)
    return b


def tracker_after(first: dict[str, Any]) -> PrefixTracker:
    t = PrefixTracker()
    assert t.observe(first, T0) is None  # nothing to compare the first request with
    return t


def test_growing_conversation_and_retries_expect_no_miss() -> None:
    t = tracker_after(body(1))
    assert t.observe(body(1), T0 + timedelta(seconds=5)) is None  # retry of the same request
    assert t.observe(body(3), T0 + timedelta(seconds=20)) is None  # appended turn
    assert t.observe(body(5), T0 + timedelta(seconds=40)) is None
    assert t.calls == 4


def test_cache_control_markers_are_ignored() -> None:
    t = tracker_after(body(3))
    moved = body(3)
    moved["system"][0].pop("cache_control")
    moved["messages"][-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}
    moved["cache_control"] = {"type": "ephemeral"}
    assert t.observe(moved, T0 + timedelta(seconds=1)) is None
    assert canonical_hash(body(3)["system"]) == canonical_hash(moved["system"])


def test_string_and_block_content_are_equivalent() -> None:
    t = tracker_after(body(0, system="You are terse.", messages=[{"role": "user", "content": "hi"}]))
    same = body(
        0,
        system=[{"type": "text", "text": "You are terse."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    )
    assert t.observe(same, T0 + timedelta(seconds=1)) is None


def test_system_prompt_changed_at_turn() -> None:
    t = tracker_after(body(1))
    changed = body(3, system="You are verbose.")
    assert t.observe(changed, T0 + timedelta(seconds=10), turn=7) == "system prompt changed at turn 7"


def test_tools_added_removed_reordered_edited() -> None:
    t = tracker_after(body(1))
    added = body(1, tools=[*TOOLS, {"name": "calc", "input_schema": {"type": "object"}}])
    assert t.observe(added, T0) == "tools changed (added: calc)"
    assert t.observe(body(1), T0) == "tools changed (removed: calc)"
    assert t.observe(body(1, tools=list(reversed(TOOLS))), T0) == "tools changed (reordered)"
    edited = body(1, tools=list(reversed(TOOLS)))
    edited["tools"][0]["description"] = "Fetch a URL"
    assert t.observe(edited, T0) == "tools changed (definitions edited)"


def test_model_changed() -> None:
    t = tracker_after(body(1))
    reason = t.observe(body(3, model="claude-opus-4-8"), T0)
    assert reason == "model changed (claude-sonnet-4-6 → claude-opus-4-8)"


def test_earlier_message_edited_and_truncated() -> None:
    t = tracker_after(body(5))
    edited = body(7)
    edited["messages"][1]["content"][0]["text"] = "an edited reply"
    assert t.observe(edited, T0) == "an earlier message was edited (message 2 of 7)"
    assert t.observe(body(3), T0) is not None
    t2 = tracker_after(body(5))
    assert t2.observe(body(3), T0) == "earlier messages were removed (5 → 3)"


def test_several_changes_joined_in_prefix_order() -> None:
    t = tracker_after(body(1))
    reason = t.observe(body(3, model="claude-opus-4-8", system="New"), T0, turn=2)
    assert reason is not None
    assert reason.index("model changed") < reason.index("system prompt changed")
    assert reason.endswith("at turn 2")


def test_thinking_and_tool_choice_changes() -> None:
    t = tracker_after(body(1))
    assert t.observe(body(3, thinking={"type": "adaptive"}), T0) == "thinking changed"
    assert (
        t.observe(body(5, thinking={"type": "adaptive"}, tool_choice={"type": "any"}), T0)
        == "tool_choice changed"
    )


def test_ttl_expiry_5m_and_1h() -> None:
    t = tracker_after(body(1))
    assert t.observe(body(3), T0 + timedelta(minutes=4)) is None
    reason = t.observe(body(5), T0 + timedelta(minutes=10))
    assert reason == "TTL likely expired (idle 6 min > 5m TTL)"
    hour = body(1, cache_control={"type": "ephemeral", "ttl": "1h"})
    t1 = tracker_after(hour)
    assert (
        t1.observe(body(3, cache_control={"type": "ephemeral", "ttl": "1h"}), T0 + timedelta(minutes=30))
        is None
    )
    late = t1.observe(body(5), T0 + timedelta(minutes=30 + 61))
    assert late == "TTL likely expired (idle 61 min > 1h TTL)"


def test_no_ttl_reason_when_request_had_no_cache_breakpoint() -> None:
    plain = body(1, system="no cache markers here")
    t = tracker_after(plain)
    assert t.observe(body(3, system="no cache markers here"), T0 + timedelta(hours=3)) is None


def test_naive_datetimes_are_utc_and_reset() -> None:
    t = PrefixTracker()
    t.observe(body(1), T0.replace(tzinfo=None))
    assert t.observe(body(3), T0 + timedelta(minutes=7)) == "TTL likely expired (idle 7 min > 5m TTL)"
    t.reset()
    assert t.last is None and t.observe(body(5, model="x"), T0) is None
