"""Event pipeline cost against the SDK's own MessageStream, measured side by side in one run.

1. 20k text deltas: claudekit's typed events vs plain iteration of ``client.messages.stream()``.
   Target: <= 1.10x.
2. A tool argument of 256 KB and 1 MB streamed in 20-byte deltas: claudekit must grow linearly
   (4x the payload -> <= 5x the time) and take <= 0.2x of MessageStream at 1 MB, which re-parses the
   whole buffer on every delta. The final message is checked equal to MessageStream's.

Run: python benchmarks/bench_stream.py
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

import anthropic
import httpx2

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import claudekit as ck
from tests import sse


def client_for(body: bytes) -> anthropic.AsyncAnthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    return anthropic.AsyncAnthropic(
        api_key="bench", http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    )


def text_body(n: int) -> bytes:
    return sse.body(
        sse.message_start(), sse.text_block(0, [f"w{i % 10} " for i in range(n)]), sse.message_end()
    )


def tool_body(n_bytes: int, piece: int = 20) -> bytes:
    args = json.dumps({"data": "x" * (n_bytes - 12)})
    frags = [args[i : i + piece] for i in range(0, len(args), piece)]
    return sse.body(
        sse.message_start(), sse.tool_block(0, "toolu_1", "save", frags), sse.message_end("tool_use")
    )


async def sdk_stream(body: bytes) -> tuple[float, Any]:
    client = client_for(body)
    t = time.perf_counter()
    async with client.messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    ) as s:
        async for _ in s:
            pass
        msg = await s.get_final_message()
    return time.perf_counter() - t, msg


async def claudekit_stream(body: bytes) -> tuple[float, Any]:
    chat = ck.Chat(client=client_for(body), render=False, cache=False)
    t = time.perf_counter()
    n = 0
    async for _ in chat.stream("x"):
        n += 1
    elapsed = time.perf_counter() - t
    assert chat.last_reply is not None
    return elapsed, chat.last_reply.message


async def best_of(fn: Any, body: bytes, runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        t, result = await fn(body)
        times.append(t)
    return min(times), result


async def main() -> None:
    body = text_body(20_000)
    # Interleave the two so that machine noise hits both alike.
    sdk_t, ck_t = [], []
    for _ in range(5):
        t, sdk_msg = await sdk_stream(body)
        sdk_t.append(t)
        t, ck_msg = await claudekit_stream(body)
        ck_t.append(t)
    assert ck_msg == sdk_msg
    ratio = min(ck_t) / min(sdk_t)
    print(
        f"20k text deltas: MessageStream {min(sdk_t):.3f} s, claudekit {min(ck_t):.3f} s "
        f"(median {statistics.median(sdk_t):.3f} / {statistics.median(ck_t):.3f}); "
        f"ratio {ratio:.2f}x (target <= 1.10x)"
    )

    small, large = tool_body(256 * 1024), tool_body(1024 * 1024)
    ck_small, _ = await best_of(claudekit_stream, small, 3)
    ck_large, ck_msg = await best_of(claudekit_stream, large, 3)
    sdk_large, sdk_msg = await best_of(sdk_stream, large, 1)
    assert ck_msg == sdk_msg, "final message differs from MessageStream's"
    growth = ck_large / ck_small
    print(
        f"tool args 256 KB: claudekit {ck_small:.3f} s; 1 MB: claudekit {ck_large:.3f} s; "
        f"growth for 4x bytes {growth:.2f}x (target <= 5x)"
    )
    print(
        f"tool args 1 MB: MessageStream {sdk_large:.3f} s; "
        f"claudekit/MessageStream {ck_large / sdk_large:.3f}x "
        f"(target <= 0.2x); final messages equal: {ck_msg == sdk_msg}"
    )


if __name__ == "__main__":
    asyncio.run(main())
