"""An MCP server in a real kernel: Deny on the approval card means the server never ran the tool, and
shutting the kernel down leaves no server process. The test plays the frontend (tests/tools/test_kernel.py).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("jupyter_client")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the tools tests' kernel frontend
from tools.test_kernel import Kernel, result

SERVER = str(Path(__file__).with_name("notes_server.py"))


def test_deny_on_the_card_never_runs_and_kernel_shutdown_leaves_no_server(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    setup = f"""
import sys, json, claudekit as ck
from claudekit.offline import OfflineBackend, Script, ToolCall, Turn
env = {{"NOTES_CALLS": {str(calls)!r}, "NOTES_LINGER": "60"}}
server = ck.mcp.stdio(sys.executable, [{SERVER!r}], env=env, name="notes")
first = [ToolCall("read_note", {{"name": "k"}}), ToolCall("delete_note", {{"name": "k"}})]
backend = OfflineBackend(responder=Script([Turn(tool_calls=first), Turn(text="done")]))
chat = ck.Chat(offline=backend, tools=[server], render=False)
"""
    cell = """
reply = await chat("read and delete note k")
print("RESULT " + json.dumps([[c.name, c.decision, str(c.result)] for c in reply.tool_calls]))
"""
    k = Kernel()
    try:
        k.run(setup, timeout=60)
        mid = k.execute(cell)
        card = k.find("AnyModel", exclude=set(), parent=mid)
        k.show(card)
        time.sleep(0.3)
        k.decide(card, "deny", reason="keep it")
        data = result(k.wait(mid))
    finally:
        k.kc.stop_channels()
        k.km.shutdown_kernel(now=False)  # a shutdown request: the kernel exits as it does from JupyterLab
    (read, read_decision, _), (delete, decision, text) = data
    assert (read, read_decision) == ("read_note", "auto")
    assert (delete, decision) == ("delete_note", "denied") and "keep it" in text
    lines = calls.read_text().splitlines()
    assert [ln.split(" pid=")[0] for ln in lines] == ["read_note k"]  # the server never ran delete_note
    pids = {int(f.split("=")[1]) for ln in lines for f in ln.split() if f.startswith(("pid=", "ppid="))}
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [p for p in pids if Path(f"/proc/{p}").exists()]
    assert alive == [], json.dumps(alive)
