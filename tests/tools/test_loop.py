"""The tool loop through the real SDK: results in call order, concurrency, errors, limits, approval."""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from typing import Any

import pytest

import claudekit
from claudekit._base._events import ApprovalRequest, ToolResult
from claudekit._tooling import _approval
from claudekit._tooling._approval import (
    PendingCall,
    ScriptedApproval,
    WidgetApproval,
    approve,
    deny,
    set_default_approval,
)
from claudekit._tooling._tools import tool

from .helpers import DENIED_TOOL_RUNS, ScriptedAPI, reply, text, tool_use

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@tool(approve=True)
def delete_everything(path: str) -> str:
    """Delete a directory tree. Every test denies it: its body must never run."""
    DENIED_TOOL_RUNS["count"] += 1
    return f"deleted {path}"


calls: list[tuple[str, Any]] = []


@tool(approve=True)
def write_file(path: str, text: str = "") -> str:
    """Write a file."""
    calls.append(("write_file", (path, text)))
    return f"wrote {len(text)} characters to {path}"


@tool
def lookup(key: str) -> dict[str, Any]:
    """Look up a key (read-only)."""
    calls.append(("lookup", key))
    return {"key": key, "value": key.upper()}


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def chat_for(api: ScriptedAPI, tools: list[Any], **kw: Any) -> claudekit.Chat:
    return claudekit.Chat(client=api.client(), tools=tools, render=False, **kw)


async def test_read_only_tool_runs_and_result_goes_back() -> None:
    api = ScriptedAPI([reply(text("Looking."), tool_use("lookup", {"key": "a"}, id="t1")), reply(text("A."))])
    chat = chat_for(api, [lookup])
    r = await chat("what is a?")
    assert r.text == "Looking.\n\nA."
    assert len(api.bodies) == 2
    assert api.tool_results() == [
        {"type": "tool_result", "tool_use_id": "t1", "content": '{"key": "a", "value": "A"}'}
    ]
    assert r.tool_calls[0].decision == "auto" and not r.tool_calls[0].is_error
    assert [t["name"] for t in api.bodies[0]["tools"]] == ["lookup"]


async def test_parallel_calls_run_concurrently_and_answer_in_call_order() -> None:
    started: list[str] = []
    barrier = threading.Barrier(2, timeout=5)

    @tool
    def slow_sync(n: int) -> str:
        started.append(f"sync{n}")
        barrier.wait()  # only passes when both sync tools run at the same time (threads)
        time.sleep(0.2 if n == 1 else 0)
        return f"sync {n}"

    @tool
    async def slow_async(n: int) -> str:
        await asyncio.sleep(0.3 - 0.1 * n)
        return f"async {n}"

    api = ScriptedAPI(
        [
            reply(
                tool_use("slow_sync", {"n": 1}, id="a"),
                tool_use("slow_async", {"n": 1}, id="b"),
                tool_use("slow_sync", {"n": 2}, id="c"),
                tool_use("slow_async", {"n": 2}, id="d"),
            ),
            reply(text("done")),
        ]
    )
    chat = chat_for(api, [slow_sync, slow_async])
    seen: list[str] = []
    t0 = time.perf_counter()
    async for ev in chat.stream("go"):
        if isinstance(ev, ToolResult):
            seen.append(ev.id)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.6, elapsed  # sequential would be ≥ 0.2 + 0.2 + 0.1 + barrier
    assert seen == ["a", "b", "c", "d"]
    results = api.tool_results()
    assert [b["tool_use_id"] for b in results] == ["a", "b", "c", "d"]
    assert [b["content"] for b in results] == ["sync 1", "async 1", "sync 2", "async 2"]


async def test_tool_error_becomes_is_error_with_message_and_logged_traceback(caplog: Any) -> None:
    @tool
    def broken(x: int) -> str:
        raise ValueError(f"bad value {x}")

    api = ScriptedAPI([reply(tool_use("broken", {"x": 7}, id="e1")), reply(text("sorry"))])
    with caplog.at_level(logging.ERROR, logger="claudekit.tools"):
        r = await chat_for(api, [broken])("try")
    block = api.tool_results()[0]
    assert block == {
        "type": "tool_result",
        "tool_use_id": "e1",
        "content": "Error: ValueError: bad value 7",
        "is_error": True,
    }
    assert "Traceback" not in block["content"]
    assert any(rec.exc_info and "broken" in rec.getMessage() for rec in caplog.records)
    assert r.tool_calls[0].is_error


async def test_tool_error_content_from_sdk_tool_error() -> None:
    @tool
    def picky() -> str:
        raise claudekit._tooling._tools.ToolError("try again with a smaller range")

    api = ScriptedAPI([reply(tool_use("picky", {}, id="p")), reply(text("ok"))])
    await chat_for(api, [picky])("x")
    assert api.tool_results()[0] == {
        "type": "tool_result",
        "tool_use_id": "p",
        "content": "try again with a smaller range",
        "is_error": True,
    }


async def test_invalid_and_malformed_arguments_never_run_the_tool() -> None:
    api = ScriptedAPI(
        [
            reply(
                tool_use("lookup", {"key": 5, "zzz": 1}, id="v1"),
                tool_use("lookup", id="v2", raw='{"key": "unterminated'),
                tool_use("lookup", {"key": "ok"}, id="v3"),
            ),
            reply(text("fine")),
        ]
    )
    await chat_for(api, [lookup])("x")
    r1, r2, r3 = api.tool_results()
    assert r1["is_error"] and r1["content"].startswith("Invalid arguments for lookup:")
    assert "- key: Input should be a valid string" in r1["content"] and "- zzz: Unexpected" in r1["content"]
    assert r2["is_error"] and "not run" in r2["content"]
    assert "is_error" not in r3
    assert calls == [("lookup", "ok")]


async def test_max_steps_is_reported(caplog: Any) -> None:
    api = ScriptedAPI(lambda body: reply(tool_use("lookup", {"key": "again"})))
    with caplog.at_level(logging.WARNING, logger="claudekit.tools"):
        r = await chat_for(api, [lookup], max_steps=3)("loop forever")
    assert r.max_steps_reached
    assert any("max_steps=3" in rec.getMessage() for rec in caplog.records)
    assert len(api.bodies) == 3 and len(calls) == 3


async def test_pause_turn_continues() -> None:
    api = ScriptedAPI([reply(text("thinking…"), stop="pause_turn"), reply(text("answer"))])
    r = await chat_for(api, [lookup])("q")
    assert len(api.bodies) == 2 and r.stop_reason == "end_turn" and not r.max_steps_reached


async def test_truncation_and_images() -> None:
    @tool(max_output=100)
    def big() -> str:
        return "x" * 1000

    @tool
    def shot() -> bytes:
        return PNG

    api = ScriptedAPI([reply(tool_use("big", {}, id="b"), tool_use("shot", {}, id="s")), reply(text("ok"))])
    await chat_for(api, [big, shot])("x")
    b, s = api.tool_results()
    assert b["content"].startswith("x" * 100) and "first 100 of 1,000 characters" in b["content"]
    assert s["content"][0]["type"] == "image" and s["content"][0]["source"]["media_type"] == "image/png"


async def test_toolset_default_output_limit() -> None:
    @tool
    def big() -> str:
        return "y" * 5000

    api = ScriptedAPI([reply(tool_use("big", {}, id="b")), reply(text("ok"))])
    chat = chat_for(api, [big])
    chat.toolset.max_output = 1000
    await chat("x")
    assert "first 1,000 of 5,000" in api.tool_results()[0]["content"]


# -- approval ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy", ["deny", ScriptedApproval([deny("not today")]), lambda p: deny("not today")]
)
async def test_denied_calls_never_run(policy: Any) -> None:
    api = ScriptedAPI([reply(tool_use("delete_everything", {"path": "/"}, id="d1")), reply(text("ok"))])
    r = await chat_for(api, [delete_everything], approval=policy)("clean up")
    block = api.tool_results()[0]
    assert block["is_error"] is True and block["tool_use_id"] == "d1"
    assert "denied" in block["content"] and "not run" in block["content"]
    if not isinstance(policy, str):
        assert "Reason: not today" in block["content"]
    assert r.tool_calls[0].decision == "denied"


async def test_user_denial_wording() -> None:
    def as_user(p: PendingCall) -> claudekit._tooling._approval.Decision:
        return deny("too risky", by="user")

    api = ScriptedAPI([reply(tool_use("delete_everything", {"path": "/"})), reply(text("ok"))])
    await chat_for(api, [delete_everything], approval=as_user)("x")
    assert (
        api.tool_results()[0]["content"]
        == "The user denied this tool call; it was not run. Reason: too risky"
    )


async def test_auto_policy_and_callable_with_edited_arguments() -> None:
    api = ScriptedAPI([reply(tool_use("write_file", {"path": "a.txt", "text": "hi"})), reply(text("ok"))])
    await chat_for(api, [write_file], approval="auto")("x")
    assert calls == [("write_file", ("a.txt", "hi"))]

    calls.clear()

    async def edit(p: PendingCall) -> claudekit._tooling._approval.Decision:
        await asyncio.sleep(0)
        return approve(arguments={**p.arguments, "path": "safe.txt"})

    api = ScriptedAPI(
        [reply(tool_use("write_file", {"path": "/etc/passwd", "text": "hi"})), reply(text("ok"))]
    )
    await chat_for(api, [write_file], approval=edit)("x")
    assert calls == [("write_file", ("safe.txt", "hi"))]
    content = api.tool_results()[0]["content"]
    assert "the user edited the arguments" in content and '"safe.txt"' in content


async def test_invalid_edit_is_not_run() -> None:
    api = ScriptedAPI([reply(tool_use("write_file", {"path": "a"})), reply(text("ok"))])
    await chat_for(api, [write_file], approval=lambda p: approve(arguments={"path": 3}))("x")
    block = api.tool_results()[0]
    assert block["is_error"] and "edited arguments are invalid" in block["content"] and calls == []


async def test_failing_policy_denies(caplog: Any) -> None:
    def broken(p: PendingCall) -> bool:
        raise RuntimeError("policy bug")

    api = ScriptedAPI([reply(tool_use("delete_everything", {"path": "/"})), reply(text("ok"))])
    with caplog.at_level(logging.ERROR, logger="claudekit.tools"):
        await chat_for(api, [delete_everything], approval=broken)("x")
    assert "policy failed" in api.tool_results()[0]["content"]


async def test_scripted_queue_always_allow_and_exhaustion() -> None:
    script = ScriptedApproval([True, approve(always=True)])
    api = ScriptedAPI(
        [
            reply(tool_use("write_file", {"path": "1"}), tool_use("write_file", {"path": "2"})),
            reply(tool_use("write_file", {"path": "3"})),
            reply(tool_use("delete_everything", {"path": "/"})),
            reply(text("done")),
        ]
    )
    chat = chat_for(api, [write_file, delete_everything], approval=script)
    r = await chat("x")
    assert [c[1][0] for c in calls] == ["1", "2", "3"]
    assert [p.name for p in script.asked] == ["write_file", "write_file", "delete_everything"]
    assert chat.toolset.always_allowed == {"write_file"}
    assert [c.decision for c in r.tool_calls] == ["approved", "approved", "auto", "denied"]
    assert "ran out of decisions" in api.tool_results()[0]["content"]


async def test_per_chat_require_approval() -> None:
    api = ScriptedAPI([reply(tool_use("lookup", {"key": "k"})), reply(text("ok"))])
    chat = chat_for(api, [lookup], approval="deny")
    chat.toolset.require_approval("lookup")
    await chat("x")
    assert calls == [] and api.tool_results()[0]["is_error"]


async def test_mixed_parallel_calls_keep_order() -> None:
    api = ScriptedAPI(
        [
            reply(
                tool_use("lookup", {"key": "a"}, id="1"),
                tool_use("delete_everything", {"path": "/"}, id="2"),
                tool_use("write_file", {"path": "w"}, id="3"),
            ),
            reply(text("ok")),
        ]
    )
    policy = ScriptedApproval([deny(), approve()])
    await chat_for(api, [lookup, delete_everything, write_file], approval=policy)("x")
    results = api.tool_results()
    assert [b["tool_use_id"] for b in results] == ["1", "2", "3"]
    assert [b.get("is_error", False) for b in results] == [False, True, False]


@pytest.mark.parametrize(("value", "ran"), [("auto", True), ("deny", False)])
async def test_environment_variable(monkeypatch: Any, caplog: Any, value: str, ran: bool) -> None:
    monkeypatch.setenv("CLAUDEKIT_APPROVAL", value)
    api = ScriptedAPI([reply(tool_use("write_file", {"path": "e"})), reply(text("ok"))])
    with caplog.at_level(logging.WARNING, logger="claudekit.tools"):
        await chat_for(api, [write_file])("x")
    assert bool(calls) is ran
    assert any(f"CLAUDEKIT_APPROVAL={value}" in rec.getMessage() for rec in caplog.records)


async def test_set_default_approval() -> None:
    set_default_approval("auto")
    api = ScriptedAPI([reply(tool_use("write_file", {"path": "s"})), reply(text("ok"))])
    await chat_for(api, [write_file])("x")
    assert calls == [("write_file", ("s", ""))]
    set_default_approval(None)
    assert isinstance(_approval.get_default_approval(), WidgetApproval)


async def test_widget_default_without_frontend_denies_and_says_so_once(caplog: Any) -> None:
    api = ScriptedAPI(
        [
            reply(tool_use("delete_everything", {"path": "/"}, id="w1")),
            reply(tool_use("delete_everything", {"path": "/"}, id="w2")),
            reply(text("ok")),
        ]
    )
    events: list[Any] = []
    with caplog.at_level(logging.WARNING, logger="claudekit.tools"):
        async for ev in chat_for(api, [delete_everything]).stream("x"):
            events.append(ev)
    requests = [ev for ev in events if isinstance(ev, ApprovalRequest)]
    assert len(requests) == 2 and requests[0].pending[0].name == "delete_everything"
    assert requests[0].pending[0].decision is not None and not requests[0].pending[0].decision.approved
    msgs = [rec.getMessage() for rec in caplog.records if "no widget frontend" in rec.getMessage()]
    how = '(to run them: Chat(approval="auto") or CLAUDEKIT_APPROVAL=auto)'
    assert msgs == [f"claudekit: no widget frontend: denying tool calls by the unattended default {how}"]
    assert "unattended default" in api.tool_results()[-1]["content"]


async def test_widget_fallback_follows_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("CLAUDEKIT_APPROVAL", "auto")
    api = ScriptedAPI([reply(tool_use("write_file", {"path": "f"})), reply(text("ok"))])
    await chat_for(api, [write_file], approval="widget")("x")
    assert calls == [("write_file", ("f", ""))]


async def test_consumer_claims_and_decides_later() -> None:
    api = ScriptedAPI(
        [
            reply(tool_use("write_file", {"path": "c"}), tool_use("delete_everything", {"path": "/"})),
            reply(text("ok")),
        ]
    )
    loop = asyncio.get_running_loop()
    async for ev in chat_for(api, [write_file, delete_everything]).stream("x"):
        if isinstance(ev, ApprovalRequest):
            first, second = ev.pending
            assert first.group == ev.pending
            assert first.claim() and not first.claim()
            second.claim()
            # decided later, from another thread, as a click on a subshell would
            loop.call_later(0.05, threading.Thread(target=first.approve).start)
            loop.call_later(0.1, second.deny, "no")
    assert calls == [("write_file", ("c", ""))]
    assert [b.get("is_error", False) for b in api.tool_results()] == [False, True]


async def test_waiting_costs_no_cpu() -> None:
    api = ScriptedAPI([reply(tool_use("write_file", {"path": "cpu"})), reply(text("ok"))])
    loop = asyncio.get_running_loop()
    measured: dict[str, float] = {}
    async for ev in chat_for(api, [write_file]).stream("x"):
        if isinstance(ev, ApprovalRequest):
            p = ev.pending[0]
            p.claim()
            cpu0, wall0 = time.process_time(), time.perf_counter()

            def click(p: PendingCall = p, cpu0: float = cpu0, wall0: float = wall0) -> None:
                measured["cpu"] = time.process_time() - cpu0
                measured["wall"] = time.perf_counter() - wall0
                p.approve()

            loop.call_later(1.0, click)
    assert measured["wall"] >= 1.0
    assert measured["cpu"] < 0.05, measured  # an idle await, not a spin
    assert calls == [("write_file", ("cpu", ""))]


async def test_cancel_while_waiting_keeps_history_valid() -> None:
    api = ScriptedAPI(
        [reply(tool_use("delete_everything", {"path": "/"}, id="c1")), reply(text("next turn"))]
    )
    chat = chat_for(api, [delete_everything])
    pendings: list[PendingCall] = []

    async def run() -> None:
        async for ev in chat.stream("x"):
            if isinstance(ev, ApprovalRequest):
                for p in ev.pending:
                    p.claim()
                    pendings.append(p)

    task = asyncio.ensure_future(run())
    while not pendings:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    decision = pendings[0].decision
    assert decision is not None and not decision.approved and decision.by == "cancellation"
    assert chat.last_reply is not None and chat.last_reply.interrupted
    last = chat.history.to_params()[-1]
    assert last["role"] == "user" and last["content"][0]["is_error"] is True
    r = await chat("again")  # the next request is accepted: every tool_use has its result
    assert r.text == "next turn"
    first = api.bodies[-1]["messages"][-1]["content"][0]
    assert first["tool_use_id"] == "c1" and first["is_error"] is True


async def test_claimed_widget_without_view_falls_back_after_grace(caplog: Any) -> None:
    api = ScriptedAPI([reply(tool_use("delete_everything", {"path": "/"})), reply(text("ok"))])
    async for ev in chat_for(api, [delete_everything], approval=WidgetApproval(grace=0.2)).stream("x"):
        if isinstance(ev, ApprovalRequest):
            ev.pending[0].claim()
            ev.pending[0].track_views()  # what approval_widget does
    assert "denied (the unattended default)" in api.tool_results()[0]["content"]


async def test_prompt_closed_after_being_shown_denies() -> None:
    api = ScriptedAPI([reply(tool_use("delete_everything", {"path": "/"})), reply(text("ok"))])
    loop = asyncio.get_running_loop()
    async for ev in chat_for(api, [delete_everything], approval=WidgetApproval(grace=5)).stream("x"):
        if isinstance(ev, ApprovalRequest):
            p = ev.pending[0]
            p.claim()
            p.track_views()
            loop.call_later(0.05, p.views_changed, 1)
            loop.call_later(0.15, p.views_changed, 0)  # the cell was re-run: its output is cleared
    assert "prompt was closed" in api.tool_results()[0]["content"]
