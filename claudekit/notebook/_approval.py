"""The approval widget: a tool call's name and arguments, and Approve / Deny / Edit / Always allow.

``approval_widget(pending)`` is what a renderer puts in a tool's card after ``pending.claim()``;
``approval_group_widget(pendings)`` shows the parallel calls of one step together, with "Approve all"
and "Deny all". Clicks decide through :meth:`PendingCall.decide`, which hands the decision to the event
loop with ``loop.call_soon_threadsafe`` (JupyterLab may deliver clicks on a kernel subshell thread).

The card's root sets ipywidgets' ``_view_count`` to 0, so the frontend reports each view it creates or
removes: that is how the tool loop knows a person can see the prompt (no view: nbval or a script, so the
unattended policy decides), and that the prompt went away (cell re-run: the call is denied).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from .._approval import PendingCall

__all__ = ["approval_group_widget", "approval_widget"]

_STYLE = "font-family: var(--jp-code-font-family, monospace); font-size: 12px; white-space: pre-wrap"
_ERROR_STYLE = f"{_STYLE}; color: var(--jp-error-color1, #c62828)"


def _pretty(arguments: Any) -> str:
    return json.dumps(arguments, indent=2, ensure_ascii=False, default=str)


class _Card:
    """The widgets of one pending call and the logic between them."""

    def __init__(self, pending: PendingCall, *, group_controls: bool, in_card: bool = False) -> None:
        self.pending = pending
        # Inside a tool card the name and arguments are already shown just above: do not repeat them.
        self.in_card = in_card
        self.original = _pretty(pending.arguments)
        desc = pending.description.strip().splitlines()[0] if pending.description.strip() else ""
        title = f"<b>Claude wants to run <code>{html.escape(pending.name)}</code></b>"
        if in_card:
            title = "<b>Run it with these arguments?</b>"
        elif desc:
            title += f" <span style='opacity:0.7'>— {html.escape(desc)}</span>"
        self.title = widgets.HTML(title)
        self.args_view = widgets.HTML(self._args_html(self.original))
        if in_card:
            self.args_view.layout.display = "none"
        self.editor = widgets.Textarea(
            value=self.original,
            description="Arguments",
            rows=min(20, max(3, self.original.count("\n") + 2)),
            layout=widgets.Layout(width="100%", display="none"),
        )
        self.error = widgets.HTML("")
        self.reason = widgets.Text(
            placeholder="reason for denying (optional, told to Claude)",
            description="Reason",
            layout=widgets.Layout(width="440px", max_width="100%"),
        )
        self.approve_btn = widgets.Button(
            layout=widgets.Layout(width="auto"),  # labels never truncated
            description="Approve",
            button_style="primary",
            icon="check",
            tooltip=f"Run {pending.name} with these arguments",
        )
        self.deny_btn = widgets.Button(
            layout=widgets.Layout(width="auto"),  # labels never truncated
            description="Deny",
            button_style="danger",
            icon="times",
            tooltip="Do not run it; Claude is told you denied it (with the reason, if you give one)",
        )
        self.edit_btn = widgets.Button(
            layout=widgets.Layout(width="auto"),  # labels never truncated
            description="Edit",
            icon="pencil",
            tooltip="Edit the arguments (JSON) before approving",
        )
        self.always_btn = widgets.Button(
            layout=widgets.Layout(width="auto"),  # labels never truncated
            description="Always allow this tool",
            icon="check-circle",
            tooltip=f"Approve, and run {pending.name} without asking for the rest of this chat",
        )
        self.approve_btn.on_click(lambda _b: self._approve(always=False))
        self.always_btn.on_click(lambda _b: self._approve(always=True))
        self.deny_btn.on_click(lambda _b: self._deny())
        self.edit_btn.on_click(lambda _b: self._toggle_edit())
        self.editor.observe(self._edited, names="value")
        self.buttons: list[widgets.Button] = [self.approve_btn, self.deny_btn, self.edit_btn, self.always_btn]
        rows: list[widgets.Widget] = [
            self.title,
            self.args_view,
            self.editor,
            self.error,
            widgets.HBox([self.approve_btn, self.deny_btn, self.edit_btn, self.always_btn]),
            self.reason,
        ]
        group = pending.group
        if group_controls and len(group) > 1:
            rows.append(_group_row(group, self.reason))
        self.status = widgets.HTML("")
        rows.append(self.status)
        self.root = widgets.VBox(
            rows,
            layout=widgets.Layout(
                border="1px solid var(--jp-border-color1, #ccc)", padding="4px 8px", margin="4px 0"
            ),
            _view_count=0,
        )
        self.root.observe(self._views, names="_view_count")
        pending.track_views()
        pending.on_decided(self._show_decision)

    @staticmethod
    def _args_html(text: str) -> str:
        return f"<pre style='{_STYLE}'>{html.escape(text)}</pre>"

    def _views(self, change: dict[str, Any]) -> None:
        count = change.get("new")
        if isinstance(count, int):
            self.pending.views_changed(count)

    def _toggle_edit(self) -> None:
        editing = self.editor.layout.display == "none"
        self.editor.layout.display = "" if editing else "none"
        show_args = not editing and (not self.in_card or self.editor.value != self.original)
        self.args_view.layout.display = "" if show_args else "none"
        self.edit_btn.description = "Done editing" if editing else "Edit"

    def _parse(self) -> tuple[dict[str, Any] | None, str | None]:
        """The edited arguments (None when unchanged) and why they cannot be approved (None when fine)."""
        text = self.editor.value
        if text == self.original:
            return None, None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return None, f"Not valid JSON: {exc}"
        problem = self.pending.validate(value)
        if problem is not None:
            return None, problem
        if value == self.pending.arguments:
            return None, None
        return value, None

    def _edited(self, _change: dict[str, Any]) -> None:
        if self.pending.done:
            return
        _, problem = self._parse()
        self.error.value = (
            "" if problem is None else f"<pre style='{_ERROR_STYLE}'>{html.escape(problem)}</pre>"
        )
        self.approve_btn.disabled = self.always_btn.disabled = problem is not None
        if problem is None:
            self.args_view.value = self._args_html(self.editor.value)

    def _approve(self, *, always: bool) -> None:
        arguments, problem = self._parse()
        if problem is not None:  # the button is disabled then, but a click may race the update
            self.error.value = f"<pre style='{_ERROR_STYLE}'>{html.escape(problem)}</pre>"
            return
        self.pending.approve(arguments, always=always)

    def _deny(self) -> None:
        self.pending.deny(self.reason.value.strip() or None)

    def _show_decision(self, pending: PendingCall) -> None:
        decision = pending.decision
        for b in self.buttons:
            b.disabled = True
        self.editor.disabled = True
        self.reason.disabled = True
        if decision is None:
            return
        mark, color = ("✔", "success") if decision.approved else ("✖", "error")
        # Only the mark is coloured: green or red text is under 4.5:1 contrast in one theme or the other.
        what = html.escape(decision.describe().capitalize())
        self.status.value = (
            f"<span style='color: var(--jp-{color}-color1)'>{mark}</span> "
            f"<span style='color: var(--jp-ui-font-color1)'>{what}</span>"
        )


def _group_row(group: Sequence[PendingCall], reason: widgets.Text) -> widgets.HBox:
    n = len(group)
    approve_all = widgets.Button(
        layout=widgets.Layout(width="auto"),  # labels never truncated
        description=f"Approve all ({n})",
        button_style="primary",
        icon="check-double",
        tooltip=f"Approve all {n} tool calls of this step as they are",
    )
    deny_all = widgets.Button(
        layout=widgets.Layout(width="auto"),  # labels never truncated
        description=f"Deny all ({n})",
        button_style="danger",
        icon="ban",
        tooltip=f"Deny all {n} tool calls of this step",
    )

    def on_approve_all(_b: Any) -> None:
        for p in group:
            p.approve()

    def on_deny_all(_b: Any) -> None:
        why = reason.value.strip() or None
        for p in group:
            p.deny(why)

    approve_all.on_click(on_approve_all)
    deny_all.on_click(on_deny_all)

    def all_done(_p: PendingCall) -> None:
        if all(p.done for p in group):
            approve_all.disabled = deny_all.disabled = True

    for p in group:
        p.on_decided(all_done)
    return widgets.HBox([approve_all, deny_all])


def approval_widget(
    pending: PendingCall, *, group_controls: bool = True, in_card: bool = False
) -> widgets.Widget:
    """The approval card of one call; with ``group_controls`` it has "Approve all"/"Deny all" for its step.

    ``in_card``: the widget goes inside a tool card that already shows the name and arguments.
    """
    return _Card(pending, group_controls=group_controls, in_card=in_card).root


def approval_group_widget(pendings: Sequence[PendingCall]) -> widgets.Widget:
    """The approval cards of the parallel calls of one step, with one "Approve all"/"Deny all" row."""
    pendings = list(pendings)
    cards = [_Card(p, group_controls=False) for p in pendings]
    children: list[widgets.Widget] = [c.root for c in cards]
    if len(pendings) > 1:
        reason = widgets.Text(
            placeholder="reason for denying all (optional)",
            description="Reason",
            layout=widgets.Layout(width="440px", max_width="100%"),
        )
        row = _group_row(pendings, reason)
        children = [widgets.HTML(f"<b>Claude wants to run {len(pendings)} tools</b>"), *children, row, reason]
    return widgets.VBox(children)
