"""The approval widget's logic, without a kernel: buttons decide, edits validate, the card reports."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import ipywidgets as widgets

from claudekit._approval import PendingCall
from claudekit._reply import ToolCall
from claudekit._tools import tool
from claudekit.notebook._approval import approval_group_widget, approval_widget


@tool(approve=True)
def write_file(path: str, mode: int = 0) -> str:
    """Write a file.

    Args:
        path: Where to write.
    """
    return path


def pending(loop: asyncio.AbstractEventLoop, n: int = 1) -> list[PendingCall]:
    out = [
        PendingCall(ToolCall(f"id{i}", "write_file", {"path": f"f{i}.txt"}), write_file, loop)
        for i in range(n)
    ]
    for p in out:
        p.group = tuple(out)
    return out


def find(root: widgets.Widget, kind: type, **attrs: Any) -> Any:
    stack = [root]
    while stack:
        w = stack.pop()
        if isinstance(w, kind) and all(getattr(w, k) == v for k, v in attrs.items()):
            return w
        stack.extend(getattr(w, "children", ()))
    raise LookupError(f"no {kind.__name__} with {attrs}")


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_card_shows_the_call_and_approve_decides() -> None:
    (p,) = pending(asyncio.get_running_loop())
    card = approval_widget(p)
    assert card._view_count == 0  # the frontend reports its views
    html = " ".join(w.value for w in _all(card) if isinstance(w, widgets.HTML))
    assert "write_file" in html and "f0.txt" in html and "Write a file." in html
    approve_btn = find(card, widgets.Button, description="Approve")
    assert approve_btn.tooltip and find(card, widgets.Button, description="Deny").tooltip
    approve_btn.click()
    await settle()
    assert p.decision is not None and p.decision.approved and p.decision.by == "user"
    assert all(b.disabled for b in _all(card) if isinstance(b, widgets.Button))
    assert "Approved by you" in " ".join(w.value for w in _all(card) if isinstance(w, widgets.HTML))
    find(card, widgets.Button, description="Deny").click()  # too late: ignored
    await settle()
    assert p.decision.approved


async def test_deny_with_reason() -> None:
    (p,) = pending(asyncio.get_running_loop())
    card = approval_widget(p)
    find(card, widgets.Text, description="Reason").value = "not that file"
    find(card, widgets.Button, description="Deny").click()
    await settle()
    assert p.decision is not None and not p.decision.approved and p.decision.reason == "not that file"
    assert "Denied by you: not that file" in " ".join(
        w.value for w in _all(card) if isinstance(w, widgets.HTML)
    )


async def test_edit_validates_before_approve() -> None:
    (p,) = pending(asyncio.get_running_loop())
    card = approval_widget(p)
    find(card, widgets.Button, description="Edit").click()
    editor = find(card, widgets.Textarea)
    assert editor.layout.display == ""
    approve_btn = find(card, widgets.Button, description="Approve")
    editor.value = "{not json"
    assert approve_btn.disabled
    editor.value = json.dumps({"path": 5})
    assert approve_btn.disabled
    assert "Input should be a valid string" in " ".join(
        w.value for w in _all(card) if isinstance(w, widgets.HTML)
    )
    approve_btn.click()  # a click racing the disabled state is refused too
    await settle()
    assert not p.done
    editor.value = json.dumps({"path": "safe.txt", "mode": 1})
    assert not approve_btn.disabled
    approve_btn.click()
    await settle()
    assert p.decision is not None and p.decision.arguments == {"path": "safe.txt", "mode": 1}


def _visible_html(root: widgets.Widget) -> str:
    return " ".join(w.value for w in _all(root) if isinstance(w, widgets.HTML) and w.layout.display != "none")


async def test_in_a_tool_card_the_arguments_are_not_repeated_until_edited() -> None:
    (p,) = pending(asyncio.get_running_loop())
    card = approval_widget(p, in_card=True)
    assert "f0.txt" not in _visible_html(card) and "write_file" not in _visible_html(card)
    assert "f0.txt" in _visible_html(approval_widget(p))  # a standalone card shows them
    edit = find(card, widgets.Button, description="Edit")
    edit.click()
    find(card, widgets.Textarea).value = json.dumps({"path": "other.txt"})
    find(card, widgets.Button, description="Done editing").click()
    # Edited arguments differ from what the tool card shows: now they are shown here.
    assert "other.txt" in _visible_html(card)


async def test_always_allow() -> None:
    (p,) = pending(asyncio.get_running_loop())
    card = approval_widget(p)
    find(card, widgets.Button, description="Always allow this tool").click()
    await settle()
    assert p.decision is not None and p.decision.approved and p.decision.always


async def test_group_approve_all_and_one_by_one() -> None:
    loop = asyncio.get_running_loop()
    ps = pending(loop, 3)
    group = approval_group_widget(ps)
    cards = [c for c in group.children if isinstance(c, widgets.VBox)]
    assert len(cards) == 3
    find(cards[0], widgets.Button, description="Deny").click()
    await settle()
    find(group, widgets.Button, description="Approve all (3)").click()
    await settle()
    assert [p.decision.approved for p in ps if p.decision] == [False, True, True]
    assert find(group, widgets.Button, description="Deny all (3)").disabled


async def test_card_group_controls_and_view_reports() -> None:
    loop = asyncio.get_running_loop()
    ps = pending(loop, 2)
    card = approval_widget(ps[0])
    find(card, widgets.Button, description="Deny all (2)").click()
    await settle()
    assert all(p.decision is not None and not p.decision.approved for p in ps)
    ps2 = pending(loop, 1)
    card2 = approval_widget(ps2[0])
    card2._view_count = 1
    await settle()
    assert ps2[0]._seen.done()
    card2._view_count = 0  # the output was cleared
    await settle()
    assert ps2[0].decision is not None and ps2[0].decision.by == "closed prompt"


def _all(root: widgets.Widget) -> list[widgets.Widget]:
    out, stack = [], [root]
    while stack:
        w = stack.pop()
        out.append(w)
        stack.extend(getattr(w, "children", ()))
    return out
