"""Tool approval in the notebook: what the card shows, and how a decision from the page is applied.

The card is drawn by claudekit's front end (``_js/view.js``): inside a tool card of the live view, or on
its own (:func:`approval_group_widget`) when no live view claimed the calls. Typing in its boxes stays in
the page; Approve / Deny / Always allow send **one** custom message with the decision, the final
arguments text and the reason (widget state typed during a running cell is held back by the frontend
until the cell ends; custom messages are not). The kernel parses the edited JSON, validates it against
the tool's schema, and either decides or sends the problem back (the card stays open). While the user
types, the page asks the kernel to check the arguments at each pause (``validate``).

Views report themselves with custom messages too (``{"kind": "view", "shown": true|false}``): that is
how the tool loop knows a person can see the prompt (no view within the grace period: nbval or a
script, so the unattended policy decides), and that the prompt went away (output cleared: denied).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from .._tooling._approval import Decision, PendingCall
from ._pages import ViewSet, watch_pages

__all__ = [
    "ApprovalDoc",
    "apply_decision",
    "approval_group_widget",
    "approval_widget",
    "arguments_problem",
    "card_approval",
    "card_result",
    "decision_text",
]


def pretty(arguments: Any) -> str:
    return json.dumps(arguments, indent=2, ensure_ascii=False, default=str)


def card_approval(pending: PendingCall, *, first: bool) -> dict[str, Any]:
    """What the page needs to draw the approval part of one call's card."""
    return {"args": pretty(pending.arguments), "group": len(pending.group), "first": first}


def decision_text(decision: Decision) -> str:
    """``Approved by you``, ``Denied by you: not that file``, ``Approved by you with edited arguments``."""
    text = decision.describe()
    return text[:1].upper() + text[1:]


def card_result(status: str, result: str, decided: str | None) -> str:
    """What a card shows as its result: nothing for a denied call whose result (told to the model)
    repeats the reason its decision line already gives ("Denied by you: not that file"): said once."""
    if status != "denied" or not decided or ": " not in decided:
        return result
    reason = decided.split(": ", 1)[1].strip()
    return "" if reason and reason[:40] in result else result


def arguments_problem(pending: PendingCall, text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The edited arguments and why they cannot run (None when they can)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"Not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, "The arguments must be a JSON object, e.g. {}"
    problem = pending.validate(value)
    if problem is not None:
        return None, problem
    return value, None


def apply_decision(pendings: dict[str, PendingCall], content: dict[str, Any]) -> tuple[str, str] | None:
    """Apply one ``decide`` message from the page; ``(call id, problem)`` when it cannot be applied."""
    pending = pendings.get(str(content.get("id")))
    if pending is None or pending.done:
        return None
    action = content.get("action")
    reason = str(content.get("reason") or "").strip() or None
    if action in ("approve", "always"):
        text = content.get("text")
        arguments = None
        if isinstance(text, str):
            arguments, problem = arguments_problem(pending, text)
            if problem is not None:
                return pending.id, problem
            if arguments == pending.arguments:
                arguments = None
        pending.approve(arguments, always=action == "always")
    elif action == "deny":
        pending.deny(reason)
    elif action == "approve_all":
        for p in pending.group:
            p.approve()
    elif action == "deny_all":
        for p in pending.group:
            p.deny(reason)
    return None


class ApprovalDoc:
    """Approval cards on their own (calls no live view claimed): a document with tool parts only."""

    def __init__(self, pendings: Sequence[PendingCall], widget_factory: Callable[..., Any] | None = None):
        from ._front import DocWidget

        self.pendings = {p.id: p for p in pendings}
        self.widget = (widget_factory or DocWidget)(self._message)
        self._views = ViewSet()
        ops: list[list[Any]] = [["bare"]]
        for i, p in enumerate(pendings):
            p.track_views()
            ops.append(["tool", i, self._card(p, first=i == 0)])
            p.on_decided(self._decided)
        self._index = {p.id: i for i, p in enumerate(pendings)}
        self.widget.push(ops)
        watch_pages(self)

    def page_connected(self) -> None:
        """A page reconnected (a reload): see :mod:`._pages`."""
        waiting = [p for p in self.pendings.values() if not p.done]
        if not waiting:
            return
        self._views.forget()
        ping = getattr(self.widget, "ping", None)
        if callable(ping):
            ping()
        for p in waiting:
            p.page_reconnected()

    def _card(self, p: PendingCall, *, first: bool = False) -> dict[str, Any]:
        desc = p.description.strip().splitlines()[0] if p.description.strip() else ""
        card: dict[str, Any] = {
            "id": p.id,
            "name": p.name,
            "status": "awaiting approval",
            "args": pretty(p.arguments),
            "result": desc,
        }
        server = getattr(p.tool, "mcp_server", None)
        if server:
            card["mcp"] = str(server)  # the card's own field, beside the description
        if p.decision is None:
            card["approval"] = card_approval(p, first=first)
        else:
            card["status"] = "approved" if p.decision.approved else "denied"
            card["decided"] = decision_text(p.decision)
            if p.decision.arguments is not None:
                card["args"] = pretty(p.decision.arguments)
        return card

    def _decided(self, p: PendingCall) -> None:
        self.widget.push([["tool", self._index[p.id], self._card(p)]])

    def _message(self, content: dict[str, Any]) -> None:
        kind = content.get("kind")
        if kind == "view":
            count = self._views.update(content)
            for p in self.pendings.values():
                p.views_changed(count)
        elif kind == "validate":
            asked = self.pendings.get(str(content.get("id")))
            if asked is not None and isinstance(content.get("text"), str):
                _, problem = arguments_problem(asked, content["text"])
                self.widget.push([["problem", asked.id, content.get("n"), problem]])
        elif kind == "decide":
            refused = apply_decision(self.pendings, content)
            if refused is not None:
                self.widget.push([["problem", refused[0], -1, refused[1]]])


def approval_widget(pending: PendingCall) -> Any:
    """The approval card of one call, on its own (a widget to display)."""
    return ApprovalDoc([pending]).widget


def approval_group_widget(pendings: Sequence[PendingCall]) -> Any:
    """The approval cards of the parallel calls of one step, with "Approve all" / "Deny all"."""
    return ApprovalDoc(list(pendings)).widget
