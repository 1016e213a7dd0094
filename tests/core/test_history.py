"""History: valid by construction, JSON round trips, and assistant blocks sent back as the SDK's params."""

from __future__ import annotations

import importlib
import json
import typing
from pathlib import Path
from typing import Any

import pytest

import claudekit as ck
from tests import sse
from tests.conftest import SSE_DIR, sdk_client, sse_transport

EXPECTED = json.loads((SSE_DIR / "EXPECTED.json").read_text())["files"]
GOOD = sorted(n for n, e in EXPECTED.items() if e["messages"]["get_final_message"] == "ok")


def param_keys(block_type: str) -> set[str] | None:
    """The keys the SDK's own TypedDict for this block's param accepts (None if the SDK has none)."""
    camel = "".join(p.capitalize() for p in block_type.split("_")) + "BlockParam"
    try:
        mod = importlib.import_module(f"anthropic.types.{block_type}_block_param")
    except ImportError:
        return None
    cls = getattr(mod, camel, None)
    return set(typing.get_type_hints(cls)) if cls is not None else None


@pytest.mark.parametrize("name", GOOD)
async def test_assistant_blocks_go_back_as_valid_params(name: str) -> None:
    chat = ck.Chat(client=sdk_client(sse_transport((SSE_DIR / name).read_bytes())), render=False, max_steps=1)
    await chat("hi")
    assistant = [m for m in chat.history if m["role"] == "assistant"]
    for block in (b for m in assistant for b in m["content"]):
        keys = param_keys(block["type"])
        if keys is not None:  # server-side blocks the SDK has params for must fit them exactly
            assert set(block) <= keys, (block["type"], set(block) - keys)
        assert not (block["type"] == "text" and not block["text"])  # the API rejects empty text blocks
    assert chat.history.problems() == []
    # Round trip through JSON gives the same conversation.
    again = ck.History.from_json(chat.history.to_json())
    assert again == chat.history


def test_same_role_turns_merge_and_tool_results_lead() -> None:
    h = ck.History()
    h.add_user([{"type": "text", "text": "a"}])
    h.add_user([{"type": "text", "text": "b"}])
    assert len(h) == 1 and [b["text"] for b in h[0]["content"]] == ["a", "b"]
    h.add_assistant(
        [
            {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
            {"type": "tool_use", "id": "t2", "name": "g", "input": {}},
        ]
    )
    h.add_user([{"type": "text", "text": "also this"}])
    h.add_tool_results(
        [
            {"type": "tool_result", "tool_use_id": "t1", "content": "1"},
            {"type": "tool_result", "tool_use_id": "t2", "content": "2"},
        ]
    )
    assert [b["type"] for b in h[2]["content"]] == ["tool_result", "tool_result", "text"]
    assert [b.get("tool_use_id") for b in h[2]["content"][:2]] == ["t1", "t2"]
    assert h.problems() == []


def test_problems_finds_what_the_api_rejects() -> None:
    h = ck.History()
    h.messages = [
        {"role": "assistant", "content": [{"type": "text", "text": "x"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "zz", "content": "r"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t9", "name": "f", "input": {}},
                {"type": "thinking", "thinking": "t", "signature": ""},
            ],
        },
        {"role": "user", "content": [{"type": "text", "text": "no result"}]},
    ]
    found = " | ".join(h.problems())
    assert "message 0" not in found  # starting with the assistant is accepted by the service
    assert "tool_result zz" in found
    assert "tool_use ['t9']" in found
    assert "no signature" in found


def test_a_conversation_may_start_with_the_assistant_and_keep_system_messages() -> None:
    # Real traffic the service answered with 200 (anthropic >= 2.15's MessageParam has SystemMessageParam).
    h = ck.History(
        [
            {"role": "assistant", "content": "How can I help?"},
            {"role": "user", "content": "Sum 2 and 2."},
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Please."},
        ]
    )
    assert [m["role"] for m in h] == ["assistant", "user", "system", "user"]
    assert h.problems() == []
    with pytest.raises(ck.ConfigError, match="unknown role"):
        ck.History([{"role": "developer", "content": "hi"}])


async def test_save_and_load_a_chat(tmp_path: Path) -> None:
    bodies = [sse.text_reply("One."), sse.text_reply("Two.")]
    chat = ck.Chat(client=sdk_client(sse_transport(bodies)), render=False, system="Be terse.")
    await chat("first")
    path = tmp_path / "chat.json"
    chat.save(path)
    other = ck.Chat(client=sdk_client(sse_transport(bodies[1:])), render=False)
    other.load(path)
    assert other.history == chat.history and other.system == "Be terse."
    reply = await other("second")
    assert reply.text == "Two." and [m["role"] for m in other.history] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"messages": "nope"}', "not a saved claudekit conversation"),
        (b'{"messages": [{"content": "hi"}]}', "corrupted"),
        (
            b'{"messages": [{"role": "user", "content": '
            b'[{"type": "tool_result", "tool_use_id": "x", "content": "r"}]}]}',
            "invalid",
        ),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
    ],
)
def test_loading_a_corrupted_file_is_a_clear_error(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ck.ConfigError, match=match) as info:
        ck.History.load(path)
    assert "\n" not in str(info.value)


async def test_unanswered_tool_call_is_answered_before_the_next_prompt() -> None:
    calls = [("toolu_9", "external", {"q": 1})]
    seen: list[Any] = []
    chat = ck.Chat(
        client=sdk_client(sse_transport([sse.tool_reply(calls), sse.text_reply("ok")], seen=seen)),
        render=False,
        tools=[{"name": "external", "input_schema": {"type": "object"}}],  # schema only: nobody runs it
    )
    r = await chat("call it")
    assert r.stop_reason == "tool_use" and r.tool_calls[0].input == {"q": 1}
    await chat("never mind")
    body = json.loads(seen[1].content)
    last = body["messages"][-1]["content"]
    assert (
        last[0]["type"] == "tool_result"
        and last[0]["tool_use_id"] == "toolu_9"
        and last[0]["is_error"] is True
    )
    assert last[1] == {"type": "text", "text": "never mind"}
    assert chat.history.problems() == []


@pytest.mark.parametrize("prompt", ["", "   ", []])
async def test_empty_prompt_is_a_clear_error(prompt: Any) -> None:
    chat = ck.Chat(client=sdk_client(sse_transport(sse.text_reply())), render=False)
    with pytest.raises(ck.ConfigError, match="prompt is empty"):
        await chat(prompt)
