"""The live ipywidgets view of a reply, and the static output it leaves behind.

Layout (top to bottom): a header (status, model, elapsed time); a collapsible "Thinking" accordion; one
card per tool call (name and status, the arguments pretty-printed as they stream, a slot for the
approval widget, a result preview); server-tool blocks and citations; the answer as Markdown (an
``Output`` widget whose single output is a ``text/markdown`` bundle, replaced at each refresh, so code,
tables and math render exactly as Jupyter renders Markdown); a usage footer.

Refreshes are throttled (:class:`~claudekit.notebook.Throttle`): the first event and every status change
show at once, everything else is coalesced to at most ``rate`` refreshes per second, a held change is
shown by a timer on the event loop when the interval ends (even if no further event comes), and
``finish`` flushes the final state. Only sections whose version changed are pushed, and the header's
elapsed time has a resolution of one second, so a refresh costs one or two comm messages.

When the reply ends, the live view is replaced by an empty ``text/plain`` (``update_display_data``) and
its widgets are closed, and a static ``text/markdown`` rendering is displayed as a new output: a saved
notebook shows the answer without a kernel or widget state (GitHub, nbconvert, nbval).

Styling uses JupyterLab's CSS variables only, so it reads well in light and dark themes.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

from .._events import ApprovalRequest
from ._state import ToolCard, ViewState
from ._static import NO_MATH, footer_line, static_bundle, usage_so_far
from ._throttle import Throttle

if TYPE_CHECKING:
    from .._events import Event, Usage
    from .._reply import Reply

__all__ = ["CardWidget", "WidgetRenderer"]

_FONT = "font-family: var(--jp-ui-font-family); font-size: var(--jp-ui-font-size1);"
# ipywidgets draws the Accordion title in --jp-ui-font-color2 on --jp-layout-color2: 4.2-4.4:1 contrast,
# under WCAG AA. Scoped to claudekit's own view; it travels inside the header, which every refresh sends.
_HEADER_STYLE = (
    "<style>.claudekit-view .jupyter-widget-Collapse-header, .claudekit-view .p-Collapse-header"
    " { color: var(--jp-ui-font-color1); }</style>"
)
_STATUS_COLOURS = {
    "waiting": "var(--jp-ui-font-color2)",
    "thinking": "var(--jp-brand-color1)",
    "calling tools": "var(--jp-warn-color1)",
    "awaiting approval": "var(--jp-warn-color0)",
    "writing": "var(--jp-brand-color1)",
    "done": "var(--jp-success-color1)",
    "interrupted": "var(--jp-warn-color1)",
    "error": "var(--jp-error-color1)",
}
_CARD_ICONS = {
    "streaming": "…",
    "ready": "•",
    "running": "⏳",
    "awaiting approval": "✋",
    "done": "✓",
    "error": "✗",
    "denied": "⊘",
    "invalid": "✗",
    "interrupted": "⏹",
    "not run": "–",
}
_PRE = (
    "margin: 2px 0; padding: 4px 6px; white-space: pre-wrap; word-break: break-word; max-height: 16em; "
    "overflow: auto; background: var(--jp-layout-color2); color: var(--jp-content-font-color1); "
    "font-family: var(--jp-code-font-family); font-size: var(--jp-code-font-size); border-radius: 3px;"
)


def _budget_text(budget: dict[str, Any] | None, cost_so_far: float | None) -> str:
    """``spent / budget`` for the live footer: spent before this reply plus this reply so far."""
    if not budget:
        return ""
    spent = float(budget["spent_usd"]) + (cost_so_far or 0.0)
    return f"{budget['scope']} budget: ${spent:,.4f} / ${float(budget['budget_usd']):,.4f}"


def _usage_line(
    model: str, usage: Usage | None, steps: list[Usage], budget: dict[str, Any] | None = None
) -> str:
    """The live footer: tokens, cache and cost so far (the header shows the elapsed time), and the
    budget in force (spent / budget) when there is one."""
    if usage is None or (usage.input_tokens is None and usage.output_tokens is None):
        return _budget_text(budget, None)
    record = usage_so_far(steps, model)
    if record is not None:
        from ..usage import footer_text

        return " · ".join(p for p in (footer_text(record), _budget_text(budget, record.cost_usd)) if p)
    parts = []
    if usage.input_tokens is not None:
        parts.append(f"{usage.total_input_tokens:,} in")
    if usage.output_tokens is not None:
        parts.append(f"{usage.output_tokens:,} out")
    rate = usage.cache_hit_rate
    if rate is not None:
        parts.append(f"cache {rate:.0%}")
    return " · ".join(parts)


class CardWidget:
    """The widgets of one tool card. ``set_approval(widget)`` puts an approval widget into its slot."""

    def __init__(self, widgets: Any, card: ToolCard) -> None:
        self.id = card.id
        self.title = widgets.HTML()
        self.args = widgets.HTML()
        self.approval = widgets.Box()
        self.result = widgets.HTML()
        self.box = widgets.VBox([self.title, self.args, self.approval, self.result])
        self.box.layout.border = "1px solid var(--jp-border-color2)"
        self.box.layout.padding = "2px 6px"
        self.box.layout.margin = "2px 0"
        self.box.add_class("claudekit-tool-card")
        self.version = -1

    def set_approval(self, widget: Any | None) -> None:
        self.approval.children = () if widget is None else (widget,)

    def update(self, card: ToolCard) -> None:
        if card.version == self.version:
            return
        self.version = card.version
        icon = _CARD_ICONS.get(card.status, "•")
        kind = "server tool" if card.server else "tool"
        colour = (
            "var(--jp-error-color1)" if card.status in ("error", "invalid") else "var(--jp-ui-font-color1)"
        )
        title = (
            f'<div style="{_FONT} color: {colour};">{icon} <b>{escape(card.name)}</b> '
            f'<span style="color: var(--jp-ui-font-color2);">{kind} · {escape(card.status)}</span></div>'
        )
        _set(self.title, title)
        args = card.arguments_text()
        _set(self.args, f'<pre style="{_PRE}">{escape(args)}</pre>' if args and args != "{}" else "")
        if card.error:
            result = f"invalid arguments: {card.error}"
        elif card.result is not None:
            result = card.result
        else:
            result = ""
        _set(
            self.result,
            f'<div {NO_MATH} style="{_FONT} color: var(--jp-ui-font-color2);">→ {escape(result)}</div>'
            if result
            else "",
        )


def _set(widget: Any, value: str) -> None:
    if widget.value != value:
        widget.value = value


class WidgetRenderer:
    """Renders one reply live with ipywidgets (implements the core's ``Renderer`` protocol)."""

    def __init__(
        self,
        rate: float = 15.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        static: bool = True,
        display: Callable[..., Any] | None = None,
    ) -> None:
        self.throttle = Throttle(rate, clock)
        self.clock = clock
        self.static = static
        self.state = ViewState()
        self._display = display
        self._handle: Any = None
        self._t0 = clock()
        self._shown: dict[str, int] = {}
        self._shown_status = ""
        self._cards: dict[str, CardWidget] = {}
        self._broken = False
        self._held = False  # a change arrived inside the throttle interval and is not shown yet
        self._timer: asyncio.TimerHandle | None = None
        self.refreshes = 0
        self.root: Any = None
        self._budget: dict[str, Any] | None = None  # spent / budget for the live footer (Chat budgets)

    # -- protocol ------------------------------------------------------------------------------
    def start(self, info: dict[str, Any]) -> None:
        self.state = ViewState(str(info.get("model", "")), str(info.get("chat", "")))
        self._budget = info.get("budget")
        self._t0 = self.clock()
        self._guard(self._build)

    def event(self, ev: Event) -> None:
        self.state.apply(ev)
        if self._broken:
            return
        if isinstance(ev, ApprovalRequest):
            self._guard(self._approval, ev)
            self._guard(self.flush)
        elif self.state.status != self._shown_status or self.throttle.ready():
            self._guard(self.flush)
        else:
            self._hold()

    def finish(self, reply: Reply, error: BaseException | None) -> None:
        self.state.finish(reply, error)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._broken:
            return
        if self.static:
            # The live view is replaced right away, so the final state goes straight into the static output.
            self._guard(self._freeze, reply, error)
        else:
            self._guard(self.flush, reply)

    def _hold(self) -> None:
        """Show a held change when the interval ends: a pause in the stream must not hide it."""
        self._held = True
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven without a loop: the next event or finish shows it
            return
        last = self.throttle.last
        waited = 0.0 if last is None else self.clock() - last
        delay = min(max(self.throttle.interval - waited, 0.0), self.throttle.interval)
        self._timer = loop.call_later(delay, self._trailing)

    def _trailing(self) -> None:
        self._timer = None
        if not self._held or self._broken or self.state.final:
            return
        if not self.throttle.ready():  # a status change refreshed since this timer was set: wait again
            self._hold()
            return
        self._guard(self.flush)

    # -- building ------------------------------------------------------------------------------
    def _guard(self, fn: Callable[..., Any], *args: Any) -> None:
        """Rendering must never break the stream: the first failure turns the view off, with one note."""
        try:
            fn(*args)
        except Exception as exc:
            self._broken = True
            print(
                f"claudekit: the live view failed ({type(exc).__name__}: {exc}); rendering is off",
                file=sys.stderr,
            )

    def _show(self, obj: Any, **kw: Any) -> Any:
        if self._display is not None:
            return self._display(obj, **kw)
        from IPython import display as ipd

        show: Any = ipd.display
        return show(obj, **kw)

    def _build(self) -> None:
        import ipywidgets as w

        self._w = w
        self.header = w.HTML()
        self.answer = w.Output()
        self.footer = w.HTML()
        # Thinking, tool cards and extras are created when first needed: fewer comms for plain answers.
        self.thinking: Any = None
        self.thinking_html: Any = None
        self.tools: Any = None
        self.extras: Any = None
        self.root = w.VBox([self.header, self.answer, self.footer])
        self.root.add_class("claudekit-view")
        self.root.layout.border_left = "3px solid var(--jp-brand-color2)"
        self.root.layout.padding = "0 0 0 8px"
        self.flush()
        bundle = {
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.root.model_id,
            },
            "text/plain": "",
        }
        self._handle = self._show(bundle, raw=True, display_id=True)

    def _relayout(self) -> None:
        parts = (self.header, self.thinking, self.tools, self.answer, self.extras, self.footer)
        self.root.children = tuple(p for p in parts if p is not None)

    def _ensure_thinking(self) -> Any:
        if self.thinking is None:
            w = self._w
            self.thinking_html = w.HTML()
            self.thinking = w.Accordion(children=[self.thinking_html], titles=("Thinking",))
            self.thinking.selected_index = None
            self._relayout()
        return self.thinking

    def _ensure_tools(self) -> Any:
        if self.tools is None:
            self.tools = self._w.VBox()
            self._relayout()
        return self.tools

    def _ensure_extras(self) -> Any:
        if self.extras is None:
            self.extras = self._w.HTML()
            self._relayout()
        return self.extras

    def card_widget(self, card_id: str) -> CardWidget | None:
        """The widgets of a tool card (e.g. to put an approval widget in with ``set_approval``)."""
        return self._cards.get(card_id)

    def _approval(self, ev: ApprovalRequest) -> None:
        """Claim each pending call and put its approval widget (tools layer) into the call's card."""
        try:
            from ._approval import approval_widget
        except ImportError:
            return  # no approval widget available: the chat's unattended policy decides
        for i, item in enumerate(ev.pending):
            card_id = str(getattr(item, "id", ""))
            card = self.state.cards.get(card_id)
            if card is None:
                continue
            claim = getattr(item, "claim", None)
            if callable(claim) and claim() is False:
                continue  # someone else shows this call
            cw = self._cards.get(card_id)
            if cw is None:
                cw = self._cards[card_id] = CardWidget(self._w, card)
                tools = self._ensure_tools()
                tools.children = (*tools.children, cw.box)
            # "Approve all" / "Deny all" once per step, on the first card.
            widget = approval_widget(item, group_controls=(i == 0), in_card=True)
            cw.set_approval(widget)

    # -- refreshing ----------------------------------------------------------------------------
    def _changed(self, section: str) -> bool:
        v = self.state.versions[section]
        if self._shown.get(section) == v:
            return False
        self._shown[section] = v
        return True

    def _elapsed(self) -> str:
        secs = self.clock() - self._t0
        if self.state.final:
            return f"{secs:.1f} s"
        return f"{int(secs)} s"

    def flush(self, reply: Reply | None = None) -> None:
        """Push every changed section to the widgets now."""
        if self.root is None and not hasattr(self, "header"):
            return
        self.throttle.mark()
        self._held = False
        self.refreshes += 1
        st = self.state
        self._shown_status = st.status
        self._changed("header")
        colour = _STATUS_COLOURS.get(st.status, "var(--jp-ui-font-color1)")
        model = escape(st.model) if st.model else ""
        header = (
            f'<div style="{_FONT} color: var(--jp-ui-font-color2);">'
            # The dot carries the status colour; the word stays in the text colour, since theme accent
            # colours (warn, success) fall below 4.5:1 contrast as text (tests/browser measure it).
            f'<b style="color: {colour};">●</b> <b style="color: var(--jp-ui-font-color1);">'
            f"{escape(st.status)}</b>"
            f"{' · ' + model if model else ''} · {self._elapsed()}</div>"
        )
        if st.error:
            error_style = f"{_FONT} color: var(--jp-error-color1);"
            header += f'<div {NO_MATH} style="{error_style}">{escape(st.error)}</div>'
        _set(self.header, header + _HEADER_STYLE)
        if self._changed("thinking") and st.has_thinking:
            self._ensure_thinking()
            label = st.thinking_label()
            if tuple(self.thinking.titles) != (label,):
                self.thinking.titles = (label,)
            text = st.thinking
            _set(self.thinking_html, f'<pre style="{_PRE}">{escape(text)}</pre>' if text else "")
        if self._changed("tools"):
            new = []
            for card in st.cards.values():
                cw = self._cards.get(card.id)
                if cw is None:
                    cw = self._cards[card.id] = CardWidget(self._w, card)
                    new.append(cw.box)
                cw.update(card)
            if new:
                tools = self._ensure_tools()
                tools.children = (*tools.children, *new)
        if self._changed("text"):
            text = st.text
            self.answer.outputs = (
                (
                    {
                        "output_type": "display_data",
                        "data": {"text/markdown": text, "text/plain": text},
                        "metadata": {},
                    },
                )
                if text
                else ()
            )
        if self._changed("extras") and (st.server_blocks or st.citations):
            rows = [f"🔎 {escape(t.replace('_', ' '))}: {escape(s)}" for t, s in st.server_blocks]
            if st.citations:
                rows.append(
                    "Sources: " + "; ".join(f"[{i}] {escape(c)}" for i, c in enumerate(st.citations, 1))
                )
            _set(
                self._ensure_extras(),
                f'<div {NO_MATH} style="{_FONT} color: var(--jp-ui-font-color2);">{"<br>".join(rows)}</div>'
                if rows
                else "",
            )
        if self._changed("footer") or reply is not None:
            line = (
                footer_line(reply)
                if reply is not None
                else _usage_line(st.model, st.total_usage(), list(st.step_usage.values()), self._budget)
            )
            _set(
                self.footer,
                f'<div {NO_MATH} style="font-family: var(--jp-ui-font-family); '
                'font-size: var(--jp-ui-font-size0); color: var(--jp-ui-font-color2);">'
                f"{escape(line)}</div>"
                if line
                else "",
            )

    def _freeze(self, reply: Reply, error: BaseException | None) -> None:
        """Replace the live view by a static rendering that survives without a kernel."""
        bundle = static_bundle(reply, error)
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)
        if self.root is not None:
            _close_tree(self.root)
        self._show(bundle, raw=True)


def _close_tree(widget: Any) -> None:
    """Close a widget, its children, and their layout and style models (frees them in the kernel)."""
    for child in getattr(widget, "children", ()) or ():
        _close_tree(child)
    for attr in ("layout", "style"):
        sub = getattr(widget, attr, None)
        if sub is not None and hasattr(sub, "close"):
            sub.close()
    widget.close()
