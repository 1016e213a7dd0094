"""Helpers for the reliability tests: an independent SSE reader, a recording loopback backend, run sizes.

Nothing here uses claudekit's stream code: expected partial replies are computed from the bytes the
offline server actually wrote, with a deliberately simple SSE reader of our own.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from claudekit.offline import OfflineBackend
from claudekit.offline._wire import Cut, Reply, Sleep, Stall

FULL = os.environ.get("CLAUDEKIT_RELIABILITY", "").strip().lower() == "full"


def size(default: int, full: int) -> int:
    """A run size: the reduced one by default, the full one with CLAUDEKIT_RELIABILITY=full."""
    return full if FULL else default


# -- an independent reader of what the server sent --------------------------------------------------


@dataclass
class SeenBlock:
    kind: str
    text: str = ""  # text, thinking, or the tool's raw JSON
    signature: str = ""
    id: str = ""
    name: str = ""
    stopped: bool = False


@dataclass
class Seen:
    """What a client could have decoded from ``body``: only events terminated by a blank line count."""

    started: bool = False
    input_tokens: int | None = None
    blocks: list[SeenBlock] = field(default_factory=list)
    stop_reason: str | None = None
    final_output_tokens: int | None = None
    stopped: bool = False
    error_type: str | None = None  # an `event: error` arrived
    malformed: bool = False  # an event's data was not JSON

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.blocks if b.kind == "text")

    @property
    def thinking(self) -> str:
        return "\n\n".join(b.text for b in self.blocks if b.kind == "thinking" and b.text)

    def tools(self) -> list[SeenBlock]:
        return [b for b in self.blocks if b.kind == "tool_use"]


def read_sse(body: bytes) -> Seen:
    seen = Seen()
    text = body.decode("utf-8", "replace")
    complete = text.split("\n\n")[:-1]  # the last piece has no blank line after it: never dispatched
    for raw in complete:
        name, data = None, []
        for line in raw.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if name is None or name == "ping" or not data:
            continue
        try:
            ev = json.loads("\n".join(data))
        except ValueError:
            seen.malformed = True
            return seen
        if name == "error":
            seen.error_type = ev["error"]["type"]
            return seen
        _apply(seen, ev)
    return seen


def _apply(seen: Seen, ev: Mapping[str, Any]) -> None:
    t = ev["type"]
    if t == "message_start":
        seen.started = True
        seen.input_tokens = ev["message"]["usage"].get("input_tokens")
    elif t == "content_block_start":
        cb = ev["content_block"]
        blk = SeenBlock(cb["type"], id=cb.get("id", ""), name=cb.get("name", ""))
        if cb["type"] == "text":
            blk.text = cb.get("text", "")
        elif cb["type"] == "thinking":
            blk.text = cb.get("thinking", "")
        seen.blocks.append(blk)
    elif t == "content_block_delta":
        blk = seen.blocks[ev["index"]]
        d = ev["delta"]
        if d["type"] == "text_delta":
            blk.text += d["text"]
        elif d["type"] == "thinking_delta":
            blk.text += d["thinking"]
        elif d["type"] == "input_json_delta":
            blk.text += d["partial_json"]
        elif d["type"] == "signature_delta":
            blk.signature = d["signature"]
    elif t == "content_block_stop":
        seen.blocks[ev["index"]].stopped = True
    elif t == "message_delta":
        seen.stop_reason = ev["delta"].get("stop_reason")
        seen.final_output_tokens = (ev.get("usage") or {}).get("output_tokens")
    elif t == "message_stop":
        seen.stopped = True


def is_partial_of(part: Any, full: Any) -> bool:
    """True when ``part`` could come from a prefix of ``full``'s JSON (keys a subset, strings prefixes)."""
    if isinstance(full, dict):
        return isinstance(part, dict) and all(
            k in full and is_partial_of(v, full[k]) for k, v in part.items()
        )
    if isinstance(full, list):
        return isinstance(part, list) and len(part) <= len(full) and all(map(is_partial_of, part, full))
    if isinstance(full, str):
        return isinstance(part, str) and full.startswith(part)
    if isinstance(full, (int, float)) and not isinstance(full, bool) and isinstance(part, (int, float)):
        return str(full).startswith(str(part))  # a number can be cut short: 1234 → 12
    return bool(part == full)


# -- a backend that remembers what it wrote ---------------------------------------------------------


def delivered(reply: Reply) -> bytes:
    """The body bytes a client could receive: everything before a stall or a cut."""
    out = bytearray()
    for action in reply.actions:
        if isinstance(action, (Stall, Cut)):
            break
        if isinstance(action, bytes):
            out += action
        else:
            assert isinstance(action, Sleep)
    return bytes(out)


def purpose(body: Mapping[str, Any]) -> str:
    """Why a request was made: the case's first call, the tool-result follow-up, or the next prompt."""
    msgs = body.get("messages") or []
    last = msgs[-1] if msgs else {}
    content = last.get("content")
    blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
    texts = [b.get("text") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
    if "next" in texts:
        return "next"
    if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks):
        return "tools"
    return "main"


class RecordingBackend(OfflineBackend):
    """Keeps, per ``x-case`` header and purpose, the status and delivered bytes of every response."""

    def __init__(self, responder: Callable[..., Any], **kw: Any) -> None:
        super().__init__(responder, **kw)
        self.sent: dict[tuple[str, str], list[tuple[int, bytes]]] = {}
        self._rec_lock = threading.Lock()

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        reply = super().handle(method, path, headers, body)
        case = headers.get("x-case", "")
        try:
            why = purpose(json.loads(body))
        except ValueError:
            why = "unparsable"
        with self._rec_lock:
            self.sent.setdefault((case, why), []).append((reply.status, delivered(reply)))
        return reply


# -- what the reliability runs measured (printed at the end of the session) ----------------------------

REPORT: dict[str, dict[str, Any]] = {}


def count(section: str, key: str, n: int = 1) -> None:
    with _report_lock:
        bucket = REPORT.setdefault(section, {})
        bucket[key] = bucket.get(key, 0) + n


def note(section: str, key: str, value: Any) -> None:
    with _report_lock:
        REPORT.setdefault(section, {})[key] = value


_report_lock = threading.Lock()
