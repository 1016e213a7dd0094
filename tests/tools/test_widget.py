"""The approval card's logic without a kernel: a decision from the page is applied in one message,
edits are validated against the tool's schema, views are reported."""

from __future__ import annotations

import asyncio
import json

from claudekit._base._reply import ToolCall
from claudekit._tooling._approval import PendingCall
from claudekit._tooling._tools import tool
from claudekit.notebook._approval import ApprovalDoc, approval_group_widget
from tests.notebook.helpers import FakeWidget


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


def doc(ps: list[PendingCall]) -> tuple[ApprovalDoc, FakeWidget]:
    made: list[FakeWidget] = []

    def factory(on_message: object) -> FakeWidget:
        made.append(FakeWidget(on_message))
        return made[0]

    d = ApprovalDoc(ps, widget_factory=factory)
    return d, made[0]


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_card_shows_the_call_and_approve_decides() -> None:
    (p,) = pending(asyncio.get_running_loop())
    _, w = doc([p])
    card = w.page.cards["id0"]
    assert card["name"] == "write_file" and json.loads(card["args"]) == {"path": "f0.txt"}
    assert card["result"] == "Write a file."  # the description, first line
    assert card["approval"] == {"args": card["args"], "group": 1, "first": True}
    w.say(kind="decide", id="id0", action="approve", text=None, reason="")
    await settle()
    assert p.decision is not None and p.decision.approved and p.decision.by == "user"
    assert p.decision.arguments is None
    decided = w.page.cards["id0"]
    assert "approval" not in decided and decided["decided"] == "Approved by you"
    w.say(kind="decide", id="id0", action="deny", text=None, reason="")  # too late: ignored
    await settle()
    assert p.decision.approved


async def test_an_mcp_tools_card_names_its_server_in_a_field_of_its_own() -> None:
    from_server = write_file.with_options(description="[MCP server 'files'] Write a file.")
    from_server.mcp_server = "files"
    p = PendingCall(ToolCall("id9", "write_file", {"path": "x"}), from_server, asyncio.get_running_loop())
    _, w = doc([p])
    assert w.page.cards["id9"]["mcp"] == "files"
    (plain,) = pending(asyncio.get_running_loop())
    _, w2 = doc([plain])
    assert "mcp" not in w2.page.cards["id0"]


async def test_deny_carries_the_whole_reason() -> None:
    (p,) = pending(asyncio.get_running_loop())
    _, w = doc([p])
    w.say(kind="decide", id="id0", action="deny", text=None, reason="  not that file, ever  ")
    await settle()
    assert p.decision is not None and not p.decision.approved
    assert p.decision.reason == "not that file, ever"
    assert w.page.cards["id0"]["decided"] == "Denied by you: not that file, ever"


async def test_edited_arguments_are_validated_in_the_kernel() -> None:
    (p,) = pending(asyncio.get_running_loop())
    _, w = doc([p])
    # What the page asks while the user types, and the answer it gets (n is the page's edit counter).
    w.say(kind="validate", id="id0", text='{"path": 5}', n=3)
    assert w.page.problems["id0"][0] == 3 and "Input should be a valid string" in w.page.problems["id0"][1]
    w.say(kind="validate", id="id0", text='{"path": "ok.txt"}', n=4)
    assert w.page.problems["id0"] == (4, None)
    # A decision with invalid arguments is refused (n = -1): the card stays open, nothing decided.
    for bad, why in (("{not json", "Not valid JSON"), ("[1]", "must be a JSON object"), ('{"x": 1}', "path")):
        w.say(kind="decide", id="id0", action="approve", text=bad, reason="")
        await settle()
        assert not p.done
        assert w.page.problems["id0"][0] == -1 and why in w.page.problems["id0"][1], w.page.problems
    edited = json.dumps({"path": "safe.txt", "mode": 1}, indent=2)
    w.say(kind="decide", id="id0", action="approve", text=edited, reason="")
    await settle()
    assert p.decision is not None and p.decision.arguments == {"path": "safe.txt", "mode": 1}
    card = w.page.cards["id0"]
    assert json.loads(card["args"]) == {"path": "safe.txt", "mode": 1}  # the card shows what runs
    assert card["decided"] == "Approved by you (with edited arguments)"


@tool(approve=True)
def delete_branch(name: str, force: bool = False, retries: int = 0) -> str:
    """Delete a branch."""
    return name


async def test_edited_arguments_are_validated_strictly() -> None:
    """What you typed, exactly, is what runs: no coercion of "yes" to True or "3" to 3."""
    p = PendingCall(
        ToolCall("id0", "delete_branch", {"name": "old"}), delete_branch, asyncio.get_running_loop()
    )
    _, w = doc([p])
    for bad, where in (
        ('{"name": "old", "force": "yes"}', "force"),
        ('{"name": "old", "retries": "3"}', "retries"),
    ):
        w.say(kind="validate", id="id0", text=bad, n=1)
        assert w.page.problems["id0"][0] == 1 and where in (w.page.problems["id0"][1] or ""), w.page.problems
        w.say(kind="decide", id="id0", action="approve", text=bad, reason="")
        await settle()
        assert not p.done  # refused: the card stays open with the problem
        assert w.page.problems["id0"][0] == -1 and where in w.page.problems["id0"][1]
    w.say(kind="decide", id="id0", action="approve", text='{"name": "old", "force": true}', reason="")
    await settle()
    assert p.decision is not None and p.decision.arguments == {"name": "old", "force": True}


async def test_unchanged_text_approves_the_original_arguments() -> None:
    (p,) = pending(asyncio.get_running_loop())
    _, w = doc([p])
    w.say(kind="decide", id="id0", action="approve", text='{"path": "f0.txt"}', reason="")
    await settle()
    assert p.decision is not None and p.decision.approved and p.decision.arguments is None


async def test_always_allow() -> None:
    (p,) = pending(asyncio.get_running_loop())
    _, w = doc([p])
    w.say(kind="decide", id="id0", action="always", text=None, reason="")
    await settle()
    assert p.decision is not None and p.decision.approved and p.decision.always


async def test_group_approve_all_and_one_by_one() -> None:
    ps = pending(asyncio.get_running_loop(), 3)
    _, w = doc(ps)
    approvals = [w.page.cards[f"id{i}"]["approval"] for i in range(3)]
    assert [a["first"] for a in approvals] == [True, False, False] and approvals[0]["group"] == 3
    w.say(kind="decide", id="id0", action="deny", text=None, reason="")
    await settle()
    w.say(kind="decide", id="id1", action="approve_all", text=None, reason="")
    await settle()
    assert [p.decision.approved for p in ps if p.decision] == [False, True, True]


async def test_deny_all_with_a_reason() -> None:
    ps = pending(asyncio.get_running_loop(), 2)
    _, w = doc(ps)
    w.say(kind="decide", id="id1", action="deny_all", text=None, reason="no writes today")
    await settle()
    assert all(p.decision is not None and p.decision.reason == "no writes today" for p in ps)


async def test_views_are_reported_and_a_closed_prompt_denies() -> None:
    (p,) = pending(asyncio.get_running_loop())
    _, w = doc([p])
    assert p._tracked
    w.say(kind="view", shown=True)
    await settle()
    assert p._seen.done()
    w.say(kind="view", shown=False)  # the output was cleared
    await settle()
    assert p.decision is not None and p.decision.by == "closed prompt"


async def test_the_real_widget_carries_the_front_end_code() -> None:
    (p,) = pending(asyncio.get_running_loop())
    w = approval_group_widget([p])
    # The widget carries only the loader; the code travels once, in the shared model its `lib` names.
    from claudekit.notebook._front import _front_end_model

    lib = _front_end_model()
    assert lib.model_id == w.lib
    assert "markedLib" in lib.code and "export default" in lib.code and ".ck-approval" in lib.css
    assert 'get_model(model.get("lib"))' in w._esm and "markedLib" not in w._esm and len(w._esm) < 2000
    assert lib.version and approval_group_widget([p]).lib == w.lib  # one shared model per kernel
    assert w.key and w.seq == 1 and w.sent[0] == ["bare"]
    w.close()
