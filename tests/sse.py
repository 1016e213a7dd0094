"""A tiny builder for Messages API SSE bodies shaped like the recorded ones in shared/."""

from __future__ import annotations

import json
from typing import Any


def event(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


def message_start(msg_id: str = "msg_test", model: str = "claude-sonnet-4-6", **usage: Any) -> dict[str, Any]:
    u = {"input_tokens": 10, "output_tokens": 1, **usage}
    return {
        "type": "message_start",
        "message": {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": u,
        },
    }


def text_block(index: int, chunks: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
    ]
    out += [
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": c}}
        for c in chunks
    ]
    out.append({"type": "content_block_stop", "index": index})
    return out


def thinking_block(index: int, chunks: list[str], signature: str = "sig-abc") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        }
    ]
    out += [
        {"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": c}}
        for c in chunks
    ]
    out.append(
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "signature_delta", "signature": signature},
        }
    )
    out.append({"type": "content_block_stop", "index": index})
    return out


def tool_block(
    index: int, tool_id: str, name: str, fragments: list[str], stop: bool = True
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {
                "type": "tool_use",
                "id": tool_id,
                "name": name,
                "input": {},
                "caller": {"type": "direct"},
            },
        }
    ]
    out += [
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": f},
        }
        for f in fragments
    ]
    if stop:
        out.append({"type": "content_block_stop", "index": index})
    return out


def message_end(stop_reason: str = "end_turn", output_tokens: int = 5, **usage: Any) -> list[dict[str, Any]]:
    return [
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens, **usage},
        },
        {"type": "message_stop"},
    ]


def body(*parts: list[dict[str, Any]] | dict[str, Any]) -> bytes:
    out = b""
    for p in parts:
        for e in p if isinstance(p, list) else [p]:
            out += event(e)
    return out


def text_reply(text: str = "Hello!", msg_id: str = "msg_test", **usage: Any) -> bytes:
    return body(
        message_start(msg_id, **usage),
        text_block(0, [text[: len(text) // 2], text[len(text) // 2 :]]),
        message_end(),
    )


def tool_reply(calls: list[tuple[str, str, dict[str, Any]]], msg_id: str = "msg_tools") -> bytes:
    blocks: list[dict[str, Any]] = []
    for i, (tid, name, args) in enumerate(calls):
        raw = json.dumps(args)
        blocks += tool_block(i, tid, name, ["", raw[:5], raw[5:]])
    return body(message_start(msg_id), blocks, message_end("tool_use"))
