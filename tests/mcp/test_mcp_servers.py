"""MCP servers as chat tools, with real servers (the SDK's MCPServer) and Chat on the offline backend.

This folder has no __init__.py: as a package named ``mcp`` it would hide the SDK from the tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import claudekit as ck
from claudekit._base import _notes
from claudekit._tooling import _approval
from claudekit.offline import DefaultResponder, OfflineBackend, Script, ToolCall, Turn

SERVER = str(Path(__file__).with_name("notes_server.py"))


class Calls:
    """What the server says it ran (it appends a line per call to a file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []

    def names(self) -> list[str]:
        return [line.split(" pid=")[0] for line in self.lines()]

    def pids(self) -> set[int]:
        out: set[int] = set()
        for line in self.lines():
            fields = dict(f.split("=") for f in line.split() if "=" in f)
            out |= {int(fields["pid"]), int(fields["ppid"])}
        return out


@pytest.fixture(autouse=True)
def _clean_policy_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CLAUDEKIT_APPROVAL", raising=False)
    _approval.set_default_approval(None)
    _notes._said.clear()
    yield
    _approval.set_default_approval(None)


@pytest.fixture
def calls(tmp_path: Path) -> Calls:
    return Calls(tmp_path / "calls.txt")


@pytest.fixture
def stdio_server(calls: Calls) -> Iterator[ck.mcp.MCPServer]:
    server = ck.mcp.stdio(sys.executable, [SERVER], env={"NOTES_CALLS": str(calls.path)}, name="notes")
    yield server
    server.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_url(tmp_path: Path) -> Iterator[tuple[str, Calls]]:
    """A notes server over streamable HTTP on loopback, in its own process."""
    port = _free_port()
    calls = Calls(tmp_path / "http-calls.txt")
    env = {**os.environ, "NOTES_CALLS": str(calls.path)}
    proc = subprocess.Popen(
        [sys.executable, SERVER, "http", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp", calls
    finally:
        proc.terminate()
        proc.wait(10)


def chat_with(tools: list[Any], calls: list[ToolCall], **kw: Any) -> tuple[ck.Chat, OfflineBackend]:
    """A chat whose model makes ``calls`` in its first turn, then answers in text."""
    turns = [Turn(tool_calls=calls), Turn(text="Done."), Turn(text="Nothing more.")]
    backend = OfflineBackend(responder=Script(turns, then=DefaultResponder()))
    return ck.Chat(offline=backend, tools=tools, render=False, **kw), backend


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its parent to read its status.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split(")")[-1].split()[0] != "Z"


async def test_read_only_tool_runs_without_asking(stdio_server: ck.mcp.MCPServer, calls: Calls) -> None:
    script = ck.ScriptedApproval([])
    chat, _ = chat_with([stdio_server], [ToolCall("read_note", {"name": "shopping"})], approval=script)
    reply = await chat("read my shopping note")
    assert script.asked == []
    assert calls.names() == ["read_note shopping"]
    call = reply.tool_calls[0]
    assert call.decision == "auto" and not call.is_error
    assert call.server_name == "notes" and not call.server  # the server's name as a field: cards show it
    assert "note shopping: buy milk" in str(call.result)
    assert chat.history.problems() == []


async def test_destructive_tool_asks_with_the_server_name_and_deny_means_it_never_ran(
    stdio_server: ck.mcp.MCPServer, calls: Calls
) -> None:
    chat, _ = chat_with([stdio_server], [ToolCall("delete_note", {"name": "a"})], approval="deny")
    reply = await chat("delete note a")
    assert reply.tool_calls[0].decision == "denied" and reply.tool_calls[0].is_error
    assert "delete_note" not in " ".join(calls.names())
    script = ck.ScriptedApproval([ck.approve()])
    chat, _ = chat_with([stdio_server], [ToolCall("delete_note", {"name": "b"})], approval=script)
    reply = await chat("delete note b")
    assert [p.name for p in script.asked] == ["delete_note"]
    assert "MCP server 'notes'" in script.asked[0].description.splitlines()[0]  # what the card shows
    assert calls.names()[-1] == "delete_note b" and reply.tool_calls[0].decision == "approved"


def test_approve_overrides_per_server_and_per_tool(calls: Calls) -> None:
    env = {"NOTES_CALLS": str(calls.path)}
    per_tool = ck.mcp.stdio(sys.executable, [SERVER], env=env, name="t", approve={"read_note": True})
    per_server = ck.mcp.stdio(sys.executable, [SERVER], env=env, name="s", approve=False)
    try:
        asks = {t.name: t.approve for t in per_tool.__claudekit_tools__()}
        assert asks["read_note"] is True and asks["delete_note"] is True and asks["big_note"] is False
        assert not any(t.approve for t in per_server.__claudekit_tools__())
    finally:
        per_tool.close()
        per_server.close()


async def test_results_images_errors_and_truncation(stdio_server: ck.mcp.MCPServer) -> None:
    calls = [ToolCall(n, {}) for n in ("picture", "failing", "big_note", "attachments")]
    chat, _ = chat_with([stdio_server], calls)
    reply = await chat("go")
    picture, failing, big, attachments = reply.tool_calls
    assert attachments.result == [
        {"type": "text", "text": "[resource notes://a.txt]\nthe text of a"},
        {"type": "text", "text": "[resource notes://b.pdf: 67 bytes of application/pdf]"},  # the 67-byte PNG,
        {"type": "text", "text": "(an image of type image/tiff that Claude cannot read)"},
    ]
    assert isinstance(picture.result, list)
    assert [b["type"] for b in picture.result] == ["text", "image"]
    assert picture.result[1]["source"]["media_type"] == "image/png"
    assert failing.is_error and "failing" in str(failing.result)
    assert len(str(big.result)) < 50_000 and "output truncated" in str(big.result)
    assert chat.history.problems() == []


async def test_a_crash_mid_call_is_one_line_and_the_conversation_stays_valid(
    stdio_server: ck.mcp.MCPServer, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    chat, _ = chat_with([stdio_server], [ToolCall("crash_now", {})])
    with caplog.at_level(logging.WARNING):
        reply = await chat("crash it")
    line = "MCP server 'notes' exited (code 3): notes: disk on fire"
    assert reply.tool_calls[0].is_error and reply.tool_calls[0].result == line
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert said == [f"claudekit: {line}"] and not any(r.exc_info for r in caplog.records)
    follow = await chat("and now?")
    assert follow.error is None and chat.history.problems() == []
    # The next call restarts the server once.
    reply = await chat_with([stdio_server], [ToolCall("read_note", {"name": "x"})])[0]("read x")
    assert not reply.tool_calls[0].is_error and calls.names()[-1] == "read_note x"


def test_a_server_that_cannot_start_is_one_line(tmp_path: Path) -> None:
    server = ck.mcp.stdio("claudekit-no-such-mcp-server", name="files")
    with pytest.raises(ck.mcp.MCPServerError) as info:
        ck.Chat(offline=True, tools=[server], render=False)
    text = str(info.value)
    assert text.startswith("MCP server 'files' exited (code 127): ") and "\n" not in text
    server.close()


def test_an_unreachable_http_server_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{_free_port()}/mcp"  # nothing listens there
    server = ck.mcp.http(url, name="remote")
    with caplog.at_level(logging.WARNING), pytest.raises(ck.mcp.MCPServerError) as info:
        ck.Chat(offline=True, tools=[server], render=False)
    assert str(info.value).startswith(f"MCP server 'remote' at {url} cannot be reached: ")
    assert "\n" not in str(info.value) and caplog.records == []  # said once: by the error itself
    server.close()


def test_closing_leaves_no_server_process(stdio_server: ck.mcp.MCPServer, calls: Calls) -> None:
    tools = {t.name: t for t in stdio_server.__claudekit_tools__()}
    asyncio.run(tools["read_note"].call({"name": "a"}))
    pids = calls.pids()
    assert len(pids) == 2 and all(_alive(p) for p in pids)  # the server and its sh wrapper
    stdio_server.close()
    assert not any(_alive(p) for p in pids)


def test_interpreter_exit_leaves_no_server_process(calls: Calls) -> None:
    code = (
        "import asyncio, sys, claudekit as ck\n"
        f"env = {{'NOTES_CALLS': {str(calls.path)!r}, 'NOTES_LINGER': '60'}}\n"
        f"s = ck.mcp.stdio(sys.executable, [{SERVER!r}], env=env)\n"
        "t = {x.name: x for x in s.__claudekit_tools__()}\n"
        "asyncio.run(t['read_note'].call({'name': 'a'}))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    pids = calls.pids()
    assert len(pids) == 2 and not any(_alive(p) for p in pids)


async def test_a_cancel_stops_a_slow_call_within_a_second(
    stdio_server: ck.mcp.MCPServer, calls: Calls
) -> None:
    chat, _ = chat_with([stdio_server], [ToolCall("slow_read", {"seconds": 60})])
    task = asyncio.ensure_future(chat("read slowly"))
    while "slow_read start" not in calls.names():
        await asyncio.sleep(0.02)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stopped = time.monotonic() - started
    while "slow_read cancelled" not in calls.names() and time.monotonic() - started < 5:
        await asyncio.sleep(0.02)
    cancelled = time.monotonic() - started
    print(f"\ncancel: the chat task ended after {stopped:.3f} s, the server's call after {cancelled:.3f} s")
    assert "slow_read cancelled" in calls.names() and "slow_read end" not in calls.names()
    assert cancelled < 1.0  # the requirement: the MCP cancellation reaches the server within a second
    follow = await chat("and now?")
    assert follow.error is None and chat.history.problems() == []


async def test_streamable_http_read_only_runs_and_deny_never_runs(http_url: tuple[str, Calls]) -> None:
    url, calls = http_url
    server = ck.mcp.http(url, name="remote")
    try:
        steps = [ToolCall("read_note", {"name": "a"}), ToolCall("delete_note", {"name": "a"})]
        chat, _ = chat_with([server], steps, approval="deny")
        reply = await chat("read and delete a")
        read, delete = reply.tool_calls
        assert read.decision == "auto" and "note a: buy milk" in str(read.result)
        assert delete.decision == "denied" and calls.names() == ["read_note a"]
        assert chat.history.problems() == []
    finally:
        server.close()


async def test_clashing_tool_names_are_prefixed_with_the_server_name(
    stdio_server: ck.mcp.MCPServer, http_url: tuple[str, Calls], calls: Calls
) -> None:
    url, http_calls = http_url
    remote = ck.mcp.http(url, name="remote")
    try:
        chat, _ = chat_with([stdio_server, remote], [ToolCall("remote_read_note", {"name": "r"})])
        assert {"notes_read_note", "remote_read_note"} <= set(chat.toolset.names)
        await chat("read r remotely")
        assert http_calls.names() == ["read_note r"] and calls.names() == []
    finally:
        remote.close()


def test_the_same_parameters_give_the_same_server(calls: Calls) -> None:
    env = {"NOTES_CALLS": str(calls.path)}
    a = ck.mcp.stdio(sys.executable, [SERVER], env=env)
    try:
        assert ck.mcp.stdio(sys.executable, [SERVER], env=env) is a and a.name == "notes_server"
    finally:
        a.close()


def test_import_claudekit_does_not_import_the_mcp_sdk() -> None:
    code = "import sys, claudekit; claudekit.mcp.stdio; print('mcp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_an_error_the_server_answers_is_not_a_crash(
    stdio_server: ck.mcp.MCPServer, calls: Calls
) -> None:
    stdio_server.tools()  # started
    with pytest.raises(ck.ToolError) as info:
        await stdio_server.call("no_such_tool", {})
    assert "no_such_tool" in str(info.value.content) and "exited" not in str(info.value.content)
    assert stdio_server.running
    assert await stdio_server.call("read_note", {"name": "z"}) == [
        {"type": "text", "text": "note z: buy milk"}
    ]
