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


def test_deny_never_runs_an_interrupt_cancels_and_kernel_shutdown_leaves_no_server(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    setup = f"""
import sys, json, claudekit as ck
from claudekit.offline import OfflineBackend, Script, ToolCall, Turn
env = {{"NOTES_CALLS": {str(calls)!r}, "NOTES_LINGER": "60"}}
server = ck.mcp.stdio(sys.executable, [{SERVER!r}], env=env, name="notes")
first = [ToolCall("read_note", {{"name": "k"}}), ToolCall("delete_note", {{"name": "k"}})]
slow = [ToolCall("slow_read", {{"seconds": 60}})]
turns = [Turn(tool_calls=first), Turn(text="done"), Turn(tool_calls=slow), Turn(text="after")]
backend = OfflineBackend(responder=Script(turns))
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
        # An interrupt during a slow MCP call: the cell ends and the server is told to cancel.
        mid = k.execute('await chat("read slowly")')
        while "slow_read start" not in calls.read_text():
            time.sleep(0.02)
        t0 = time.time()
        k.km.interrupt_kernel()
        interrupted = k.wait(mid, timeout=10)
        ended = time.time() - t0
        while "slow_read cancelled" not in calls.read_text() and time.time() - t0 < 5:
            time.sleep(0.02)
        # when the server itself saw the cancellation (it stamps each line with its clock)
        stamp = [ln for ln in calls.read_text().splitlines() if ln.startswith("slow_read cancelled")]
        cancelled = float(stamp[0].rsplit("t=", 1)[1]) - t0 if stamp else float("inf")
        after = result(k.run('r = await chat("and now?"); print("RESULT " + json.dumps(r.text))'))
    finally:
        k.kc.stop_channels()
        k.km.shutdown_kernel(now=False)  # a shutdown request: the kernel exits as it does from JupyterLab
    (read, read_decision, _), (delete, decision, text) = data
    assert (read, read_decision) == ("read_note", "auto")
    assert (delete, decision) == ("delete_note", "denied") and "keep it" in text
    print(f"\nkernel interrupt: the cell ended after {ended:.3f} s, the server call after {cancelled:.3f} s")
    assert interrupted["error"] in ("CancelledError", "KeyboardInterrupt")
    assert cancelled < 1.0  # the requirement: the server is told to cancel within a second
    assert ended < 5  # ipykernel itself takes a while to finish an interrupted cell (tests/tools: < 3 s)
    assert after == "after"  # the conversation stayed valid
    lines = calls.read_text().splitlines()
    names = [ln.split(" pid=")[0] for ln in lines]
    assert names == ["read_note k", "slow_read start", "slow_read cancelled"]  # never delete_note
    pids = {int(f.split("=")[1]) for ln in lines for f in ln.split() if f.startswith(("pid=", "ppid="))}
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [p for p in pids if Path(f"/proc/{p}").exists()]
    assert alive == [], json.dumps(alive)
