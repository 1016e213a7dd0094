"""Approval in a real kernel: the test plays the frontend, sending the comm messages JupyterLab sends.

A cell runs ``await chat(...)`` as a top-level await; the approval card appears (an anywidget comm_open on
iopub, then the kernel's custom messages with the card); the "frontend" reports the card's view and sends
the decision — with the final arguments and the reason in the same custom message, as claudekit's front
end does — on the shell channel, and through a kernel subshell as JupyterLab 4.6 does, while the cell is
still running.
"""

from __future__ import annotations

import json
import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import DENIED_TOOL_RUNS

jupyter_client = pytest.importorskip("jupyter_client")
from jupyter_client.manager import KernelManager  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

SETUP = f"""
import sys, json, time, asyncio, gc
sys.path[:0] = [{str(ROOT)!r}, {str(HERE)!r}]
import claudekit, helpers
from claudekit._tooling._tools import tool
from claudekit._tooling._approval import WidgetApproval
RAN = []

@tool(approve=True)
def write_file(path: str, text: str = "") -> str:
    '''Write a file.'''
    RAN.append({{"path": path, "text": text}})
    return f"wrote {{path}}"

@tool(approve=True)
def delete_everything(path: str) -> str:
    '''Delete a tree. Always denied in these tests.'''
    helpers.DENIED_TOOL_RUNS["count"] += 1
    return "deleted"

def new_chat(*calls, approval=None, render=False):
    api = helpers.ScriptedAPI([helpers.reply(*calls), helpers.reply(helpers.text("done"))])
    tools = [write_file, delete_everything]
    chat = claudekit.Chat(client=api.client(), tools=tools, render=render, approval=approval)
    return chat, api

def report(api, **kw):
    print("RESULT " + json.dumps({{"ran": RAN, "results": api.tool_results() if len(api.bodies) > 1 else None,
                                  "denied_runs": helpers.DENIED_TOOL_RUNS["count"], **kw}}))
"""


def turn(call: str, approval: str = "None", render: str = "False") -> str:
    """A cell that runs one turn as a top-level await; CPU and wall time of the approval wait are measured
    from the ApprovalRequest event to the first ToolResult."""
    # A full garbage collection that an earlier turn's allocations made due would otherwise land in
    # some turn's wait (~0.1 s of CPU) and be counted as the cost of waiting.
    return f"""
RAN.clear(); gc.collect()
chat, api = new_chat({call}, approval={approval}, render={render})
_wait = {{}}
async for ev in chat.stream("please"):
    if isinstance(ev, claudekit.ApprovalRequest):
        _wait["cpu0"], _wait["wall0"] = time.process_time(), time.perf_counter()
    elif isinstance(ev, claudekit.ToolResult) and "cpu" not in _wait and "cpu0" in _wait:
        _wait["cpu"] = time.process_time() - _wait["cpu0"]
        _wait["wall"] = time.perf_counter() - _wait["wall0"]
report(api, cpu=_wait.get("cpu"), wall=_wait.get("wall"), text=chat.last_reply.text)
"""


class Kernel:
    """A kernel plus just enough of a frontend: iopub bookkeeping, widget comms, clicks."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDEKIT_APPROVAL")}
        env["CLAUDEKIT_RENDER"] = "0"
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(ROOT), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.comms: dict[str, dict[str, Any]] = {}
        self.comm_parent: dict[str, str] = {}
        self.ops: dict[str, list[list[Any]]] = {}  # what the kernel told each claudekit widget
        self.idle: set[str] = set()
        self.out: dict[str, dict[str, Any]] = {}

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def pump(self, timeout: float = 0.1) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                msg = self.kc.get_iopub_msg(timeout=max(left, 0.01))
            except queue.Empty:
                return
            parent = msg["parent_header"].get("msg_id", "")
            o = self.out.setdefault(parent, {"stdout": "", "stderr": "", "error": None})
            t, c = msg["msg_type"], msg["content"]
            if t == "comm_open":
                self.comms[c["comm_id"]] = dict(c["data"].get("state", {}))
                self.comm_parent[c["comm_id"]] = parent
            elif t == "comm_msg" and c["data"].get("method") == "update":
                self.comms.setdefault(c["comm_id"], {}).update(c["data"].get("state", {}))
            elif t == "comm_msg" and c["data"].get("method") == "custom":
                content = c["data"].get("content") or {}
                log = self.ops.setdefault(c["comm_id"], [])
                if content.get("reset"):
                    log.clear()
                log.extend(content.get("ops", []))
            elif t == "stream":
                o[c["name"]] += c["text"]
            elif t == "error":
                o["error"] = c["ename"]
            elif t == "status" and c["execution_state"] == "idle":
                self.idle.add(parent)
            if left <= 0:
                return

    def execute(self, code: str) -> str:
        return str(self.kc.execute(code))

    def wait(self, msg_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while msg_id not in self.idle:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cell did not finish within {timeout} s")
            self.pump(0.2)
        return self.out.get(msg_id, {"stdout": "", "stderr": "", "error": None})

    def run(self, code: str, timeout: float = 30) -> dict[str, Any]:
        out = self.wait(self.execute(code), timeout)
        assert out["error"] is None, out
        return out

    def find(
        self,
        model: str,
        timeout: float = 15,
        exclude: set[str] | None = None,
        parent: str | None = None,
        **state: Any,
    ) -> str:
        """A widget model opened by the cell ``parent`` (any cell if None), newest first."""
        deadline = time.monotonic() + timeout
        while True:
            for cid, s in reversed(self.comms.items()):
                if (exclude and cid in exclude) or (
                    parent is not None and self.comm_parent.get(cid) != parent
                ):
                    continue
                if s.get("_model_name") == model and all(s.get(k) == v for k, v in state.items()):
                    return cid
            if time.monotonic() > deadline:
                raise LookupError(f"no {model} with {state}")
            self.pump(0.1)

    def send_comm(self, comm_id: str, data: dict[str, Any], subshell: str | None = None) -> None:
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        if subshell is not None:
            msg["header"]["subshell_id"] = subshell
        self.kc.shell_channel.send(msg)

    def custom(self, comm_id: str, content: dict[str, Any], subshell: str | None = None) -> None:
        self.send_comm(comm_id, {"method": "custom", "content": content}, subshell)

    def show(self, comm_id: str, views: int = 1) -> None:
        """What claudekit's front end sends when a view is displayed (or removed: views=0)."""
        self.custom(comm_id, {"kind": "view", "shown": views > 0})

    def cards(self, comm_id: str, timeout: float = 15) -> dict[str, dict[str, Any]]:
        """The tool cards the kernel sent to this widget (latest state of each), once one asks approval."""
        deadline = time.monotonic() + timeout
        while True:
            cards: dict[str, dict[str, Any]] = {}
            for op in self.ops.get(comm_id, []):
                if op[0] == "tool":
                    cards[op[2]["id"]] = op[2]
            if any("approval" in c for c in cards.values()) or time.monotonic() > deadline:
                return cards
            self.pump(0.1)

    def decide(
        self,
        comm_id: str,
        action: str,
        *,
        text: str | None = None,
        reason: str = "",
        index: int = 0,
        subshell: str | None = None,
    ) -> None:
        """One decision message, as the card's buttons send it (``index``: which waiting call)."""
        waiting = [c for c in self.cards(comm_id).values() if "approval" in c]
        call = waiting[index]["id"]
        decision = {"kind": "decide", "id": call, "action": action, "text": text, "reason": reason}
        self.custom(comm_id, decision, subshell)

    def decided(self) -> str:
        """Every decision line the kernel sent to any card."""
        return " ".join(
            str(op[2].get("decided", "")) for ops in self.ops.values() for op in ops if op[0] == "tool"
        )

    def problems(self, comm_id: str) -> list[Any]:
        return [op for op in self.ops.get(comm_id, []) if op[0] == "problem"]

    def create_subshell(self) -> str:
        self.kc.control_channel.send(self.kc.session.msg("create_subshell_request", {}))
        reply = self.kc.control_channel.get_msg(timeout=10)
        assert reply["content"]["status"] == "ok", reply
        return str(reply["content"]["subshell_id"])


def result(out: dict[str, Any]) -> dict[str, Any]:
    lines = [ln for ln in out["stdout"].splitlines() if ln.startswith("RESULT ")]
    assert lines, out
    data: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return data


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    k.run(SETUP, timeout=60)
    try:
        yield k
    finally:
        # what the kernel's denied tool did counts for the suite-wide check
        out = k.run("print('RESULT ' + json.dumps({'denied_runs': helpers.DENIED_TOOL_RUNS['count']}))")
        DENIED_TOOL_RUNS["count"] += result(out)["denied_runs"]
        k.close()


def card_of(k: Kernel, seen: set[str], mid: str) -> str:
    """The newest claudekit widget (approval cards, or the live view holding them) shown by cell ``mid``."""
    card = k.find("AnyModel", exclude=seen, parent=mid)
    seen.add(card)
    return card


SEEN: set[str] = set()


def test_approve_click_runs_the_tool_and_waiting_is_idle(kernel: Kernel) -> None:
    measured = []
    # the first turn imports and builds things; the difference between a short and a long wait afterwards
    # is the cost of waiting itself
    for wait_s in (0.2, 0.5, 3.0):
        mid = kernel.execute(turn('helpers.tool_use("write_file", {"path": "a.txt", "text": "hi"})'))
        card = card_of(kernel, SEEN, mid)
        kernel.show(card)
        time.sleep(wait_s)  # the cell waits for a person
        kernel.pump(0.05)
        assert mid not in kernel.idle
        kernel.decide(card, "approve")
        data = result(kernel.wait(mid))
        assert data["ran"] == [{"path": "a.txt", "text": "hi"}]
        assert data["results"][0]["content"] == "wrote a.txt" and "is_error" not in data["results"][0]
        assert data["text"] == "done"
        assert data["wall"] >= wait_s
        measured.append((data["cpu"], data["wall"]))
        assert "Approved by you" in kernel.decided()
    (cpu1, wall1), (cpu2, wall2) = measured[1:]
    per_s = (cpu2 - cpu1) / (wall2 - wall1)
    print(
        f"\nkernel CPU from approval request to result: {cpu1 * 1000:.1f} ms ({wall1:.2f} s wall), "
        f"{cpu2 * 1000:.1f} ms ({wall2:.2f} s wall): {per_s * 1000:.2f} ms CPU per second of waiting"
    )
    assert per_s < 0.01, measured  # an idle await, no spinning: under 1 % of a core


def test_deny_click_through_a_subshell_never_runs(kernel: Kernel) -> None:
    sub = kernel.create_subshell()
    mid = kernel.execute(turn('helpers.tool_use("delete_everything", {"path": "/"})'))
    card = card_of(kernel, SEEN, mid)
    kernel.show(card)
    time.sleep(0.3)
    kernel.decide(card, "deny", reason="looks dangerous", subshell=sub)
    data = result(kernel.wait(mid))
    assert data["ran"] == [] and data["denied_runs"] == 0
    block = data["results"][0]
    assert block["is_error"] is True
    assert block["content"] == "The user denied this tool call; it was not run. Reason: looks dangerous"


def test_approve_click_through_a_subshell(kernel: Kernel) -> None:
    sub = kernel.create_subshell()
    mid = kernel.execute(turn('helpers.tool_use("write_file", {"path": "sub.txt"})'))
    card = card_of(kernel, SEEN, mid)
    kernel.show(card)
    t0 = time.perf_counter()
    kernel.decide(card, "approve", subshell=sub)
    data = result(kernel.wait(mid))
    assert time.perf_counter() - t0 < 5
    assert data["ran"] == [{"path": "sub.txt", "text": ""}]


def test_edited_arguments_are_the_ones_used(kernel: Kernel) -> None:
    mid = kernel.execute(turn('helpers.tool_use("write_file", {"path": "/etc/passwd", "text": "x"})'))
    card = card_of(kernel, SEEN, mid)
    kernel.show(card)
    time.sleep(0.3)
    kernel.decide(card, "approve", text=json.dumps({"path": "/tmp/safe.txt", "text": "x"}, indent=2))
    data = result(kernel.wait(mid))
    assert data["ran"] == [{"path": "/tmp/safe.txt", "text": "x"}]
    assert "the user edited the arguments" in data["results"][0]["content"]


def test_invalid_edit_blocks_approve(kernel: Kernel) -> None:
    mid = kernel.execute(turn('helpers.tool_use("write_file", {"path": "a"})'))
    card = card_of(kernel, SEEN, mid)
    kernel.show(card)
    kernel.decide(card, "approve", text=json.dumps({"path": 42}))  # refused: the edit does not validate
    time.sleep(0.5)
    kernel.pump(0.1)
    assert mid not in kernel.idle
    (problem,) = kernel.problems(card)
    assert problem[2] == -1 and "Input should be a valid string" in problem[3]  # the card stays open
    kernel.decide(card, "deny")
    data = result(kernel.wait(mid))
    assert data["ran"] == []


def test_no_frontend_falls_back_without_hanging(kernel: Kernel) -> None:
    # nbval / a headless run: the widget is sent but no view ever reports back
    mid = kernel.execute(
        turn('helpers.tool_use("delete_everything", {"path": "/"})', approval="WidgetApproval(grace=1.0)")
    )
    out = kernel.wait(mid, timeout=20)
    data = result(out)
    assert data["ran"] == [] and data["wall"] < 5
    assert "denied (the unattended default)" in data["results"][0]["content"]
    assert "no widget frontend showed the prompt within 1 s: denying tool calls" in out["stderr"]


def test_interrupt_while_waiting_denies_and_keeps_history_valid(kernel: Kernel) -> None:
    code = turn('helpers.tool_use("delete_everything", {"path": "/"})').replace(
        "RAN.clear()", "RAN.clear(); PEND=[]"
    )
    mid = kernel.execute(code)
    card = card_of(kernel, SEEN, mid)
    kernel.show(card)
    time.sleep(0.5)
    t0 = time.perf_counter()
    kernel.km.interrupt_kernel()
    out = kernel.wait(mid, timeout=10)
    assert time.perf_counter() - t0 < 3, "the interrupt was not noticed promptly"
    assert out["error"] in ("CancelledError", "KeyboardInterrupt")
    check = kernel.run(
        "msgs = chat.history.to_params()\n"
        "uses = {b['id'] for m in msgs if m['role'] == 'assistant' for b in m['content'] "
        "if b['type'] == 'tool_use'}\n"
        "res = {b['tool_use_id']: b for m in msgs if m['role'] == 'user' for b in m['content'] "
        "if b.get('type') == 'tool_result'}\n"
        "r2 = await chat('and now?')\n"
        "report(api, uses=sorted(uses), answered=sorted(res), "
        "errors=[b.get('is_error') for b in res.values()], next_text=r2.text)"
    )
    data = result(check)
    assert data["uses"] == data["answered"] and data["errors"] == [True]
    assert data["ran"] == [] and data["denied_runs"] == 0 and data["next_text"] == "done"
    assert "Not run: the turn was interrupted before a decision" in kernel.decided()


def test_rerun_while_pending_denies_the_old_request(kernel: Kernel) -> None:
    code = turn('helpers.tool_use("write_file", {"path": "rerun.txt"})')
    first = kernel.execute(code)
    card1 = card_of(kernel, SEEN, first)
    kernel.show(card1)
    time.sleep(0.3)
    # JupyterLab re-runs the cell: it clears the cell's output (the view is removed) and queues the execution
    second = kernel.execute(code)
    kernel.show(card1, views=0)
    out1 = kernel.wait(first, timeout=15)
    data1 = result(out1)
    assert data1["ran"] == [] and "prompt was closed" in data1["results"][0]["content"]
    card2 = card_of(kernel, SEEN, second)
    assert card2 != card1
    kernel.show(card2)
    kernel.decide(card2, "approve")
    data2 = result(kernel.wait(second, timeout=15))
    assert data2["ran"] == [{"path": "rerun.txt", "text": ""}]


def test_parallel_calls_shown_together_approve_all(kernel: Kernel) -> None:
    mid = kernel.execute(
        turn('helpers.tool_use("write_file", {"path": "p1"}), helpers.tool_use("write_file", {"path": "p2"})')
    )
    card = card_of(kernel, SEEN, mid)  # one card for the step's parallel calls
    kernel.show(card)
    waiting = [c["approval"] for c in kernel.cards(card).values() if "approval" in c]
    assert [(a["group"], a["first"]) for a in waiting] == [(2, True), (2, False)]
    kernel.decide(card, "approve_all")
    data = result(kernel.wait(mid))
    assert sorted(r["path"] for r in data["ran"]) == ["p1", "p2"]
    assert [b["content"] for b in data["results"]] == ["wrote p1", "wrote p2"]


def test_in_the_notebook_renderers_tool_card(kernel: Kernel) -> None:
    """With the notebook view on, the renderer claims the call and shows the card in its tool card."""
    kernel.run("import claudekit.notebook\nclaudekit.notebook.configure(mode='widget')")
    try:
        mid = kernel.execute(turn('helpers.tool_use("write_file", {"path": "view.txt"})', render="None"))
        card = card_of(kernel, SEEN, mid)
        kernel.show(card)
        time.sleep(0.3)
        kernel.pump(0.05)
        assert mid not in kernel.idle
        # only one claudekit widget: the policy did not show a card of its own
        widgets = [
            c
            for c, s in kernel.comms.items()
            if kernel.comm_parent.get(c) == mid and s.get("_model_name") == "AnyModel"
        ]
        assert widgets == [card]
        kernel.decide(card, "approve")
        data = result(kernel.wait(mid))
        assert data["ran"] == [{"path": "view.txt", "text": ""}]
    finally:
        kernel.run("claudekit.notebook.configure(mode='off')")
