"""Turn the SDK's raw event stream into claudekit events while building the final message.

We iterate ``messages.create(stream=True)`` (the SDK's own SSE decoding and event types) rather than
``messages.stream()`` because the latter re-parses a tool call's whole argument buffer on every delta,
which is quadratic in the argument size. The structural events still go through the SDK's own
``accumulate_event`` so the final message is built by the SDK's code; only text, thinking and tool
argument deltas are buffered here and written into the snapshot once, when their block ends. The result
is tested to equal ``MessageStream.get_final_message()`` on every recorded stream.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any

import jiter
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import ServerToolUseBlock, ToolUseBlock
from anthropic.types.parsed_message import ParsedMessage

from .._base._errors import MalformedStreamError
from .._base._events import (
    Citation,
    Event,
    MessageDone,
    MessageStart,
    RedactedThinking,
    ServerToolBlock,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallReady,
    ToolCallStart,
    UnknownEvent,
    Usage,
    UsageUpdate,
    _JsonBuffer,
    new_text_delta,
    new_thinking_delta,
    new_tool_call_delta,
)

_TOOL_BLOCKS = (ToolUseBlock, ServerToolUseBlock)
# Block types the SDK's ContentBlock union knows; anything else is "unknown" to this version.
_KNOWN_PASSTHROUGH = {
    "mcp_tool_result",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "container_upload",
}


class _Block:
    """Per-block buffers for the deltas we accumulate ourselves."""

    __slots__ = ("buffer", "done", "flushed", "kind", "parts", "tool_id")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.parts: list[str] = []
        self.buffer: _JsonBuffer | None = None
        self.tool_id = ""
        self.done = False  # content_block_stop arrived
        self.flushed = False  # buffered deltas written into the snapshot


class Accumulator:
    """Consumes raw SDK events one at a time; yields claudekit events; holds the message snapshot."""

    def __init__(self, step: int = 0) -> None:
        self.step = step
        self.snapshot: ParsedMessage[Any] | None = None
        self.blocks: list[_Block] = []
        self.usage = Usage()
        self.final_usage_missing = False
        self.final_usage = False  # message_delta reported usage (message_start's output is a placeholder)
        self.stopped = False
        self.warnings: list[str] = []
        self.first_token_at: float | None = None
        self._json_bufs: dict[int, bytes] = {}

    # -- the hot path -------------------------------------------------------------------------------

    def feed(self, event: Any) -> list[Event]:
        try:
            if event.type == "content_block_delta":
                # The hot path: every token of an answer and every fragment of a tool call's
                # arguments, inline. Anything unusual, and every error, goes the careful way (_delta).
                index = event.index
                blocks = self.blocks
                if 0 <= index < len(blocks):
                    block = blocks[index]
                    if not block.done:
                        delta = event.delta
                        dtype = delta.type
                        if dtype == "text_delta":
                            if block.kind == "text":
                                text = delta.text
                                block.parts.append(text)
                                if self.first_token_at is None:
                                    self.first_token_at = time.perf_counter()
                                return [new_text_delta(index, text)]
                        elif dtype == "input_json_delta":
                            buf = block.buffer
                            if buf is not None:
                                fragment = delta.partial_json
                                parts = buf.parts
                                parts.append(fragment)
                                if self.first_token_at is None:
                                    self.first_token_at = time.perf_counter()
                                return [new_tool_call_delta(index, block.tool_id, fragment, buf, len(parts))]
                return self._delta(event)
            return self._feed(event)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            # The SDK builds events without validating them: a field of the wrong shape surfaces here.
            etype = getattr(event, "type", None) or type(event).__name__
            raise MalformedStreamError(
                f"malformed {etype} event ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
            ) from exc

    def _feed(self, event: Any) -> list[Event]:
        etype = event.type
        snap = self.snapshot
        if snap is None:
            if etype != "message_start":
                raise MalformedStreamError(f"received {etype!r} before message_start")
            self.snapshot = snap = accumulate_event(event=event, current_snapshot=None, json_bufs={})
            self.usage = Usage.from_sdk(snap.usage)
            return [MessageStart(self.step, snap.id, snap.model, self.usage)]
        if etype == "content_block_start":
            return self._start(event, snap)
        if etype == "content_block_stop":
            return self._stop(event.index, snap)
        if etype == "message_delta":
            return self._message_delta(event, snap)
        if etype == "message_stop":
            self.stopped = True
            return []
        if etype == "message_start":
            # The SDK ignores a second message_start (a known proxy bug); so do we, but say so.
            self.warnings.append("ignored a duplicate message_start")
            return []
        return [UnknownEvent(str(etype), getattr(event, "index", None), event)]

    def _delta(self, event: Any) -> list[Event]:
        index = event.index
        blocks = self.blocks
        if not 0 <= index < len(blocks) or blocks[index].done:
            if self.snapshot is None:
                raise MalformedStreamError("received 'content_block_delta' before message_start")
            raise MalformedStreamError(
                f"delta for content block {index}, which is not open (events out of order)"
            )
        block = blocks[index]
        delta = event.delta
        dtype = delta.type
        # feed() takes every text delta of an open text block and every argument fragment of an open tool
        # call inline; what reaches here of those two is a delta for the wrong kind of block.
        if dtype == "text_delta":
            self._expect(block, "text", dtype, index)
        if dtype == "thinking_delta":
            self._expect(block, "thinking", dtype, index)
            block.parts.append(delta.thinking)
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            return [new_thinking_delta(index, delta.thinking)] if delta.thinking else []
        if dtype == "input_json_delta":
            # The SDK tracks arguments only for tool_use / server_tool_use; others keep their input.
            return [UnknownEvent(dtype, index, event)]
        if dtype == "signature_delta":
            self._expect(block, "thinking", dtype, index)
            accumulate_event(event=event, current_snapshot=self.snapshot, json_bufs=self._json_bufs)
            return [ThinkingSignature(index, delta.signature)]
        if dtype == "citations_delta":
            self._expect(block, "text", dtype, index)
            accumulate_event(event=event, current_snapshot=self.snapshot, json_bufs=self._json_bufs)
            return [Citation(index, delta.citation)]
        return [UnknownEvent(str(dtype), index, event)]

    @staticmethod
    def _expect(block: _Block, kind: str, dtype: str, index: int) -> None:
        if block.kind != kind:
            raise MalformedStreamError(f"{dtype} arrived for content block {index} of type {block.kind!r}")

    # -- block boundaries ---------------------------------------------------------------------------

    def _start(self, event: Any, snap: ParsedMessage[Any]) -> list[Event]:
        if event.index != len(snap.content):
            raise MalformedStreamError(
                f"content block {event.index} started, expected {len(snap.content)} (events out of order)"
            )
        accumulate_event(event=event, current_snapshot=snap, json_bufs=self._json_bufs)
        content = snap.content[event.index]
        kind = content.type
        block = _Block(kind)
        self.blocks.append(block)
        if kind == "text":
            if content.text:
                block.parts.append(content.text)
                return [TextDelta(event.index, content.text)]
            return []
        if kind == "thinking":
            if content.thinking:
                block.parts.append(content.thinking)
                return [ThinkingDelta(event.index, content.thinking)]
            return []
        if kind == "redacted_thinking":
            return [RedactedThinking(event.index, content.data)]
        if isinstance(content, _TOOL_BLOCKS) or kind == "mcp_tool_use":
            # mcp_tool_use (the MCP connector, a beta) is no type of the non-beta SDK: its input deltas are
            # ours to gather, like a tool call's; it runs on the service.
            block.buffer = _JsonBuffer()
            block.tool_id = content.id
            server_name = getattr(content, "server_name", None)
            return [ToolCallStart(event.index, content.id, content.name, kind != "tool_use", server_name)]
        return []

    def _flush(self, index: int, snap: ParsedMessage[Any]) -> list[Event]:
        """Write our buffered deltas into the SDK snapshot (once per block) and report the block."""
        block = self.blocks[index]
        content: Any = snap.content[index]
        if block.kind == "text":
            if len(block.parts) > 1 or (block.parts and content.text != block.parts[0]):
                content.text = "".join(block.parts)
            return []
        if block.kind == "thinking":
            if len(block.parts) > 1 or (block.parts and content.thinking != block.parts[0]):
                content.thinking = "".join(block.parts)
            return []
        if block.buffer is not None:
            raw = block.buffer.text()
            error: str | None = None
            if raw:
                try:
                    content.input = jiter.from_json(raw.encode(), partial_mode=True)
                except ValueError as exc:
                    error = f"tool arguments are not valid JSON ({exc})"
                if error is None:
                    try:
                        jiter.from_json(raw.encode())
                    except ValueError:
                        error = "tool arguments were cut off before the JSON ended"
                if error is None and not isinstance(content.input, dict):
                    error = "tool arguments are JSON but not an object"
            if error is not None and not block.done and snap.stop_reason == "max_tokens":
                error = "tool arguments were cut off by max_tokens"
            args = content.input if isinstance(content.input, dict) else {}
            return [
                ToolCallReady(
                    index,
                    content.id,
                    content.name,
                    args,
                    server=block.kind != "tool_use",
                    error=error,
                    server_name=getattr(content, "server_name", None),
                )
            ]
        if block.kind == "redacted_thinking":
            return []
        if block.kind in _KNOWN_PASSTHROUGH:
            return [ServerToolBlock(index, block.kind, content)]
        return [UnknownEvent(block.kind, index, content)]

    def _stop(self, index: int, snap: ParsedMessage[Any]) -> list[Event]:
        if not 0 <= index < len(self.blocks) or self.blocks[index].done:
            raise MalformedStreamError(f"content_block_stop for block {index}, which is not open")
        out = self._flush(index, snap)
        self.blocks[index].done = self.blocks[index].flushed = True
        if self.blocks[index].kind == "thinking" and not getattr(snap.content[index], "signature", None):
            # The service always signs thinking; an unsigned block can never be sent back.
            raise MalformedStreamError(f"thinking block {index} ended without a signature")
        return out

    def _message_delta(self, event: Any, snap: ParsedMessage[Any]) -> list[Event]:
        if event.usage is None:
            # Documented example streams omit usage here; the SDK then crashes. Keep what we had.
            delta = event.delta
            snap.stop_reason = delta.stop_reason
            snap.stop_sequence = delta.stop_sequence
            snap.stop_details = getattr(delta, "stop_details", None)
            if getattr(delta, "container", None) is not None:
                snap.container = delta.container
            self.warnings.append("message_delta carried no usage")
            # message_start's output count is a placeholder: without the final figure it is unknown.
            self.usage = dataclasses.replace(self.usage, output_tokens=None)
            self.final_usage_missing = True
            return []
        accumulate_event(event=event, current_snapshot=snap, json_bufs=self._json_bufs)
        self.usage = Usage.from_sdk(snap.usage)
        self.final_usage = True
        return [UsageUpdate(self.step, self.usage)]

    # -- the end --------------------------------------------------------------------------------------

    def finish_open_blocks(self) -> list[Event]:
        """Flush blocks that never got content_block_stop (cut off by max_tokens or a broken stream)."""
        out: list[Event] = []
        if self.snapshot is None:
            return out
        for index, block in enumerate(self.blocks):
            if not block.done and not block.flushed:
                out.extend(self._flush(index, self.snapshot))
                block.flushed = True
        return out

    def open_block_indices(self) -> list[int]:
        return [i for i, b in enumerate(self.blocks) if not b.done]

    def end_events(self, started: float, request_id: str | None) -> list[Event]:
        """What follows the last SDK event: blocks that never stopped, then MessageDone if it stopped."""
        out = self.finish_open_blocks()
        if self.stopped and self.snapshot is not None:
            now = time.perf_counter()
            out.append(
                MessageDone(
                    self.step,
                    self.snapshot,
                    self.usage,
                    self.snapshot.stop_reason,
                    request_id,
                    now - started,
                    None if self.first_token_at is None else self.first_token_at - started,
                )
            )
        return out

    # -- what has arrived so far (for readers mid-stream; the hot path never calls these) ------------

    def partial_text(self) -> str:
        """The answer text of this call so far, including the block still streaming."""
        return "".join("".join(b.parts) for b in self.blocks if b.kind == "text")

    def current_snapshot(self) -> ParsedMessage[Any] | None:
        """A copy of the message as it stands: text, thinking and tool arguments received so far."""
        snap = self.snapshot
        if snap is None:
            return None
        copy = snap.model_copy(deep=True)
        for index, block in enumerate(self.blocks):
            if block.flushed:
                continue
            content: Any = copy.content[index]
            if block.kind == "text":
                content.text = "".join(block.parts)
            elif block.kind == "thinking":
                content.thinking = "".join(block.parts)
            elif block.buffer is not None and block.buffer.parts:
                with contextlib.suppress(ValueError):
                    raw = block.buffer.text().encode()
                    content.input = jiter.from_json(raw, partial_mode="trailing-strings")
        return copy
