"""``%claude mcp add|list|remove`` and ``--tools NAME.*`` / ``NAME.tool`` in a real kernel, with a real
MCP server (notes_server.py over stdio) and the offline backend recording what each request offered.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("jupyter_client")
pytest.importorskip("mcp")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the tools tests' kernel frontend
from tools.test_kernel import Kernel, result

SERVER = str(Path(__file__).with_name("notes_server.py"))

SETUP = """
import sys, json, claudekit as ck
from claudekit.notebook import use_chat
from claudekit.offline import OfflineBackend, Script, Turn
backend = OfflineBackend(responder=Script([Turn(text="ok")] * 5))
use_chat(ck.Chat(offline=backend, render=False))
def offered():  # the tool names the last request sent
    return sorted(t["name"] for t in backend.requests[-1].get("tools", []))
%load_ext claudekit
"""


def _offered_after(k: Kernel, line: str) -> list[str]:
    k.run(line, timeout=60)
    out = result(k.run('print("RESULT " + json.dumps(offered()))'))
    return list(out)  # type: ignore[arg-type]


def _servers(tag: str) -> list[int]:
    """The pids of the processes whose command line carries ``tag`` (the server and its sh wrapper)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and tag.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_mcp_add_list_tools_and_remove_in_a_kernel(tmp_path: Path) -> None:
    tag = f"notes-tag-{tmp_path.name}"  # an argument the server ignores, to find its process
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nsys.exit('no config')\n")
    k = Kernel()
    try:
        k.run(SETUP, timeout=60)
        added = k.run(f"%claude mcp add notes -- {sys.executable} {SERVER} {tag}")
        listed = k.run("%claude mcp list", timeout=60)
        running = _servers(tag)
        every = _offered_after(k, "%claude --tools notes.* which notes are there?")
        one = _offered_after(k, "%claude --tools notes.delete_note delete note k")
        bad = k.wait(k.execute("%claude --tools notes.nope hi"))
        dup = k.wait(k.execute(f"%claude mcp add notes -- {sys.executable} {SERVER}"))
        k.run(f"%claude mcp add broken -- {sys.executable} {broken}")
        down = k.run("%claude mcp list", timeout=60)
        failed_start = k.wait(k.execute("%claude --tools broken.* hi"), timeout=60)
        k.run(f"b2 = ck.mcp.stdio(sys.executable, [{str(broken)!r}], name='b2')")
        object_start = k.wait(k.execute("%claude --tools b2 hi"), timeout=60)
        k.run("%claude mcp remove broken", timeout=30)
        k.run("%claude mcp remove notes", timeout=30)
        deadline = time.monotonic() + 10
        while _servers(tag) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _servers(tag)
        after = k.run("%claude mcp list")
    finally:
        k.close()
    assert "'notes' added" in added["stdout"]
    lines = listed["stdout"].splitlines()
    assert "notes: running, 8 tools" in lines, lines
    assert "  notes.read_note  read-only" in lines and "  notes.delete_note  asks first" in lines
    assert len(every) == 8 and "read_note" in every and "delete_note" in every
    assert one == ["delete_note"]
    for failed, says in ((bad, "has no tool 'nope'"), (dup, "already added")):
        text = failed["stdout"] + failed["stderr"]
        assert says in text and "Traceback" not in text, failed
    assert "no MCP servers" in after["stdout"]
    # A server that cannot start: listed with the one line that says why; --tools says it in one line.
    assert "broken: down — MCP server 'broken' exited (code 1): no config" in down["stdout"].splitlines()
    text = failed_start["stdout"] + failed_start["stderr"]
    assert "--tools broken.*: MCP server 'broken' exited (code 1): no config" in text, failed_start
    assert "Traceback" not in text, failed_start
    # The same through a server object: the magic's one-line cell error, not the SDK's exception chain.
    assert object_start["error"] == "ClaudeCellError", object_start
    assert "Traceback" not in object_start["stdout"] + object_start["stderr"], object_start
    assert running, "the server was not running after %claude mcp list"
    assert left == [], json.dumps(left)  # removed: no server process left while the kernel lives on


def test_a_server_object_in_the_notebook_is_a_tool_on_a_prompt_line() -> None:
    """``%claude --tools notes read note k``: an MCP server variable is a tool name, not the prompt."""
    import claudekit as ck
    from claudekit.notebook import _magic

    notes = ck.mcp.stdio(sys.executable, [SERVER], name="notes-unit")  # not started by this
    tools, prompt = _magic._split_tools(["notes", "read", "note", "k"], {"notes": notes})
    assert (tools, prompt) == (["notes"], ["read", "note", "k"])
    assert not notes.running
