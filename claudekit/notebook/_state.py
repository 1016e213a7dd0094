"""The live view's state machine: pure Python, no widgets.

:class:`ViewState` consumes the events of one reply and holds what a view shows: the status, the
reasoning, one :class:`ToolCard` per tool call, server-tool blocks, citations, the answer text and the
usage so far. Each section carries a version number that changes when the section changes, so that a
renderer only pushes what is new. Nothing here parses tool arguments eagerly: the last
:class:`~claudekit.ToolCallDelta` of each call is kept and parsed only when a renderer asks
(:meth:`ToolCard.arguments`), i.e. at throttled refreshes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._base._citations import location
from .._base._errors import INTERRUPTS
from .._base._events import (
    ApprovalRequest,
    Citation,
    MessageDone,
    MessageStart,
    RedactedThinking,
    ServerToolBlock,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallReady,
    ToolCallStart,
    ToolResult,
    UnknownEvent,
    Usage,
    UsageUpdate,
)

if TYPE_CHECKING:
    from .._base._events import Event
    from .._base._reply import Reply

__all__ = [
    "SECTIONS",
    "STATUSES",
    "TextPart",
    "ToolCard",
    "ViewState",
    "citation_key",
    "citation_source",
    "citation_text",
    "preview",
    "server_block_summary",
]

#: Overall statuses, in the order a reply usually goes through them.
STATUSES = (
    "waiting",
    "thinking",
    "calling tools",
    "awaiting approval",
    "writing",
    "done",
    "interrupted",
    "error",
)
#: The sections a view is made of; each has a version in :attr:`ViewState.versions`.
SECTIONS = ("header", "thinking", "tools", "text", "extras", "footer")
FINAL_STATUSES = ("done", "interrupted", "error")


_CITED_MAX = 2_000  # characters of cited text a marker carries (the saved copy's sources shorten it more)
_EDIT_NOTE = "Note: the user edited the arguments before approving"


def _without_edit_note(content: Any) -> Any:
    """The tool's own result: the note telling the model about edited arguments is shown elsewhere."""
    if isinstance(content, str) and content.startswith(_EDIT_NOTE):
        return content.partition("\n\n")[2]
    first = content[0] if isinstance(content, list) and content else None
    if isinstance(first, dict) and str(first.get("text", "")).startswith(_EDIT_NOTE):
        return content[1:]
    return content


def preview(content: Any, limit: int = 200) -> str:
    """A one-line preview of a tool result (a string, content blocks, or any JSON-able value)."""
    content = _without_edit_note(content)
    if isinstance(content, str):
        text = content
    elif isinstance(content, list) and all(isinstance(b, dict) for b in content):
        parts = []
        for b in content:
            if b.get("type") == "text":
                parts.append(str(b.get("text", "")))
            else:
                parts.append(f"[{b.get('type', 'block')}]")
        text = " ".join(parts)
    else:
        try:
            text = json.dumps(content, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(content)
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _host(url: Any) -> str:
    text = str(url or "")
    return text.split("/")[2] if text.count("/") >= 2 else text


def server_block_details(block_type: str, block: Any) -> list[str]:
    """What a server tool returned, as inert lines (plain text; the view escapes them, no links):
    search results as ``title — host``, a fetched page's title and host, code's exit code, stdout and
    stderr, an MCP connector result's text."""
    content = _get(block, "content")
    if _get(content, "error_code") is not None:
        return []
    if block_type == "web_search_tool_result" and isinstance(content, list):
        return [
            f"{preview(str(_get(r, 'title') or ''), 100)} — {_host(_get(r, 'url'))}" for r in content[:10]
        ]
    if block_type == "web_fetch_tool_result":
        doc = _get(content, "content")
        title = _get(doc, "title") or "untitled page"
        return [f"fetched “{preview(str(title), 100)}” — {_host(_get(content, 'url'))}"]
    if block_type.endswith("code_execution_tool_result"):
        code = _get(content, "return_code")
        lines = [] if code is None else [f"exit code {code}"]
        for stream in ("stdout", "stderr"):
            text = _get(content, stream)
            if isinstance(text, str) and text.strip():
                lines.append(f"{stream}: {_clip(text, 600)}")
        outputs = _get(content, "content")
        for out in outputs if isinstance(outputs, list) else []:
            if _get(out, "file_id"):
                lines.append(f"file: {_get(out, 'file_id')}")  # made in the container (Files API id)
        return lines
    if block_type == "mcp_tool_result":
        texts = content if isinstance(content, list) else [content]
        joined = " ".join(str(_get(t, "text") or t or "") for t in texts if t is not None)
        return [_clip(joined, 600)] if joined.strip() else []
    return []


def _clip(text: str, limit: int) -> str:
    """Multi-line output kept as lines (the view shows them pre-wrapped), cut at ``limit`` characters."""
    text = text.rstrip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def server_block_summary(block_type: str, block: Any) -> str:
    """A short description of a server-tool result block (web search results, code output, …)."""
    content = _get(block, "content")
    code = _get(content, "error_code")
    if code is not None:
        return f"error: {code}"
    if block_type == "web_fetch_tool_result":
        title = _get(_get(content, "content"), "title")
        return preview(
            f"“{title}” ({_host(_get(content, 'url'))})" if title else str(_get(content, "url")), 120
        )
    if block_type == "mcp_tool_result":
        said = " ".join(server_block_details(block_type, block))
        if _get(block, "is_error"):
            return "error: " + preview(said or "the tool failed", 100)
        return preview(said, 120) if said else "no text"
    if isinstance(content, list):
        titles = [str(_get(r, "title") or _get(r, "url") or "") for r in content[:3]]
        titles = [t for t in titles if t]
        more = f": {'; '.join(titles)}" if titles else ""
        return f"{len(content)} result{'s' if len(content) != 1 else ''}{more}"
    if content is not None:
        for attr in ("stdout", "text", "url"):
            value = _get(content, attr)
            if isinstance(value, str) and value:
                return preview(value, 120)
        return preview(block_type.replace("_", " "), 120)
    return block_type.replace("_", " ")


def citation_text(citation: Any) -> str:
    """A compact citation: the source (``title (url)`` for a web result, a document's title), where in it
    (``p. 2``, ``chars 10–52``) and the cited text shortened. Model-written: the caller escapes it."""
    title = _get(citation, "title") or _get(citation, "document_title")
    url = _get(citation, "url")
    head = str(title) if title else (str(url) if url else str(_get(citation, "type") or "source"))
    if url and title:
        head += f" ({url})"
    index = _get(citation, "document_index")
    if url is None and isinstance(index, int) and not title:
        head = f"document {index + 1}"
    where = location(citation) if url is None else ""
    if where:
        head += f", {where}"
    cited = _get(citation, "cited_text")
    if cited:
        # A web page is cited passage by passage: without the passage, two of them would read as one.
        head += f": “{preview(str(cited), 120)}”"
    return head


def citation_key(citation: Any) -> tuple[str, str]:
    """What numbers a source, in the live view and the saved copy alike: one number per cited passage
    (a page's or a document's), so each marker shows the passage its own sentence cited."""
    return citation_text(citation), str(_get(citation, "cited_text") or "")


def citation_source(citation: Any) -> dict[str, str]:
    """What a citation marker shows: the source's name, where in it, and the cited text (model-written:
    the page puts each in as text only)."""
    title = _get(citation, "title") or _get(citation, "document_title")
    url = _get(citation, "url")
    index = _get(citation, "document_index")
    if title:
        name = str(title)
    elif url:
        name = str(url)
    else:
        name = f"document {index + 1}" if isinstance(index, int) else str(_get(citation, "type") or "source")
    cited = str(_get(citation, "cited_text") or "")
    where = location(citation) if url is None else str(url)
    return {"name": name, "where": where, "cited": cited[:_CITED_MAX]}


@dataclass
class ToolCard:
    """One tool call as the view shows it.

    ``status``: ``streaming`` (arguments arriving) → ``ready`` (complete) or ``invalid`` (malformed or
    cut off) → ``awaiting approval`` → ``running`` → ``done`` / ``error`` / ``denied``; at the end of an
    interrupted reply an unfinished call becomes ``interrupted``, and a call nothing ran ``not run``.
    """

    id: str
    name: str
    server: bool = False
    step: int = 0
    server_name: str | None = None  # the MCP server that provides the tool
    details: list[str] = field(default_factory=list)  # a server tool's results, as inert lines
    status: str = "streaming"
    input: Any = None
    error: str | None = None
    result: str | None = None
    is_error: bool = False
    decision: str | None = None
    decided: str | None = None  # who decided what, for people ("Approved by you")
    version: int = 0
    _delta: ToolCallDelta | None = field(default=None, repr=False, compare=False)
    fragments: list[str] = field(default_factory=list, repr=False, compare=False)

    def arguments(self) -> Any:
        """The arguments: final once ready, else parsed from the fragments so far (lazily, here)."""
        if self._delta is not None:
            parsed = self._delta.partial
            if parsed is not None:
                self.input = parsed
            self._delta = None
        return self.input

    def arguments_text(self, indent: int | None = 2) -> str:
        args = self.arguments()
        if args is None:
            return ""
        try:
            return json.dumps(args, indent=indent, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return repr(args)


@dataclass
class TextPart:
    """A run of answer text between tool cards (one per API call at least)."""

    step: int
    chunks: list[str] = field(default_factory=list)
    joined: str = ""
    block: int = -1  # the API content block the last text came from
    starts: dict[int, int] = field(default_factory=dict)  # content block index -> where its text begins
    cites: dict[int, list[int]] = field(default_factory=dict)  # cited block index -> source numbers

    def marks(self) -> list[list[Any]]:
        """``[end, [numbers]]`` per cited block: its markers go where the block's text ends (the next
        block's start, or the run's end while it is the last)."""
        starts = sorted(self.starts.values())
        total = len(self.text)
        out: list[list[Any]] = []
        for block, numbers in self.cites.items():
            start = self.starts[block]
            end = next((s for s in starts if s > start), total)
            out.append([end, list(numbers)])
        return out

    @property
    def text(self) -> str:
        if self.chunks:
            self.joined += "".join(self.chunks)
            self.chunks.clear()  # in place: a live view may append to this very list (its fast lane)
        return self.joined


class ViewState:
    """What a reply looks like so far. Feed events with :meth:`apply`, end with :meth:`finish`.

    :attr:`parts` lists the answer's text runs (:class:`TextPart`) and tool calls (their card's id) in
    the order they happened.
    """

    def __init__(self, model: str = "", chat: str = "") -> None:
        self.model = model
        self.chat = chat
        self.status = "waiting"
        self.step = 0
        self.error: str | None = None
        self.stop_reason: str | None = None
        self.cards: dict[str, ToolCard] = {}
        self.server_blocks: list[tuple[str, str]] = []  # (type, summary) not attached to a card
        self.citations: list[str] = []  # the sources list: one line per cited passage
        self._citation_keys: list[tuple[str, str]] = []  # citation_key of each, in the same order
        # Per source number (1-based, the ``citations`` order): what its marker shows on hover or click.
        self.sources: list[dict[str, str]] = []
        self.redacted = 0
        self.omitted = 0
        self.unknown = 0
        self.usage: Usage | None = None
        self.step_usage: dict[int, Usage] = {}
        self.versions = dict.fromkeys(SECTIONS, 0)
        self.events = 0
        self._thinking: list[str] = []
        self._thinking_joined = ""
        self._thinking_blocks: set[tuple[int, int]] = set()
        self._last_thinking: tuple[int, int] | None = None
        self.parts: list[TextPart | str] = []
        self._last_text: TextPart | None = None
        self.chars = 0  # characters of answer text so far

    # -- derived -------------------------------------------------------------------------------
    @property
    def thinking(self) -> str:
        """The reasoning text so far (separate thinking blocks joined by a blank line)."""
        if self._thinking:
            self._thinking_joined += "".join(self._thinking)
            self._thinking = []
        return self._thinking_joined

    @property
    def text(self) -> str:
        """The answer so far (text of separate API calls joined by a blank line, like ``Reply.text``)."""
        out: list[str] = []
        step: int | None = None
        for part in self.parts:
            if isinstance(part, TextPart) and part.text:
                if step is not None and part.step != step:
                    out.append("\n\n")
                out.append(part.text)
                step = part.step
        return "".join(out)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def has_thinking(self) -> bool:
        return bool(self._thinking or self._thinking_joined) or self.redacted > 0 or self.omitted > 0

    def thinking_label(self) -> str:
        """``Thinking``, noting ``hidden reasoning`` (redacted) and ``thinking omitted`` (signature only)."""
        notes = []
        if self.redacted:
            notes.append("hidden reasoning" + (f" ×{self.redacted}" if self.redacted > 1 else ""))
        if self.omitted:
            notes.append("thinking omitted" + (f" ×{self.omitted}" if self.omitted > 1 else ""))
        label = "Thinking"
        if self.status == "thinking":
            label += "…"
        return f"{label} ({', '.join(notes)})" if notes else label

    # -- events --------------------------------------------------------------------------------
    def _touch(self, *sections: str) -> None:
        for s in sections:
            self.versions[s] += 1

    def _set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self._touch("header", "thinking")

    def apply(self, ev: Event) -> None:
        """Update the state from one event (never raises on unexpected content)."""
        self.events += 1
        if type(ev) is TextDelta:  # the hot path: most events of a reply
            self.chars += len(ev.text)
            last = self._last_text
            if last is None or last.step != self.step or last is not self.parts[-1]:
                last = self._last_text = TextPart(self.step)
                self.parts.append(last)
            if ev.index != last.block:  # a new content block: where it begins, for citation markers
                last.block = ev.index
                last.starts.setdefault(ev.index, len(last.text))
            last.chunks.append(ev.text)
            self.versions["text"] += 1
            if self.status != "writing":
                self._set_status("writing")
        else:
            handler = _APPLY.get(type(ev))
            if handler is None:  # a subclass of an event type (isinstance, as before the table)
                handler = next((h for t, h in _APPLY.items() if isinstance(ev, t)), None)
            if handler is not None:
                handler(self, ev)

    def _on_thinking(self, ev: ThinkingDelta) -> None:
        block = (self.step, ev.index)
        self._thinking_blocks.add(block)
        if self._last_thinking != block and (self._thinking or self._thinking_joined):
            self._thinking.append("\n\n")
        self._thinking.append(ev.thinking)
        self._last_thinking = block
        self._touch("thinking")
        self._set_status("thinking")

    def _on_tool_delta(self, ev: ToolCallDelta) -> None:
        card = self.cards.get(ev.id)
        if card is not None:
            card._delta = ev
            card.fragments.append(ev.fragment)
            card.version += 1
            self._touch("tools")

    def _on_tool_start(self, ev: ToolCallStart) -> None:
        card = ToolCard(ev.id, ev.name, server=ev.server, step=self.step, server_name=ev.server_name)
        self.cards[ev.id] = card
        self.parts.append(ev.id)
        self._touch("tools")
        self._set_status("calling tools")

    def _on_tool_ready(self, ev: ToolCallReady) -> None:
        card = self.cards.get(ev.id)
        if card is None:
            card = self.cards[ev.id] = ToolCard(ev.id, ev.name, server=ev.server, step=self.step)
            self.parts.append(ev.id)
        card.server_name = ev.server_name or card.server_name
        card._delta = None
        card.input = ev.input
        card.error = ev.error
        card.status = "invalid" if ev.error else ("running" if ev.server else "ready")
        card.version += 1
        self._touch("tools")

    def _on_tool_result(self, ev: ToolResult) -> None:
        card = self.cards.get(ev.id)
        if card is None:
            card = self.cards[ev.id] = ToolCard(ev.id, ev.name, step=self.step, status="ready")
            self.parts.append(ev.id)
        card.result = preview(ev.content)
        card.is_error = ev.is_error
        card.decision = ev.decision
        decision = (ev.decision or "").lower()
        if decision.startswith(("den", "reject")):
            card.status = "denied"
        else:
            card.status = "error" if ev.is_error else "done"
        card.version += 1
        self._touch("tools")

    def _on_approval(self, ev: ApprovalRequest) -> None:
        for item in ev.pending:
            card = self.cards.get(str(getattr(item, "id", "")))
            if card is not None:
                card.status = "awaiting approval"
                card.version += 1
        self._touch("tools")
        self._set_status("awaiting approval")

    def _on_signature(self, ev: ThinkingSignature) -> None:
        if (self.step, ev.index) not in self._thinking_blocks:
            self.omitted += 1
            self._thinking_blocks.add((self.step, ev.index))
            self._touch("thinking")
        self._set_status("thinking")

    def _on_redacted(self, ev: RedactedThinking) -> None:
        self.redacted += 1
        self._touch("thinking")
        self._set_status("thinking")

    def _on_message_start(self, ev: MessageStart) -> None:
        self.step = ev.step
        if ev.model:
            self.model = ev.model
        self.usage = self.step_usage[ev.step] = ev.usage
        self._touch("header", "footer")
        if ev.step > 0:
            self._set_status("waiting")

    def _on_usage_update(self, ev: UsageUpdate) -> None:
        self.usage = self.step_usage[ev.step] = ev.usage
        self._touch("footer")

    def _on_message_done(self, ev: MessageDone) -> None:
        self.usage = self.step_usage[ev.step] = ev.usage
        self.stop_reason = ev.stop_reason
        self._touch("footer")
        if ev.stop_reason == "tool_use":
            for card in self.cards.values():
                if card.step == ev.step and not card.server and card.status == "ready":
                    card.status = "running"
                    card.version += 1
            self._touch("tools")
            self._set_status("calling tools")

    def _on_server_block(self, ev: ServerToolBlock) -> None:
        summary = server_block_summary(ev.type, ev.block)
        card = self.cards.get(str(_get(ev.block, "tool_use_id") or ""))
        if card is not None:
            card.result = summary
            card.details = server_block_details(ev.type, ev.block)
            card.status = "error" if summary.startswith("error:") else "done"
            card.is_error = card.status == "error"
            card.version += 1
            self._touch("tools")
        else:
            self.server_blocks.append((ev.type, summary))
            self._touch("extras")

    def _on_citation(self, ev: Citation) -> None:
        key = citation_key(ev.citation)
        if key not in self._citation_keys:
            self._citation_keys.append(key)
            self.citations.append(key[0])
            self.sources.append(citation_source(ev.citation))
            self._touch("extras")
        # The service sends a block's citations before its text: the block begins where the run ends now.
        last = self._last_text
        if last is None or last.step != self.step or not self.parts or last is not self.parts[-1]:
            last = self._last_text = TextPart(self.step)
            self.parts.append(last)
        last.block = ev.index
        last.starts.setdefault(ev.index, len(last.text))
        numbers = last.cites.setdefault(ev.index, [])
        number = self._citation_keys.index(key) + 1
        if number not in numbers:
            numbers.append(number)
            self._touch("text")

    def _on_unknown(self, ev: UnknownEvent) -> None:
        self.unknown += 1

    def total_usage(self) -> Usage:
        """Usage summed over the API calls seen so far."""
        return Usage.total(list(self.step_usage.values())) if self.step_usage else Usage()

    def finish(self, reply: Reply | None, error: BaseException | None) -> None:
        """The reply ended: set the final status and reconcile the tool cards with the Reply."""
        interrupted = isinstance(error, INTERRUPTS) or bool(reply is not None and reply.interrupted)
        failed = error is not None or (reply is not None and reply.error is not None)
        if interrupted:
            status = "interrupted"
        elif failed:
            status = "error"
            err = error if error is not None else (reply.error if reply is not None else None)
            self.error = str(err) or type(err).__name__
        else:
            status = "done"
        if reply is not None:
            if reply.stop_reason is not None:
                self.stop_reason = reply.stop_reason
            for call in reply.tool_calls:
                card = self.cards.get(call.id)
                if card is None:
                    card = self.cards[call.id] = ToolCard(
                        call.id, call.name, server=call.server, step=call.step
                    )
                    self.parts.append(call.id)
                card._delta = None
                card.input = call.input
                card.error = call.error
                if call.result is not None and card.result is None:
                    card.result = preview(call.result)
                    card.is_error = call.is_error
                    card.decision = call.decision
                    card.status = "error" if call.is_error else "done"
        for card in self.cards.values():
            if card.status in ("streaming", "ready", "running", "awaiting approval"):
                card.status = (
                    "interrupted" if interrupted else ("not run" if card.status != "streaming" else "invalid")
                )
            card.version += 1
        self.status = status
        self._touch(*SECTIONS)


# Each event type but the hot TextDelta -> how it updates the state (a table: apply stays one screen).
_APPLY: dict[type, Callable[[ViewState, Any], None]] = {
    ThinkingDelta: ViewState._on_thinking,
    ToolCallDelta: ViewState._on_tool_delta,
    ToolCallStart: ViewState._on_tool_start,
    ToolCallReady: ViewState._on_tool_ready,
    ToolResult: ViewState._on_tool_result,
    ApprovalRequest: ViewState._on_approval,
    ThinkingSignature: ViewState._on_signature,
    RedactedThinking: ViewState._on_redacted,
    MessageStart: ViewState._on_message_start,
    UsageUpdate: ViewState._on_usage_update,
    MessageDone: ViewState._on_message_done,
    ServerToolBlock: ViewState._on_server_block,
    Citation: ViewState._on_citation,
    UnknownEvent: ViewState._on_unknown,
}
