"""A page reload while an approval card waits (issue 21, item 4), in a real kernel.

A reload is what the kernel sees of it: the page's views vanish without a word, and the new page's
widget manager opens ipywidgets' ``jupyter.widget.control`` comm (sent here as JupyterLab sends it).
Either a view of the saved output comes back (it answers the kernel's ping) and a person decides, or
none does and the unattended policy decides after the grace period, saying why. The real-browser
version is tests/browser/test_approval_reload.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.notebook.helpers import APPROVAL_SETUP
from tests.notebook.kernel import Kernel, started_kernel

SETUP = (
    """
%load_ext claudekit.notebook
import claudekit, claudekit.notebook as nb
from claudekit.offline import OfflineBackend, Script, Turn, ToolCall
"""
    + APPROVAL_SETUP
)


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with started_kernel(SETUP, env={"CLAUDEKIT_APPROVAL_GRACE": "1"}) as k:
        yield k


def reload_page(kernel: Kernel) -> None:
    """What a reloaded JupyterLab page sends first: its widget manager's control comm."""
    kernel.kc.session.send(
        kernel.kc.shell_channel.socket,
        "comm_open",
        {"comm_id": uuid.uuid4().hex, "target_name": "jupyter.widget.control", "data": {}},
        metadata={"version": "1.0.0"},
    )


class Page:
    """A front end for the reply's widget: shows it, reloads at the card, maybe comes back, decides."""

    def __init__(self, kernel: Kernel, *, comes_back: bool) -> None:
        self.kernel = kernel
        self.comes_back = comes_back
        self.doc: str | None = None
        self.log: list[str] = []

    def custom(self, content: dict[str, Any]) -> None:
        assert self.doc is not None
        self.kernel.send_comm(self.doc, {"method": "custom", "content": content})

    def __call__(self, msg: dict[str, Any]) -> None:
        content = msg["content"]
        if msg["msg_type"] == "comm_open" and content["data"]["state"].get("_model_name") == "AnyModel":
            self.doc = content["comm_id"]
            self.custom({"kind": "view", "shown": True, "view": "old-page"})
        elif msg["msg_type"] == "comm_close" and content["comm_id"] == self.doc:
            self.log.append("closed")
        if msg["msg_type"] != "comm_msg" or content["comm_id"] != self.doc:
            return
        data = content["data"].get("content", {})
        if data.get("ping"):
            self.log.append("ping")
            if self.comes_back:  # the saved output's view, rendered by the new page
                self.custom({"kind": "view", "shown": True, "view": "new-page"})
                self.custom({"kind": "sync", "have": 0})  # a new page's module asks for everything
                self.log.append("back")
        for op in data.get("ops", []):
            if op[0] == "tool" and "approval" in op[2] and "reload" not in self.log:
                self.log.append("reload")
                reload_page(self.kernel)
            elif op[0] == "tool" and "approval" in op[2] and "back" in self.log and "click" not in self.log:
                self.log.append("click")
                self.custom({"kind": "decide", "id": op[2]["id"], "action": "approve", "text": None})
            if op[0] == "final":
                self.log.append("final")


def test_a_card_that_does_not_come_back_ends_with_the_unattended_policy(kernel: Kernel) -> None:
    kernel.ok("nb.use_chat(approval_chat(), 'gone')")
    page = Page(kernel, comes_back=False)
    run = kernel.execute(
        "%%claude --chat gone\ndelete /tmp/x\n", timeout=30, on_message=page, every_message=True
    )
    assert run.status == "ok", run.errors
    assert page.log[:2] == ["reload", "ping"], page.log
    why = "the page was reloaded and the approval card did not come back within 1 s"
    lines = [x for x in run.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and why in lines[0] and "denying" in lines[0], run.stderr
    after = kernel.ok("print(_claude.tool_calls[0].decision, '|', _claude.text)")
    assert "denied" in after.stdout and "Finished." in after.stdout
    # The outcome in the cell's output (the saved copy): who denied it and why.
    shown = [u["content"]["data"] for u in run.of_type("update_display_data", "display_data")]
    saved = "".join(d.get("text/html", "") + d.get("text/markdown", "") for d in shown)
    assert why in saved and "Finished." in saved, saved
    assert kernel.ok("print('next cell')").stdout == "next cell\n"


def test_a_card_that_comes_back_is_decided_and_its_view_shows_the_outcome(kernel: Kernel) -> None:
    kernel.ok("nb.use_chat(approval_chat(), 'back')")
    page = Page(kernel, comes_back=True)
    run = kernel.execute(
        "%%claude --chat back\ndelete /tmp/x\n", timeout=30, on_message=page, every_message=True
    )
    assert run.status == "ok", run.errors
    assert page.log[:4] == ["reload", "ping", "back", "click"], page.log
    assert "final" in page.log  # the view got the finished reply
    assert "closed" not in page.log  # and stays open: the reloaded page cannot take the saved copy
    assert run.seconds < 5  # decided by the person, not by the fallback
    after = kernel.ok("print(_claude.tool_calls[0].decision, '|', _claude.text)")
    assert after.stdout.startswith("approved |") and "Finished." in after.stdout
