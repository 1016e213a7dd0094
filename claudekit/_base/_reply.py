"""A reply: what one user turn produced, across every API call of its tool loop."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import _seams as _render
from ._errors import ConfigError
from ._events import Usage

if TYPE_CHECKING:
    import anthropic.types
    import pandas as pd

    from ._errors import ClaudekitError

__all__ = ["Reply", "Step", "ToolCall"]


@dataclass
class ToolCall:
    """A tool call the model made, and what became of it."""

    id: str
    name: str
    input: dict[str, Any]
    server: bool = False
    error: str | None = None
    result: Any = None
    is_error: bool = False
    decision: str | None = None
    step: int = 0
    server_name: str | None = None  # the MCP server that provides the tool, when one does


@dataclass
class Step:
    """One API call of a turn."""

    index: int
    message: anthropic.types.Message | None
    usage: Usage
    status: str  # "ok", "interrupted", or the error type
    request_id: str | None = None
    latency_s: float | None = None
    ttft_s: float | None = None


@dataclass
class Reply:
    """The assistant's answer to one prompt. Complete after ``await``; partial on error or interrupt."""

    model: str
    steps: list[Step] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    interrupted: bool = False
    error: ClaudekitError | None = None
    parsed: Any = None
    max_steps_reached: bool = False

    @property
    def message(self) -> anthropic.types.Message | None:
        """The last API call's message: equal to what the SDK's MessageStream builds from the same bytes."""
        for step in reversed(self.steps):
            if step.message is not None:
                return step.message
        return None

    @property
    def messages(self) -> list[anthropic.types.Message]:
        return [s.message for s in self.steps if s.message is not None]

    def _blocks(self, kind: str) -> list[Any]:
        return [b for m in self.messages for b in m.content if b.type == kind]

    @property
    def text(self) -> str:
        """All answer text, in order; text from separate API calls is separated by a blank line."""
        parts = ["".join(b.text for b in m.content if b.type == "text") for m in self.messages]
        return "\n\n".join(p for p in parts if p.strip())

    @property
    def thinking(self) -> str:
        return "\n\n".join(b.thinking for b in self._blocks("thinking") if b.thinking)

    @property
    def stop_reason(self) -> str | None:
        msg = self.message
        return msg.stop_reason if msg is not None else None

    @property
    def usage(self) -> Usage:
        """Usage summed over the turn's API calls (None where no call reported the field)."""
        return Usage.total([s.usage for s in self.steps]) if self.steps else Usage()

    @property
    def stop_details(self) -> Any:
        """Why the service stopped, when it says (``refusal``: category and explanation), else None."""
        msg = self.message
        return getattr(msg, "stop_details", None) if msg is not None else None

    @property
    def refused(self) -> bool:
        return self.stop_reason == "refusal"

    @property
    def has_content(self) -> bool:
        """Whether anything of the answer arrived (text, reasoning or a tool call)."""
        return any(m.content for m in self.messages)

    @property
    def request_id(self) -> str | None:
        return self.steps[-1].request_id if self.steps else None

    @property
    def latency_s(self) -> float | None:
        vals = [s.latency_s for s in self.steps if s.latency_s is not None]
        return sum(vals) if vals else None

    @property
    def ttft_s(self) -> float | None:
        return self.steps[0].ttft_s if self.steps else None

    @property
    def status(self) -> str:
        """``ok``, ``refused`` (the prompt was taken back out of the history), ``interrupted``, ``error``."""
        if self.interrupted:
            return "interrupted"
        if self.error is not None:
            return "error"
        return "refused" if self.refused else "ok"

    @property
    def citations(self) -> pd.DataFrame:
        """Every citation in the answer: cited text, document (index, title), location (page, character or
        block range; ``start``/``end`` as the API gives them, end exclusive) and the text block citing it."""
        from ._citations import citations_frame

        return citations_frame(self.messages)

    def __str__(self) -> str:
        return self.text

    def to_cell(self, block: int | None = None) -> None:
        """Put the answer's code into a new notebook cell below this one (not run).

        ``block`` picks the n-th fenced code block (1-based); by default the first Python one. Works in
        IPython/Jupyter, through the frontend's ``set_next_input`` support (see docs/notebook-context.md).
        """
        inserter = _render.get_cell_inserter()
        if inserter is None:
            raise ConfigError(
                "reply.to_cell() needs claudekit's notebook layer, which is not loaded",
                hint="import claudekit.notebook, or copy the code from reply.text",
            )
        inserter(self.text, block)

    def __repr__(self) -> str:
        preview = self.text[:60].replace("\n", " ")
        return (
            f"Reply(status={self.status!r}, stop_reason={self.stop_reason!r}, steps={len(self.steps)}, "
            f"tool_calls={len(self.tool_calls)}, text={preview!r}{'…' if len(self.text) > 60 else ''})"
        )

    def _repr_html_(self) -> str:
        # HTML made safe by the one renderer of model text: a trusted Markdown output would run raw HTML.
        from ._markup import NO_MATH, markdown_html, text_html

        body = markdown_html(self.text) if self.text else ""
        if not self.text:
            body = f"<p><i>(no text; stop reason: {text_html(str(self.stop_reason))})</i></p>"
        if self.stop_reason == "max_tokens":
            body += "<blockquote>✂ <b>cut off: the answer reached max_tokens</b></blockquote>"
        return f'<div class="{NO_MATH}">{body}</div>'

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "text": self.text,
            "thinking": self.thinking,
            "tool_calls": [
                {"id": c.id, "name": c.name, "input": c.input, "is_error": c.is_error, "decision": c.decision}
                for c in self.tool_calls
            ],
            "messages": [m.to_dict(mode="json") for m in self.messages],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)
