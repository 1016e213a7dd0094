"""Test helpers for the tool loop: a tiny SSE builder and a scripted Messages API on the real SDK.

Importable inside a kernel too (the real-kernel tests put this directory on ``sys.path``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2

_ids = itertools.count(1)


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def tool_use(
    name: str, input: dict[str, Any] | None = None, id: str | None = None, raw: str | None = None
) -> dict[str, Any]:
    """A tool_use block; ``raw`` sends these exact argument bytes (e.g. malformed JSON)."""
    return {
        "type": "tool_use",
        "id": id or f"toolu_{next(_ids):04d}",
        "name": name,
        "input": input or {},
        "raw": raw,
    }


def reply(*blocks: dict[str, Any], stop: str | None = None) -> list[dict[str, Any]]:
    """One assistant message; the stop reason defaults to tool_use when it has tool calls."""
    if stop is None:
        stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return [{"stop": stop}, *blocks]


def sse(message: list[dict[str, Any]], model: str = "claude-sonnet-4-5") -> bytes:
    """SSE bytes for one message, shaped like the recorded fixtures (message_start … message_stop)."""
    head, *blocks = message
    out: list[tuple[str, dict[str, Any]]] = []
    msg: dict[str, Any] = {
        "id": f"msg_{next(_ids):06d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 1,
        },
    }
    out.append(("message_start", {"type": "message_start", "message": msg}))
    for i, b in enumerate(blocks):
        if b["type"] == "text":
            out.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            t = b["text"]
            for part in (t[: len(t) // 2], t[len(t) // 2 :]):
                out.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "text_delta", "text": part},
                        },
                    )
                )
        else:
            out.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}},
                    },
                )
            )
            js = b["raw"] if b.get("raw") is not None else json.dumps(b["input"])
            for part in (js[: len(js) // 2], js[len(js) // 2 :]):
                out.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "input_json_delta", "partial_json": part},
                        },
                    )
                )
        out.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    out.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": head["stop"], "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        )
    )
    out.append(("message_stop", {"type": "message_stop"}))
    return "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in out).encode()


class ScriptedAPI:
    """Answers successive requests with scripted messages and keeps every request body."""

    def __init__(self, script: list[list[dict[str, Any]]] | Callable[[dict[str, Any]], list[dict[str, Any]]]):
        self.script = script
        self.bodies: list[dict[str, Any]] = []

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if callable(self.script):
            message = self.script(body)
        else:
            message = self.script.pop(0) if self.script else reply(text("(script ended)"))
        return httpx2.Response(
            200,
            content=sse(message),
            headers={"content-type": "text/event-stream", "request-id": "req_tools"},
        )

    def client(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key="sk-test-not-a-real-key",
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(self.handler)),
            max_retries=0,
        )

    def tool_results(self, n: int = -1) -> list[dict[str, Any]]:
        """The tool_result blocks of request ``n`` (its last user message)."""
        last = self.bodies[n]["messages"][-1]
        assert last["role"] == "user"
        return [b for b in last["content"] if b.get("type") == "tool_result"]


# Every run of a tool that the tests deny anywhere. It must stay at zero for the whole suite (the kernel
# tests add the counts they read back from their kernels).
DENIED_TOOL_RUNS: dict[str, int] = {"count": 0}
