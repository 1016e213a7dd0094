"""Plain-text rendering outside Jupyter: the answer as it streams, and a short trace of the rest.

The answer goes to ``stdout`` as it arrives; the trace (thinking, tool calls and results, interruptions)
goes to ``stderr`` as short lines, so piping a script's output keeps only the answer. When the caller
iterates the events itself (``async for event in chat.stream(...)``, ``info["consumer"] == "events"``)
nothing is printed: the caller decides what to show, and would otherwise see every fragment twice.

Model output is untrusted, and a terminal obeys control sequences (an escape can retitle the window, write
the clipboard (OSC 52), hide or overwrite text): every control character but newline and tab is written as
its visible Unicode picture (ESC as ␛), and a carriage return is dropped, so text cannot rewrite its line.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from .._base._errors import INTERRUPTS, ClaudekitError
from .._base._events import (
    RedactedThinking,
    ServerToolBlock,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallReady,
    ToolResult,
)
from .._base._excepthook import mark_said
from .._seams import View
from ._state import preview, server_block_summary
from ._static import refusal_note

if TYPE_CHECKING:
    from .._base._events import Event
    from .._base._reply import Reply

__all__ = ["TextRenderer", "inert"]

# C0 controls (but tab and newline) and DEL as their control pictures; C1 controls as U+FFFD; CR dropped.
_INERT: dict[int, int | None] = {c: 0x2400 + c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)}
_INERT |= {0x7F: 0x2421, 0x0D: None} | {c: 0xFFFD for c in range(0x80, 0xA0)}


def inert(text: str) -> str:
    """``text`` with nothing a terminal would act on (see the module doc)."""
    return text.translate(_INERT)


class TextRenderer(View):
    """Writes the reply as text: no widgets, no ANSI tricks beyond a newline."""

    def __init__(self, out: TextIO | None = None, trace: TextIO | None = None) -> None:
        self._out = out
        self._trace = trace
        self._at_line_start = True
        self._thinking_blocks: set[tuple[int, int]] = set()
        self._step = 0
        self._text_step: int | None = None
        self.wrote_text = False
        self.silent = False

    @property
    def out(self) -> TextIO:
        return self._out if self._out is not None else sys.stdout

    @property
    def trace(self) -> TextIO:
        return self._trace if self._trace is not None else sys.stderr

    def _line(self, text: str) -> None:
        if not self._at_line_start:
            self.out.write("\n")
            self.out.flush()
            self._at_line_start = True
        self.trace.write(inert(text) + "\n")
        self.trace.flush()

    def start(self, info: dict[str, Any]) -> None:
        self.reply = info.get("reply")
        self.silent = info.get("consumer") == "events"

    def event(self, ev: Event) -> None:
        if self.silent:
            return
        if isinstance(ev, TextDelta):
            if ev.text:
                if self._text_step != self._step:
                    if self.wrote_text:  # a new API call's text: a blank line, as in Reply.text
                        self.out.write("\n" if self._at_line_start else "\n\n")
                    self._text_step = self._step
                self.out.write(inert(ev.text))
                self.out.flush()
                self._at_line_start = ev.text.endswith("\n")
                self.wrote_text = True
        elif isinstance(ev, ThinkingDelta | ThinkingSignature):
            key = (self._step, ev.index)
            if key not in self._thinking_blocks:
                self._thinking_blocks.add(key)
                self._line("· thinking…" if isinstance(ev, ThinkingDelta) else "· thinking omitted")
        elif isinstance(ev, RedactedThinking):
            self._line("· hidden reasoning")
        elif isinstance(ev, ToolCallReady):
            try:
                args = json.dumps(ev.input, ensure_ascii=False, default=str)
            except (TypeError, ValueError):
                args = repr(ev.input)
            note = f" (invalid: {ev.error})" if ev.error else ""
            where = f" on {ev.server_name}" if ev.server_name else ""
            self._line(f"→ {ev.name}({preview(args, 100)}){where}{note}")
        elif isinstance(ev, ToolResult):
            mark = "✗" if ev.is_error else "←"
            self._line(f"{mark} {ev.name}: {preview(ev.content, 100)}")
        elif isinstance(ev, ServerToolBlock):
            self._line(f"← {ev.type}: {server_block_summary(ev.type, ev.block)}")
        else:
            step = getattr(ev, "step", None)
            if isinstance(step, int):
                self._step = step

    def finish(self, reply: Reply, error: BaseException | None) -> None:
        if self.silent:
            return
        refused = refusal_note(reply)
        if reply.interrupted or isinstance(error, INTERRUPTS):
            self._line("[interrupted — partial answer kept]")
        elif refused is not None:
            self._line(f"[refused — {refused}]")
        elif isinstance(error, ClaudekitError):
            # One plain line before the traceback a script ends with (the SDK's chained error and
            # its frames follow it): what happened and what to do, first.
            self._line(f"claudekit: {type(error).__name__}: {error}")
            mark_said(error)  # the excepthook does not say it again
        elif not self._at_line_start:
            self.out.write("\n")
            self.out.flush()
            self._at_line_start = True
