"""Approval in a real kernel: the test plays the frontend, sending the comm messages JupyterLab sends.

A cell runs ``await chat(...)`` as a top-level await; the approval widget appears (comm_open on iopub);
the "frontend" reports the widget's view (``_view_count``), edits the Textarea (``update``) and clicks
(``custom`` ``click``) — on the shell channel, and through a kernel subshell as JupyterLab 4.6 does —
while the cell is still running.
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
from claudekit._tools import tool
from claudekit._approval import WidgetApproval
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

    def show(self, comm_id: str, views: int = 1) -> None:
        """What the frontend's WidgetView sends when it is displayed (or removed: views=0)."""
        self.send_comm(comm_id, {"method": "update", "state": {"_view_count": views}, "buffer_paths": []})

    def click(self, comm_id: str, subshell: str | None = None) -> None:
        self.send_comm(comm_id, {"method": "custom", "content": {"event": "click"}}, subshell)

    def set_value(self, comm_id: str, value: str) -> None:
        self.send_comm(comm_id, {"method": "update", "state": {"value": value}, "buffer_paths": []})

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
    """The newest approval card (a VBox tracking its views) shown by the cell ``mid``."""
    card = k.find("VBoxModel", _view_count=0, exclude=seen, parent=mid)
    seen.add(card)
    return card


SEEN: set[str] = set()


def button(k: Kernel, card: str, description: str) -> str:
    """The button with this description inside ``card`` (cards nest: VBox > HBox > Button)."""
    todo = [card]
    while todo:
        cid = todo.pop()
        s = k.comms[cid]
        if s.get("_model_name") == "ButtonModel" and s.get("description") == description:
            return cid
        todo += [c[len("IPY_MODEL_") :] for c in s.get("children", [])]
    raise LookupError(description)


def child(k: Kernel, card: str, model: str) -> str:
    todo = [card]
    while todo:
        cid = todo.pop()
        s = k.comms[cid]
        if s.get("_model_name") == model:
            return cid
        todo += [c[len("IPY_MODEL_") :] for c in s.get("children", [])]
    raise LookupError(model)


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
        kernel.click(button(kernel, card, "Approve"))
        data = result(kernel.wait(mid))
        assert data["ran"] == [{"path": "a.txt", "text": "hi"}]
        assert data["results"][0]["content"] == "wrote a.txt" and "is_error" not in data["results"][0]
        assert data["text"] == "done"
        assert data["wall"] >= wait_s
        measured.append((data["cpu"], data["wall"]))
        assert any("Approved by you" in s.get("value", "") for s in kernel.comms.values())
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
    kernel.set_value(child(kernel, card, "TextModel"), "looks dangerous")
    time.sleep(0.3)
    kernel.click(button(kernel, card, "Deny"), subshell=sub)
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
    kernel.click(button(kernel, card, "Approve"), subshell=sub)
    data = result(kernel.wait(mid))
    assert time.perf_counter() - t0 < 5
    assert data["ran"] == [{"path": "sub.txt", "text": ""}]


def test_edited_arguments_are_the_ones_used(kernel: Kernel) -> None:
    mid = kernel.execute(turn('helpers.tool_use("write_file", {"path": "/etc/passwd", "text": "x"})'))
    card = card_of(kernel, SEEN, mid)
    kernel.show(card)
    kernel.click(button(kernel, card, "Edit"))
    area = child(kernel, card, "TextareaModel")
    kernel.set_value(area, json.dumps({"path": "/tmp/safe.txt", "text": "x"}))
    time.sleep(0.3)
    kernel.click(button(kernel, card, "Approve"))
    data = result(kernel.wait(mid))
    assert data["ran"] == [{"path": "/tmp/safe.txt", "text": "x"}]
    assert "the user edited the arguments" in data["results"][0]["content"]


def test_invalid_edit_blocks_approve(kernel: Kernel) -> None:
    mid = kernel.execute(turn('helpers.tool_use("write_file", {"path": "a"})'))
    card = card_of(kernel, SEEN, mid)
    kernel.show(card)
    kernel.set_value(child(kernel, card, "TextareaModel"), json.dumps({"path": 42}))
    kernel.click(button(kernel, card, "Approve"))  # refused: the edit does not validate
    time.sleep(0.5)
    kernel.pump(0.1)
    assert mid not in kernel.idle
    assert kernel.comms[button(kernel, card, "Approve")]["disabled"] is True
    kernel.click(button(kernel, card, "Deny"))
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
    assert "denied (the unattended default (deny))" in data["results"][0]["content"]
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
    assert "Not run: the turn was interrupted before a decision" in " ".join(
        s.get("value", "") for s in kernel.comms.values() if s.get("_model_name") == "HTMLModel"
    )


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
    kernel.click(button(kernel, card2, "Approve"))
    data2 = result(kernel.wait(second, timeout=15))
    assert data2["ran"] == [{"path": "rerun.txt", "text": ""}]


def test_parallel_calls_shown_together_approve_all(kernel: Kernel) -> None:
    mid = kernel.execute(
        turn('helpers.tool_use("write_file", {"path": "p1"}), helpers.tool_use("write_file", {"path": "p2"})')
    )
    card1 = card_of(kernel, SEEN, mid)
    card2 = card_of(kernel, SEEN, mid)
    kernel.show(card1)
    kernel.show(card2)
    all_btn = kernel.find("ButtonModel", description="Approve all (2)", parent=mid)
    kernel.click(all_btn)
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
        # only one approval card: the policy did not show a second one of its own
        cards = [
            c
            for c, s in kernel.comms.items()
            if kernel.comm_parent.get(c) == mid and s.get("_view_count") == 0
        ]
        assert cards == [card]
        kernel.click(button(kernel, card, "Approve"))
        data = result(kernel.wait(mid))
        assert data["ran"] == [{"path": "view.txt", "text": ""}]
    finally:
        kernel.run("claudekit.notebook.configure(mode='off')")
