"""Event shaping: turn planned blocks into the Messages API's SSE events and JSON message.

Shapes follow recorded streams: ``message_start`` carries ``usage`` (with the
``cache_creation`` TTL split), a ``ping`` follows the first ``content_block_start``,
thinking blocks start with ``"thinking":"","signature":""`` and end with a
``signature_delta``, ``tool_use`` blocks carry ``caller: {"type": "direct"}`` and stream
``input_json_delta`` fragments whose first one is ``""``, and ``message_delta`` repeats
the cumulative usage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._tokens import count_text, text_pieces

#: Server-side calls: streamed like ``tool_use`` (input as JSON deltas), under their own type.
CALL_KINDS = ("server_tool_use", "mcp_tool_use")

__all__ = ["CALL_KINDS", "Block", "Rendered", "encode_event", "message_json", "render", "stream_events"]

_TEXT_GROUPS = (2, 1, 3, 2, 4, 1, 3)
_THINK_GROUPS = (3, 5, 2, 4, 6)
_JSON_SIZES = (3, 4, 2, 6, 5, 7, 4, 8)


@dataclass
class Block:
    """A planned output block: kind is ``thinking``, ``text``, ``tool_use`` or an unknown type."""

    kind: str
    text: str = ""  # thinking text, text, or the tool input JSON
    tool_id: str = ""
    name: str = ""
    omitted: bool = False  # thinking display "omitted"
    signature: str = ""
    complete: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return count_text(self.text)


@dataclass
class Rendered:
    blocks: list[Block]
    stop_reason: str | None
    stop_sequence: str | None
    output_tokens: int


def _cut_pieces(text: str, budget: int) -> tuple[str, int, bool]:
    """Longest prefix of ``text`` (at piece boundaries) within ``budget`` tokens."""
    used = 0
    out: list[str] = []
    for piece in text_pieces(text):
        n = count_text(piece)
        if used + n > budget:
            return "".join(out), used, False
        used += n
        out.append(piece)
    return "".join(out), used, True


def render(
    blocks: Sequence[Block], *, stop_reason: str, max_tokens: int, stop_sequences: Sequence[str] = ()
) -> Rendered:
    """Apply ``stop_sequences`` (text blocks) and then ``max_tokens`` to the planned blocks."""
    planned = [Block(**{**b.__dict__, "extra": dict(b.extra)}) for b in blocks]
    stop_seq: str | None = None
    for i, b in enumerate(planned):
        if b.kind != "text" or not stop_sequences:
            continue
        hits = [(b.text.find(s), s) for s in stop_sequences if s and s in b.text]
        if hits:
            pos, seq = min(hits)
            b.text = b.text[:pos]
            planned = planned[: i + 1]
            stop_reason, stop_seq = "stop_sequence", seq
            break
    out: list[Block] = []
    budget = max_tokens
    used = 0
    for b in planned:
        if b.kind not in ("thinking", "text", "tool_use"):
            out.append(b)
            continue
        n = b.tokens
        if n <= budget:
            out.append(b)
            budget -= n
            used += n
            continue
        # max_tokens reached inside this block.
        if budget > 0 or b.kind == "text":
            text, spent, _ = _cut_pieces(b.text, budget)
            b.text = text
            b.complete = b.kind != "tool_use"
            used += spent
            out.append(b)
        return Rendered(out, "max_tokens", None, max(used, 1))
    return Rendered(out, stop_reason, stop_seq, max(used, 1))


def _groups(pieces: list[str], sizes: Sequence[int]) -> list[str]:
    out: list[str] = []
    i, k = 0, 0
    while i < len(pieces):
        n = sizes[k % len(sizes)]
        out.append("".join(pieces[i : i + n]))
        i += n
        k += 1
    return out


def _json_fragments(text: str) -> list[str]:
    out, i, k = [""], 0, 0
    while i < len(text):
        n = _JSON_SIZES[k % len(_JSON_SIZES)]
        out.append(text[i : i + n])
        i += n
        k += 1
    return out


def block_start(b: Block) -> dict[str, Any]:
    if b.kind == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    if b.kind == "text":
        # A cited block starts with an empty citations list, as the service streams it.
        cited = "citations" in b.extra
        return {"citations": [], "type": "text", "text": ""} if cited else {"type": "text", "text": ""}
    if b.kind == "tool_use":
        return {
            "type": "tool_use",
            "id": b.tool_id,
            "name": b.name,
            "input": {},
            "caller": {"type": "direct"},
        }
    if b.kind in CALL_KINDS:
        return {"type": b.kind, "id": b.tool_id, "name": b.name, "input": {}, **b.extra}
    return {"type": b.kind, **b.extra}


def block_deltas(b: Block) -> list[dict[str, Any]]:
    if b.kind == "thinking":
        deltas: list[dict[str, Any]] = []
        if not b.omitted:
            deltas = [
                {"type": "thinking_delta", "thinking": t} for t in _groups(text_pieces(b.text), _THINK_GROUPS)
            ]
        deltas.append({"type": "signature_delta", "signature": b.signature})
        return deltas
    if b.kind == "text":
        # Citations arrive before the text they support, one citations_delta each (recorded streams).
        cites = [{"type": "citations_delta", "citation": c} for c in b.extra.get("citations", ())]
        return cites + [{"type": "text_delta", "text": t} for t in _groups(text_pieces(b.text), _TEXT_GROUPS)]
    if b.kind == "tool_use" or b.kind in CALL_KINDS:
        return [{"type": "input_json_delta", "partial_json": f} for f in _json_fragments(b.text)]
    return []


def final_block(b: Block) -> dict[str, Any]:
    if b.kind == "thinking":
        return {"type": "thinking", "thinking": "" if b.omitted else b.text, "signature": b.signature}
    if b.kind == "text":
        if "citations" in b.extra:
            return {"citations": list(b.extra["citations"]), "type": "text", "text": b.text}
        return {"type": "text", "text": b.text}
    if b.kind == "tool_use":
        return {
            "type": "tool_use",
            "id": b.tool_id,
            "name": b.name,
            "input": _lenient_json(b.text),
            "caller": {"type": "direct"},
        }
    if b.kind in CALL_KINDS:
        return {"type": b.kind, "id": b.tool_id, "name": b.name, "input": _lenient_json(b.text), **b.extra}
    return {"type": b.kind, **b.extra}


def _lenient_json(text: str) -> Any:
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        import jiter

        try:
            return jiter.from_json(text.encode(), partial_mode="trailing-strings")
        except ValueError:
            return {}


def stream_events(
    message: Mapping[str, Any],
    rendered: Rendered,
    usage: Mapping[str, Any],
    *,
    ping_every: int = 40,
) -> list[dict[str, Any]]:
    """All events of a stream, in order."""
    start_msg = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "stop_details": None,
        "usage": {**usage, "output_tokens": 1},
    }
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start_msg}]
    deltas_since_ping = 0
    for index, b in enumerate(rendered.blocks):
        events.append({"type": "content_block_start", "index": index, "content_block": block_start(b)})
        if index == 0:
            events.append({"type": "ping"})
        for d in block_deltas(b):
            events.append({"type": "content_block_delta", "index": index, "delta": d})
            deltas_since_ping += 1
            if deltas_since_ping >= ping_every:
                events.append({"type": "ping"})
                deltas_since_ping = 0
        if b.complete:
            events.append({"type": "content_block_stop", "index": index})
    if not rendered.blocks:
        events.append({"type": "ping"})
    events.append(
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": rendered.stop_reason,
                "stop_sequence": rendered.stop_sequence,
                "stop_details": None,
            },
            "usage": {
                "input_tokens": usage["input_tokens"],
                "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                "cache_read_input_tokens": usage["cache_read_input_tokens"],
                "output_tokens": rendered.output_tokens,
                **({"server_tool_use": usage["server_tool_use"]} if "server_tool_use" in usage else {}),
            },
        }
    )
    events.append({"type": "message_stop"})
    return events


def message_json(message: Mapping[str, Any], rendered: Rendered, usage: Mapping[str, Any]) -> dict[str, Any]:
    """The non-streaming response body."""
    return {
        **message,
        "content": [final_block(b) for b in rendered.blocks],
        "stop_reason": rendered.stop_reason,
        "stop_sequence": rendered.stop_sequence,
        "stop_details": None,
        "usage": {**usage, "output_tokens": rendered.output_tokens},
    }


def encode_event(event: Mapping[str, Any], *, data: str | None = None) -> bytes:
    """``event: <type>\\ndata: <json>\\n\\n``."""
    payload = data if data is not None else json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {payload}\n\n".encode()
