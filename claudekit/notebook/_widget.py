"""The live view of a reply (claudekit's own front end), and the saved copy it becomes.

One widget per reply (:class:`~claudekit.notebook._front.DocWidget`). The kernel sends what changed
as one custom message per refresh: appended answer text, appended reasoning, a tool card when it
changes, the status and the footer. So the bytes sent grow linearly with the answer, and the page
renders the Markdown itself (with marked, under the rules of claudekit._base._markup that make the saved
copy). The page ticks the elapsed seconds and animates a typing indicator on its own, between
messages; its Stop button calls the turn's ``stop`` (the path of a kernel interrupt).

Layout, in the order things happened: the reasoning (a collapsed ``<details>``), then text runs and tool
cards interleaved as the model produced them, server-tool blocks and citations, an error line, the
status line (live only) and the footer. It is the layout of the saved Markdown copy
(:func:`~claudekit.notebook.static_bundle`, safe HTML), so nothing jumps when the reply ends.

Refreshes are throttled (:class:`~claudekit.notebook.Throttle`): the first event and every status
change go out at once, the rest at most ``rate`` times a second (a timer shows a held change when the
interval ends); past ~75 KB of message envelopes a refresh waits until the answer has grown enough to
pay for it, or 2 s (bytes ≤ 3 × answer + 150 KB). ``finish`` flushes the final state (unless no page
showed the view: its output is emptied then). The first refresh travels in the widget's opening state;
while a refresh is already scheduled, a text delta costs one list append (the renderer's fast lane).

When the reply ends and a page showed the view, the view's own output is replaced by the saved copy
(``update_display_data``): one output per reply in the saved notebook. Under nbconvert, nbval or
papermill (:func:`~claudekit.notebook.headless`) no view is drawn at all: the saved copy is the one output.
When no page showed it elsewhere (a frontend without widgets), the saved copy is displayed as a new output
and the view's output is emptied: nbval compares that run with the saved notebook the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._base._events import ApprovalRequest, TextDelta
from .._seams import View
from ._pages import ViewSet, watch_pages
from ._state import TextPart, ToolCard, ViewState, preview
from ._static import cut_note, footer_line, static_bundle, usage_so_far
from ._throttle import Throttle

if TYPE_CHECKING:
    from .._base._events import Event, Usage
    from .._base._reply import Reply
    from .._tooling._approval import PendingCall

__all__ = ["WidgetRenderer"]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_MESSAGE_BYTES = 700  # a comm message's envelope (header, parent header, ids), measured in a kernel
# Envelopes may cost up to this plus the answer's own bytes: with the front-end code (~62 KB, once per
# kernel since it travels in a shared model; it used to be once per reply) and the saved copy (~1x the
# answer) a reply stays within 3x the answer + 150 KB.
_FREE_BYTES = 75_000
_SLOW_INTERVAL = 2.0  # past that allowance, at least one refresh this often (the page ticks meanwhile)


def _idle(stream: Any) -> bool:
    """True when an ipykernel output stream holds no text waiting to be sent (False when unsure)."""
    return getattr(stream, "_flush_pending", None) is False and not getattr(
        stream, "_subprocess_flush_pending", True
    )


def _nothing() -> None:
    return None


@contextlib.contextmanager
def _no_idle_flush() -> Any:
    """Displays here skip ipykernel's flush of stdout and stderr when neither holds any text.

    Before every display or update the kernel flushes both streams so that printed text comes first: a
    round trip to its IO thread each (~0.25 ms of a display's ~0.35 ms, measured; a reply displays up
    to three times). With nothing buffered that flush sends nothing, and the display message goes
    through the same IO thread after anything it is still sending, so the order stays. Any doubt (an
    ipykernel without these attributes, text pending) keeps the flush.
    """
    from IPython import get_ipython

    shell = get_ipython()  # type: ignore[no-untyped-call]
    pub = getattr(shell, "display_pub", None)
    if pub is None or "_flush_streams" in vars(pub) or not (_idle(sys.stdout) and _idle(sys.stderr)):
        yield
        return
    pub._flush_streams = _nothing
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError):
            del pub._flush_streams


def _usage_line(model: str, usage: Usage | None, steps: list[Usage], streamed: int) -> str:
    """The live footer: tokens, cache and cost so far; output tokens estimated while text streams."""
    if usage is None or (usage.input_tokens is None and usage.output_tokens is None):
        return ""
    record = usage_so_far(steps, model)
    if record is None:
        return ""
    from ..usage import footer_text

    estimate = streamed // 4  # the API reports output tokens at the end of a call; ~4 characters each
    if record.output_tokens is not None and estimate > record.output_tokens:
        import dataclasses

        record = dataclasses.replace(record, output_tokens=estimate)
        return "≈ " + footer_text(record.priced())
    return footer_text(record)


def _budget_text(budget: dict[str, Any] | None, model: str, steps: list[Usage]) -> str:
    """``spent / budget`` for the live footer: spent before this reply plus this reply so far."""
    if not budget:
        return ""
    record = usage_so_far(steps, model) if steps else None
    spent = float(budget["spent_usd"]) + ((record.cost_usd or 0.0) if record is not None else 0.0)
    return f"{budget['scope']} budget: ${spent:,.4f} / ${float(budget['budget_usd']):,.4f}"


def _card_json(card: ToolCard, ran: Any) -> dict[str, Any]:
    args = ""
    if card.status != "streaming":
        import json

        value = ran if ran is not None else card.input
        if value is not None:
            try:
                args = json.dumps(value, indent=2, ensure_ascii=False, default=str)
            except (TypeError, ValueError):
                args = repr(value)
    result = f"invalid arguments: {preview(card.error)}" if card.error else (card.result or "")
    if card.decided:
        from ._approval import card_result

        result = card_result(card.status, result, card.decided)
    out: dict[str, Any] = {
        "id": card.id,
        "name": card.name,
        "status": card.status,
        "args": args,
        "result": result,
    }
    if card.server:
        out["server"] = True
    if card.server_name:
        out["mcp"] = card.server_name
    if card.details:
        out["details"] = list(card.details)
    if card.decided:
        out["decided"] = card.decided
    return out


class WidgetRenderer(View):
    """Renders one reply live in the page (implements the core's ``Renderer`` protocol)."""

    def __init__(
        self,
        rate: float = 15.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        static: bool = True,
        display: Callable[..., Any] | None = None,
        widget_factory: Callable[..., Any] | None = None,
        math: bool = False,
    ) -> None:
        self.throttle = Throttle(rate, clock)
        self.clock = clock
        self.static = static
        self.math = math
        self.state = ViewState()
        self._budget: dict[str, Any] | None = None  # spent / budget for the live footer (Chat budgets)
        self._display = display
        self._factory = widget_factory
        self._handle: Any = None
        self._t0 = clock()
        self._broken = False
        self._held = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: Callable[[], None] | None = None
        self._building: asyncio.Handle | None = None
        self.refreshes = 0
        self.root: Any = None
        self.views = 0  # views of the live view the page reported now
        self.viewset = ViewSet()
        self.seen = False  # a page showed the view at least once
        self.reconnected = False  # a page reloaded while this reply ran (see _pages)
        self.headless = False  # no page can show a view (nbconvert, nbval): only the saved copy
        self.pending: dict[str, PendingCall] = {}
        self.ran: dict[str, Any] = {}  # arguments that ran when a person edited them
        self._sent_text: dict[int, int] = {}
        self._sent_cards: dict[str, tuple[int, str | None]] = {}
        self._sent_fragments: dict[str, int] = {}
        self._sent: dict[str, Any] = {"extras": "", "error": "", "foot": "", "status": None}
        self._thinking_sent = 0
        self._envelopes = 0  # bytes of message envelopes sent (estimated)
        self._content = 0  # bytes of answer, reasoning and arguments sent
        self._messages = 0
        # The fast lane: while a refresh is already scheduled and only answer text arrives, a delta is
        # appended to the current text run's chunks and nothing else happens (the scheduled refresh
        # shows it). The per-delta cost is then one list append, whatever the answer's length.
        self._lane: list[str] | None = None
        self._lane_part: TextPart | None = None
        self._lane_from = 0  # the run's length when the lane opened
        self._lane_block = -1  # the content block the lane extends (a new block goes through the state)
        self._sources_sent = 0

    # -- protocol ------------------------------------------------------------------------------
    def start(self, info: dict[str, Any]) -> None:
        self.reply = info.get("reply")
        self.state = ViewState(str(info.get("model", "")), str(info.get("chat", "")))
        self._budget = info.get("budget")
        self._t0 = self.clock()
        stop = info.get("stop")
        self._stop = stop if callable(stop) else None
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        if self._display is None:  # in a kernel: claudekit's errors show as one line in the cell
            from ._errors import install

            install()
        if self._display is None and self.static:
            from ._where import headless

            self.headless = headless()
            if self.headless:
                return  # no page will ever show a view: the saved copy, at the end, is the only output
        if self._loop is not None:
            # Built when the turn first waits (for the HTTP response): off the reply's critical path,
            # and not at all for a reply that finished before the loop turned (it shows its saved copy).
            self._building = self._loop.call_soon(self._guard, self._build)
        else:
            self._guard(self._build)

    def event(self, ev: Event) -> None:
        lane = self._lane
        if lane is not None:
            if ev.__class__ is TextDelta and ev.index == self._lane_block:  # type: ignore[union-attr]
                lane.append(ev.text)  # type: ignore[union-attr]
                return
            self._settle()
        st = self.state
        st.apply(ev)
        if self._broken:
            return
        if self._timer is not None and st.status == self._sent["status"] and type(ev) is not ApprovalRequest:
            self._held = True  # a refresh is already set for the end of the interval: it will show this
            if ev.__class__ is TextDelta:
                self._open_lane()
            return
        if isinstance(ev, ApprovalRequest):
            self._guard(self._approval, ev)
            self._guard(self.flush)
        elif st.status != self._sent["status"] or self._due():
            self._guard(self.flush)
        else:
            self._hold()

    def finish(self, reply: Reply, error: BaseException | None) -> None:
        self._settle()
        self.state.finish(reply, error)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for call_id, pending in self.pending.items():
            card = self.state.cards.get(call_id)
            if card is not None and pending.decision is not None:
                from ._approval import decision_text

                card.decided = decision_text(pending.decision)
        if self._broken:
            return
        if self._building is not None and self.root is None:
            self._building.cancel()
            if not self.static:
                self._guard(self._build)
        if self.seen or not self.static:
            # Not when the saved copy is about to take the place of a view no page showed: the view's
            # output is emptied, so its final state would be bytes (and a message) for nobody.
            self._guard(self.flush, reply)
        if self.static:
            self._guard(self._freeze, reply, error)

    # -- throttling ----------------------------------------------------------------------------
    def _open_lane(self) -> None:
        """Let the next text deltas skip the state machine (see ``_lane``): they extend this run."""
        st = self.state
        part = st._last_text
        if part is None or not st.parts or st.parts[-1] is not part or part.step != st.step:
            return
        self._lane_from = len(part.text)
        self._lane_block = part.block
        self._lane_part = part
        self._lane = part.chunks

    def _settle(self) -> None:
        """Close the fast lane: the state counts the text that went through it."""
        part = self._lane_part
        self._lane = self._lane_part = None
        if part is None:
            return
        grown = len(part.text) - self._lane_from
        if grown:
            self.state.chars += grown
            self.state.versions["text"] += 1

    def _due(self) -> bool:
        """A refresh may go out now: the rate allows it, and so does the byte budget."""
        if not self.throttle.ready():
            return False
        if self._envelopes <= _FREE_BYTES + self._content or self.throttle.last is None:
            return True
        return self.clock() - self.throttle.last >= _SLOW_INTERVAL

    def _hold(self) -> None:
        """Show a held change when the interval ends: a pause in the stream must not hide it."""
        self._held = True
        if self._timer is not None or self._loop is None:
            return
        last = self.throttle.last
        waited = 0.0 if last is None else self.clock() - last
        interval = self.throttle.interval
        if self._envelopes > _FREE_BYTES + self._content:
            interval = max(interval, _SLOW_INTERVAL)
        delay = min(max(interval - waited, 0.0), interval)
        try:
            self._timer = self._loop.call_later(delay, self._trailing)
        except RuntimeError:  # the loop is closed
            self._timer = None

    def _trailing(self) -> None:
        self._timer = None
        if not self._held or self._broken or self.state.final:
            return
        if not self._due():  # a status change refreshed since this timer was set: wait again
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

    def _quick(self) -> Any:
        """Updates of the view's output skip an idle flush in a kernel (not with an injected display)."""
        return contextlib.nullcontext() if self._display is not None else _no_idle_flush()

    def _show(self, obj: Any, **kw: Any) -> Any:
        if self._display is not None:
            return self._display(obj, **kw)
        from IPython import display as ipd

        show: Any = ipd.display
        with _no_idle_flush():
            return show(obj, **kw)

    def _build(self) -> None:
        self._building = None
        if self.state.final and self.static:
            return  # finished before the view was needed
        from ._code import ignoring_frontend

        # The page offers Copy only: Insert below would do nothing.
        caps = [["caps", {"insert": False}]] if ignoring_frontend() is not None else []
        if self._factory is not None:
            self.root = self._factory(self._message)
            self._push(caps)
            self.flush()
        else:
            from ._front import DocWidget

            # The first refresh rides in the widget's opening state: one message fewer per reply, and a
            # page shows it as soon as the module loads (a message sent before that would be missed).
            self.root = DocWidget(self._message, caps + self._refresh())
            watch_pages(self)
        # The widget view alone: nbval skips this mime type, so this output compares as nothing.
        bundle = {WIDGET_MIME: {"version_major": 2, "version_minor": 0, "model_id": self.root.model_id}}
        self._handle = self._show(bundle, raw=True, display_id=True)

    # -- what the page says ----------------------------------------------------------------------
    def _message(self, content: dict[str, Any]) -> None:
        """A message from the page; handled on the event loop (it may arrive on a subshell thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._guard(self._handle_message, content)
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody listens any more
            loop.call_soon_threadsafe(self._guard, self._handle_message, content)

    def _handle_message(self, content: dict[str, Any]) -> None:
        from ._approval import apply_decision, arguments_problem

        kind = content.get("kind")
        if kind == "view":
            self.views = self.viewset.update(content)
            self.seen = self.seen or self.views > 0
            for pending in self.pending.values():
                pending.views_changed(self.views)
        elif kind == "page":
            self._page_connected()
        elif kind == "stop":
            if self._stop is not None and not self.state.final:
                self._stop()
        elif kind == "validate":
            asked = self.pending.get(str(content.get("id")))
            text = content.get("text")
            if asked is not None and isinstance(text, str):
                _, problem = arguments_problem(asked, text)
                self._push([["problem", asked.id, content.get("n"), problem]])
        elif kind == "decide":
            refused = apply_decision(self.pending, content)
            if refused is not None:
                self._push([["problem", refused[0], -1, refused[1]]])
        elif kind == "insert":
            self._insert(content.get("code"))

    def page_connected(self) -> None:
        """A page connected its widgets (a reload, another tab): called on the kernel's comm thread."""
        self._message({"kind": "page"})

    def _page_connected(self) -> None:
        """Forget the views and ask the page's views to report again; a waiting card that does not come
        back ends with the unattended policy (PendingCall.page_reconnected)."""
        if self.state.final or self.root is None:
            return
        self.reconnected = True
        self.viewset.forget()
        self.views = 0
        ping = getattr(self.root, "ping", None)
        if callable(ping):
            ping()
        for pending in self.pending.values():
            if not pending.done:
                pending.page_reconnected()

    def _insert(self, code: Any) -> None:
        """A code block's Insert below: a new cell with it when this cell ends (``set_next_input``).

        Only while the reply runs: the payload rides on the running cell's execute reply, so a click
        after the cell ended would land on whichever cell runs next (the page hides the button then).
        """
        if not isinstance(code, str) or not code.strip() or self.state.final:
            return
        from IPython import get_ipython

        shell = get_ipython()  # type: ignore[no-untyped-call]
        if shell is not None:
            shell.set_next_input(code, replace=False)

    def _approval(self, ev: ApprovalRequest) -> None:
        """Claim each pending call whose card this view shows: the card gets the approval controls."""
        for item in ev.pending:
            card = self.state.cards.get(str(getattr(item, "id", "")))
            if card is None:
                continue
            claim = getattr(item, "claim", None)
            # Headless, nobody can click: left unclaimed, the policy's unattended fallback decides at once.
            if not self.headless and callable(claim) and claim() is False:
                continue  # someone else shows this call
            self.pending[card.id] = item
            track = getattr(item, "track_views", None)
            if callable(track) and not self.headless:
                track()
                if self.views:
                    item.views_changed(self.views)
            on_decided = getattr(item, "on_decided", None)
            if callable(on_decided):
                on_decided(self._decided)
            card.version += 1

    def _decided(self, pending: PendingCall) -> None:
        from ._approval import decision_text

        card = self.state.cards.get(pending.id)
        if card is None or pending.decision is None:
            return
        card.decided = decision_text(pending.decision)
        if pending.decision.approved and pending.decision.arguments is not None:
            self.ran[pending.id] = pending.decision.arguments
        card.version += 1
        if not self.state.final:
            self._guard(self.flush)

    # -- refreshing ----------------------------------------------------------------------------
    def _push(self, ops: list[list[Any]]) -> None:
        if not ops or self.root is None:
            return
        self.root.push(ops)
        self._messages += 1
        self._envelopes += _MESSAGE_BYTES

    def _elapsed(self) -> float:
        return round(self.clock() - self._t0, 1)

    def _set(self, ops: list[list[Any]], key: str, value: Any, op: list[Any]) -> None:
        if self._sent.get(key) != value:
            self._sent[key] = value
            ops.append(op)

    def flush(self, reply: Reply | None = None) -> None:
        """Send every change since the last refresh, in one message."""
        if self.root is not None:
            self._push(self._refresh(reply))

    def _refresh(self, reply: Reply | None = None) -> list[list[Any]]:
        """A refresh: the ops that bring a page from the last refresh to now (noted as sent)."""
        self._settle()
        self.throttle.mark()
        self._held = False
        self.refreshes += 1
        st = self.state
        ops: list[list[Any]] = []
        if not st.final:
            self._set(ops, "status", st.status, ["status", st.status, self._elapsed(), st.model])
        if st.has_thinking:
            self._set(ops, "think_label", st.thinking_label(), ["think_label", st.thinking_label()])
            thinking = st.thinking
            if len(thinking) > self._thinking_sent:
                ops.append(["think", thinking[self._thinking_sent :]])
                self._content += len(thinking) - self._thinking_sent
                self._thinking_sent = len(thinking)
        for n in range(self._sources_sent, len(st.sources)):
            ops.append(["source", n + 1, st.sources[n]])  # before the markers that show it
        self._sources_sent = len(st.sources)
        for i, part in enumerate(st.parts):
            if isinstance(part, TextPart):
                self._text_op(ops, i, part)
                if part.cites:
                    marks = part.marks()
                    self._set(ops, f"cites {i}", marks, ["cites", i, marks])
            else:
                self._card_op(ops, i, st.cards[part])
        extras = self._extras_html(reply)
        self._set(ops, "extras", extras, ["extras", extras])
        self._set(ops, "error", st.error or "", ["error", st.error or ""])
        if reply is not None:
            ops.append(["final", st.status, "claudekit · " + footer_line(reply)])
        else:
            line = _usage_line(
                st.model, st.total_usage(), list(st.step_usage.values()), st.chars + self._thinking_sent
            )
            budget = _budget_text(self._budget, st.model, list(st.step_usage.values()))
            line = " · ".join(p for p in (line, budget) if p)
            line = f"claudekit · {line}" if line else ""
            self._set(ops, "foot", line, ["foot", line])
        return ops

    def _text_op(self, ops: list[list[Any]], i: int, part: TextPart) -> None:
        text = part.text
        sent = self._sent_text.get(i, 0)
        if len(text) > sent:
            ops.append(["text", i, text[sent:]])
            self._sent_text[i] = len(text)
            self._content += len(text) - sent

    def _card_op(self, ops: list[list[Any]], i: int, card: ToolCard) -> None:
        if card.status == "streaming":
            # The raw JSON as it streams: only the new fragments travel.
            done = self._sent_fragments.get(card.id, 0)
            if card.id not in self._sent_cards:
                ops.append(["tool", i, _card_json(card, None)])
                self._sent_cards[card.id] = (card.version, None)
            if len(card.fragments) > done:
                new = "".join(card.fragments[done:])
                ops.append(["targs", card.id, new])
                self._sent_fragments[card.id] = len(card.fragments)
                self._content += len(new)
            return
        key = (card.version, card.decided)
        if self._sent_cards.get(card.id) == key:
            return
        self._sent_cards[card.id] = key
        data = _card_json(card, self.ran.get(card.id))
        pending = self.pending.get(card.id)
        if pending is not None and not pending.done and card.status == "awaiting approval":
            from ._approval import card_approval

            first = next(iter(p for p in pending.group if p.id in self.pending), pending) is pending
            data["approval"] = card_approval(pending, first=first)
        self._content += len(data["args"])
        ops.append(["tool", i, data])

    def _extras_html(self, reply: Reply | None = None) -> str:
        from html import escape

        from .._base._markup import clean

        st = self.state
        rows = [f"🔎 {escape(t.replace('_', ' '))}: {escape(s)}" for t, s in st.server_blocks]
        if st.citations:
            rows.append("Sources: " + "; ".join(f"[{i}] {escape(c)}" for i, c in enumerate(st.citations, 1)))
        cut = cut_note(reply) if reply is not None else None
        if cut is not None:
            rows.append(f"✂ <b>{escape(cut)}</b>")
        return clean("<br>".join(rows))

    def _freeze(self, reply: Reply, error: BaseException | None) -> None:
        """Leave the saved copy: in place of the view when a page showed it, else as a new output."""
        from ._errors import hook_active

        decisions = {cid: (card.decided, self.ran.get(cid)) for cid, card in self.state.cards.items()}
        bundle = static_bundle(
            reply, error, decisions=decisions, show_error=not hook_active(), math=self.math
        )
        if self._handle is not None and self.seen:
            with self._quick():
                self._handle.update(bundle, raw=True)
        else:
            if self._handle is not None:
                with self._quick():
                    self._handle.update({}, raw=True)
            self._show(bundle, raw=True)
        if self.root is not None and not self.reconnected:
            # After a reload the page no longer knows this cell's display id, so the saved copy above
            # never reaches it: the view stays open and shows the finished reply instead.
            self.root.close()
