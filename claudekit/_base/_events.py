"""The typed events a reply streams.

Every event is a frozen dataclass. ``index`` is the content-block index within the current API call
(``step`` counts API calls within one turn of a tool loop). Consumers branch on the class; anything the
SDK or the service adds later arrives as :class:`UnknownEvent` instead of crashing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import jiter

if TYPE_CHECKING:
    import anthropic.types

__all__ = [
    "ApprovalRequest",
    "Citation",
    "Event",
    "MessageDone",
    "MessageStart",
    "RedactedThinking",
    "ServerToolBlock",
    "TextDelta",
    "ThinkingDelta",
    "ThinkingSignature",
    "ToolCallDelta",
    "ToolCallReady",
    "ToolCallStart",
    "ToolResult",
    "UnknownEvent",
    "Usage",
    "UsageUpdate",
]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one API call, as the service reported it so far.

    ``None`` means "not reported", never zero. ``total_input_tokens`` is what the request really
    carried: uncached input plus cache reads plus cache writes.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_5m: int | None = None
    cache_creation_1h: int | None = None
    thinking_tokens: int | None = None
    server_tool_use: dict[str, int] = field(default_factory=dict)

    @property
    def total_input_tokens(self) -> int:
        return (
            (self.input_tokens or 0)
            + (self.cache_read_input_tokens or 0)
            + (self.cache_creation_input_tokens or 0)
        )

    @property
    def cache_hit_rate(self) -> float | None:
        """Share of input tokens read from cache, or None when nothing was sent."""
        total = self.total_input_tokens
        return (self.cache_read_input_tokens or 0) / total if total else None

    @classmethod
    def from_sdk(cls, usage: anthropic.types.Usage | None) -> Usage:
        if usage is None:
            return cls()
        cc = getattr(usage, "cache_creation", None)
        details = getattr(usage, "output_tokens_details", None)
        stu = getattr(usage, "server_tool_use", None)
        server: dict[str, int] = {}
        if stu is not None:
            for key, value in stu.to_dict().items():
                if isinstance(value, int) and value:
                    server[key] = value
        return cls(
            input_tokens=getattr(usage, "input_tokens", None),
            output_tokens=getattr(usage, "output_tokens", None),
            cache_creation_input_tokens=getattr(usage, "cache_creation_input_tokens", None),
            cache_read_input_tokens=getattr(usage, "cache_read_input_tokens", None),
            cache_creation_5m=getattr(cc, "ephemeral_5m_input_tokens", None) if cc is not None else None,
            cache_creation_1h=getattr(cc, "ephemeral_1h_input_tokens", None) if cc is not None else None,
            thinking_tokens=getattr(details, "thinking_tokens", None) if details is not None else None,
            server_tool_use=server,
        )

    @classmethod
    def total(cls, usages: list[Usage]) -> Usage:
        """The sum over API calls; a field stays None only when no call reported it."""
        if len(usages) == 1:
            return usages[0]

        def add(name: str) -> int | None:
            vals = [v for u in usages if (v := getattr(u, name)) is not None]
            return sum(vals) if vals else None

        server: dict[str, int] = {}
        for u in usages:
            for k, v in u.server_tool_use.items():
                server[k] = server.get(k, 0) + v
        return cls(
            input_tokens=add("input_tokens"),
            output_tokens=add("output_tokens"),
            cache_creation_input_tokens=add("cache_creation_input_tokens"),
            cache_read_input_tokens=add("cache_read_input_tokens"),
            cache_creation_5m=add("cache_creation_5m"),
            cache_creation_1h=add("cache_creation_1h"),
            thinking_tokens=add("thinking_tokens"),
            server_tool_use=server,
        )


@dataclass(frozen=True, slots=True)
class MessageStart:
    """A new API call began streaming (one per step of a tool loop)."""

    step: int
    message_id: str
    model: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    index: int
    thinking: str


@dataclass(frozen=True, slots=True)
class ThinkingSignature:
    """The signature that makes a thinking block replayable; with ``display: omitted`` it is all there is."""

    index: int
    signature: str


@dataclass(frozen=True, slots=True)
class RedactedThinking:
    """Reasoning the service encrypted; shown to users as hidden reasoning, sent back verbatim."""

    index: int
    data: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    index: int
    id: str
    name: str
    server: bool = False
    #: The MCP server that provides the tool (a connector call's ``server_name``, or a ``ck.mcp`` tool's).
    server_name: str | None = None


class _JsonBuffer:
    """Append-only list of argument fragments shared by the deltas of one tool call.

    Appending is O(1); each delta remembers how many fragments existed when it was made and parses
    that prefix only when someone asks, so streaming cost stays linear in the payload.
    """

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(self, upto: int | None = None) -> str:
        return "".join(self.parts if upto is None else self.parts[:upto])


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a tool call's JSON arguments.

    ``partial`` parses everything received up to this fragment (lenient, as the SDK does); it is
    computed on access, so code that never reads it pays nothing.
    """

    index: int
    id: str
    fragment: str
    _buffer: _JsonBuffer = field(repr=False, compare=False)
    _upto: int = field(repr=False, compare=False)

    @property
    def arguments_json(self) -> str:
        return self._buffer.text(self._upto)

    @property
    def partial(self) -> Any:
        raw = self.arguments_json
        if not raw.strip():
            return {}
        try:
            return jiter.from_json(raw.encode(), partial_mode="trailing-strings")
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class ToolCallReady:
    """A tool call's arguments are complete (or could not be completed).

    ``error`` explains why ``input`` cannot be trusted: malformed JSON, or a reply cut off by
    ``max_tokens`` / an interruption before the arguments ended. A call with an error is never run.
    """

    index: int
    id: str
    name: str
    input: dict[str, Any]
    server: bool = False
    error: str | None = None
    server_name: str | None = None  # as ToolCallStart's


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A client tool finished (or was denied) and its result will be sent back to the model."""

    id: str
    name: str
    content: Any
    is_error: bool = False
    decision: str = "auto"


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """Tool calls wait for a decision. ``pending`` items are decided through their own API (see the tools
    module); a renderer that can show them (the notebook widget) claims them, otherwise the chat's
    unattended policy decides."""

    pending: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ServerToolBlock:
    """A block the service produced, passed through verbatim (server tool results and the like)."""

    index: int
    type: str
    block: Any


@dataclass(frozen=True, slots=True)
class Citation:
    index: int
    citation: Any


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    """Usage after ``message_delta``: values are cumulative and replace earlier ones."""

    step: int
    usage: Usage


@dataclass(frozen=True, slots=True)
class MessageDone:
    """One API call ended with ``message_stop``."""

    step: int
    message: anthropic.types.Message
    usage: Usage
    stop_reason: str | None
    request_id: str | None
    latency_s: float
    ttft_s: float | None


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event, block or delta type this version of claudekit does not know; passed through untouched."""

    type: str
    index: int | None
    raw: Any


Event = (
    MessageStart
    | TextDelta
    | ThinkingDelta
    | ThinkingSignature
    | RedactedThinking
    | ToolCallStart
    | ToolCallDelta
    | ToolCallReady
    | ToolResult
    | ApprovalRequest
    | ServerToolBlock
    | Citation
    | UsageUpdate
    | MessageDone
    | UnknownEvent
)


def _builder(cls: type[Any]) -> Any:
    """A positional constructor for a frozen slotted event that skips the frozen ``__setattr__`` guard.

    It fills a private twin class with the same slots (plain attribute stores, the cheapest Python has)
    and then makes the object a ``cls``: the same object ``cls(...)`` builds (type, fields, equality,
    hash, repr; still frozen to anyone who tries to change it). Used per token and per argument
    fragment, where the dataclass ``__init__`` (one ``object.__setattr__`` per field) was most of what
    claudekit did per event.
    """
    names = tuple(f.name for f in fields(cls))
    twin = type(f"_{cls.__name__}Builder", (), {"__slots__": names})
    args = ", ".join(names)
    stores = "".join(f"    ev.{n} = {n}\n" for n in names)
    source = f"def build({args}):\n    ev = twin()\n{stores}    ev.__class__ = cls\n    return ev\n"
    scope: dict[str, Any] = {"twin": twin, "cls": cls}
    exec(source, scope)  # field names of our own dataclasses: as dataclasses itself builds __init__
    build = scope["build"]
    build.__qualname__ = build.__name__ = f"new_{cls.__name__}"
    return build


new_text_delta = _builder(TextDelta)
new_thinking_delta = _builder(ThinkingDelta)
new_tool_call_delta = _builder(ToolCallDelta)
