"""The tool loop against the offline backend, through the real SDK: every request it sends is checked by
the backend's validator (tool_result pairing and order, thinking signatures, tool_choice), and the turn
after each scenario must be accepted too. The scripted-API tests in test_loop.py check the loop's
decisions; these check that the conversations it builds are ones the API accepts.
"""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

import claudekit as ck
from claudekit.offline import DefaultResponder, OfflineBackend, Script, ToolCall, Turn

ran: list[tuple[str, Any]] = []


@ck.tool
def lookup(key: str) -> str:
    """Look a key up."""
    ran.append(("lookup", key))
    return f"value of {key}"


@ck.tool(approve=True)
def delete_file(path: str) -> str:
    """Delete a file."""
    ran.append(("delete_file", path))
    return f"deleted {path}"


@ck.tool
def broken(x: int) -> str:
    """Always fails."""
    ran.append(("broken", x))
    raise RuntimeError("the gauge is broken")


def deny_deletes(call: ck.PendingCall) -> ck.Decision:
    return ck.deny("keep my files") if call.name == "delete_file" else ck.approve()


def chat_on(turns: list[Turn], **kw: Any) -> tuple[ck.Chat, OfflineBackend]:
    # After the scripted turns, the default responder answers the follow-up turn.
    backend = OfflineBackend(responder=Script(turns, then=DefaultResponder()), signing_key=b"loop")
    chat = ck.Chat(offline=backend, tools=[lookup, delete_file, broken], render=False, **kw)
    return chat, backend


SCENARIOS: dict[str, tuple[list[Turn], dict[str, Any]]] = {
    "parallel, one denied, with thinking": (
        [
            Turn(
                text="Two things.",
                tool_calls=[ToolCall("lookup", {"key": "a"}), ToolCall("delete_file", {"path": "x"})],
            ),
            Turn(text="Done."),
        ],
        {"thinking": 2048, "max_tokens": 8192, "approval": deny_deletes},
    ),
    "tool raises": ([Turn(tool_calls=[ToolCall("broken", {"x": 1})]), Turn(text="It failed.")], {}),
    "invalid arguments": (
        [Turn(tool_calls=[ToolCall("broken", {"x": "not a number"})]), Turn(text="Bad args.")],
        {"thinking": "adaptive"},
    ),
    "max_steps reached mid-loop": (
        [Turn(tool_calls=[ToolCall("lookup", {"key": str(i)})]) for i in range(3)],
        {"max_steps": 2, "thinking": 2048, "max_tokens": 8192},
    ),
    "pause_turn continues": (
        [Turn(text="Working", stop_reason="pause_turn"), Turn(text="Finished.")],
        {},
    ),
    "all denied by policy": (
        [Turn(tool_calls=[ToolCall("delete_file", {"path": "a"})]), Turn(text="Not deleted.")],
        {"approval": "deny"},
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_the_loop_builds_conversations_the_backend_accepts(name: str) -> None:
    turns, kw = SCENARIOS[name]
    ran.clear()
    chat, backend = chat_on(turns, **kw)
    reply = await chat("go")
    # Every request of the loop was accepted (a 400 would have raised), one per step.
    assert len(backend.requests) == len(reply.steps) >= 1
    assert chat.history.problems() == []
    # Every scenario's policy denies delete_file: it is reported denied and never ran.
    assert all(c.decision == "denied" for c in reply.tool_calls if c.name == "delete_file")
    assert not any(name == "delete_file" for name, _ in ran)
    if name.startswith("parallel"):
        assert [c.name for c in reply.tool_calls] == ["lookup", "delete_file"] and ran == [("lookup", "a")]
        assert reply.thinking  # signed thinking went back with the tool results and was accepted
    if name == "max_steps reached mid-loop":
        assert reply.max_steps_reached and len(reply.steps) == 2
    if name == "tool raises":
        assert reply.tool_calls[0].is_error and "the gauge is broken" in str(reply.tool_calls[0].result)
    if name == "invalid arguments":
        assert reply.tool_calls[0].decision == "invalid" and reply.tool_calls[0].is_error and ran == []
        assert "valid integer" in str(reply.tool_calls[0].result)
    if name == "pause_turn continues":
        assert reply.text.endswith("Finished.") and reply.stop_reason == "end_turn"
    # The next turn on the same chat is a valid request as well.
    follow = await chat("and then?")
    assert follow.error is None and follow.text
    assert chat.history.problems() == []
    assert len(backend.requests) == len(reply.steps) + len(follow.steps)


class _Answer(pydantic.BaseModel):
    key: str
    found: bool


async def test_output_format_parses_the_final_answer_after_a_tool_loop() -> None:
    # The tool step says something ("I'll use lookup…"); only the final message is the JSON answer.
    chat = ck.Chat(offline=OfflineBackend(), tools=[lookup], output_format=_Answer, render=False)
    reply = await chat("Use lookup for key alpha")
    assert len(reply.steps) == 2 and reply.tool_calls[0].name == "lookup"
    assert reply.steps[0].message is not None and reply.steps[0].message.content[0].type == "text"
    assert isinstance(reply.parsed, _Answer) and reply.error is None


async def test_a_tool_name_the_chat_does_not_have_gets_an_error_result_and_the_loop_goes_on() -> None:
    ran.clear()
    turns = [
        Turn(text="", tool_calls=[ToolCall("rm_rf", {"path": "/"}), ToolCall("lookup", {"key": "a"})]),
        Turn(text="That tool does not exist; the value of a is known."),
    ]
    chat, backend = chat_on(turns)
    reply = await chat("look a up")
    assert reply.text.endswith("the value of a is known.")
    assert ran == [("lookup", "a")]
    results = {c.name: c for c in reply.tool_calls}
    assert results["rm_rf"].is_error and 'no tool named "rm_rf"' in (results["rm_rf"].result or "")
    assert not results["lookup"].is_error
    sent = backend.requests[-1]["messages"][-1]["content"]
    assert [b.get("is_error", False) for b in sent if b["type"] == "tool_result"] == [True, False]
    assert (await chat("and now?")).text  # the conversation stays valid for the next turn
