"""Event pipeline cost against the SDK, measured side by side in one run.

1. 20k text deltas: claudekit's typed events vs plain iteration of ``client.messages.stream()``
   (target <= 1.10x), and vs the floor: plainly iterating the raw ``messages.create(stream=True)``
   over the same bytes, which claudekit must decode anyway (target <= 1.05x).
2. A tool argument of 256 KB and 1 MB streamed in 20-byte deltas: claudekit must grow linearly
   (4x the payload -> <= 5x the time), take <= 0.2x of MessageStream at 1 MB, which re-parses the
   whole buffer on every delta, and <= 1.05x of the raw iteration. The final message is checked equal
   to MessageStream's.

Measured (2 cores, shared): claudekit/raw iteration 1.03x instructions per text delta, 1.05-1.06x per
20-byte tool-argument fragment (the goal not quite met there; it was 1.11x); CPU time 1.10x / 1.07x with
the other core busy (was ~1.09x / ~1.15x).

Run: python benchmarks/bench_stream.py
     python benchmarks/bench_stream.py --instructions   # per-delta instruction counts (valgrind), which a
                                                         # busy machine cannot disturb; a few minutes
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

# CPU time of this process: the pipelines are single-threaded and CPU-bound, and on a shared machine
# wall-clock time mostly measures the neighbours.
_clock = time.process_time


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
    t = _clock()
    async with client.messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    ) as s:
        async for _ in s:
            pass
        msg = await s.get_final_message()
    return _clock() - t, msg


async def raw_stream(body: bytes) -> tuple[float, Any]:
    """The floor: the SDK's SSE decoding and event types, nothing else."""
    client = client_for(body)
    t = _clock()
    stream = await client.messages.create(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}], stream=True
    )
    async for _ in stream:
        pass
    return _clock() - t, None


async def claudekit_stream(body: bytes) -> tuple[float, Any]:
    chat = ck.Chat(client=client_for(body), render=False, cache=False)
    t = _clock()
    n = 0
    async for _ in chat.stream("x"):
        n += 1
    elapsed = _clock() - t
    assert chat.last_reply is not None
    return elapsed, chat.last_reply.message


async def best_of(fn: Any, body: bytes, runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        t, result = await fn(body)
        times.append(t)
    return min(times), result


async def side_by_side(fns: list[Any], body: bytes, runs: int) -> list[tuple[float, float, Any]]:
    """(best, median, last result) of each function, interleaved so that machine noise hits all alike."""
    times: list[list[float]] = [[] for _ in fns]
    results: list[Any] = [None] * len(fns)
    for _ in range(runs):
        for i, fn in enumerate(fns):
            t, results[i] = await fn(body)
            times[i].append(t)
    return [(min(ts), statistics.median(ts), r) for ts, r in zip(times, results, strict=True)]


async def main() -> None:
    body = text_body(20_000)
    (sdk_t, sdk_med, sdk_msg), (raw_t, raw_med, _), (ck_t, ck_med, ck_msg) = await side_by_side(
        [sdk_stream, raw_stream, claudekit_stream], body, 7
    )
    assert ck_msg == sdk_msg
    print(
        f"20k text deltas: MessageStream {sdk_t:.3f} s, raw create(stream=True) {raw_t:.3f} s, "
        f"claudekit {ck_t:.3f} s (medians {sdk_med:.3f} / {raw_med:.3f} / {ck_med:.3f})"
    )
    print(f"  claudekit/MessageStream {ck_t / sdk_t:.2f}x (target <= 1.10x)")
    print(f"  claudekit/raw iteration {ck_t / raw_t:.3f}x (target <= 1.05x)")

    small, large = tool_body(256 * 1024), tool_body(1024 * 1024)
    ((ck_small, _, _),) = await side_by_side([claudekit_stream], small, 3)
    (raw_large, _, _), (ck_large, _, ck_msg) = await side_by_side([raw_stream, claudekit_stream], large, 5)
    sdk_large, sdk_msg = await best_of(sdk_stream, large, 1)
    assert ck_msg == sdk_msg, "final message differs from MessageStream's"
    growth = ck_large / ck_small
    print(
        f"tool args 256 KB: claudekit {ck_small:.3f} s; 1 MB: claudekit {ck_large:.3f} s; "
        f"growth for 4x bytes {growth:.2f}x (target <= 5x)"
    )
    print(
        f"tool args 1 MB: MessageStream {sdk_large:.3f} s, raw create(stream=True) {raw_large:.3f} s; "
        f"claudekit/MessageStream {ck_large / sdk_large:.3f}x (target <= 0.2x); "
        f"claudekit/raw iteration {ck_large / raw_large:.3f}x (target <= 1.05x); "
        f"final messages equal: {ck_msg == sdk_msg}"
    )


async def _one(case: str, kind: str, n: int) -> None:
    """One pipeline over ``n`` deltas (text, or 20-byte tool-argument fragments) in this process (run
    under callgrind by ``instructions``)."""
    # The turn's interrupt waker ticks every 0.25 s of wall time: ~50x slower under valgrind, its ticks
    # would be counted per delta and vary with the machine's load. Off here; outside it costs nothing.
    import claudekit._runner._turn

    claudekit._runner._turn._WAKE_S = 1e9
    body = text_body(n) if case == "text" else tool_body(n * 20)
    if kind != "body":
        await (raw_stream if kind == "raw" else claudekit_stream)(body)


def instructions(sizes: tuple[int, int] = (1_000, 5_000)) -> None:
    """Instructions per delta, from the slope between two sizes (start-up cancels out), with the cost
    of building the test body itself taken off both; for text deltas and for tool-argument fragments."""
    import concurrent.futures
    import re
    import subprocess

    def count(case: str, kind: str, n: int) -> int:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__]
        out = subprocess.run([*cmd, "--one", case, kind, str(n)], capture_output=True, text=True, check=True)
        return int(re.findall(r"Collected : (\d+)", out.stderr)[-1])

    cases, kinds = ("text", "tool"), ("body", "raw", "claudekit")
    jobs = [(c, k, n) for c in cases for k in kinds for n in sizes]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        counts = dict(zip(jobs, pool.map(lambda j: count(*j), jobs), strict=True))
    for case, what in (("text", "text delta"), ("tool", "20-byte tool-argument delta")):
        slope = {
            k: (counts[case, k, sizes[1]] - counts[case, k, sizes[0]]) / (sizes[1] - sizes[0]) for k in kinds
        }
        raw, ours = slope["raw"] - slope["body"], slope["claudekit"] - slope["body"]
        print(f"instructions per {what}: raw create(stream=True) {raw:,.0f}, claudekit {ours:,.0f}")
        print(f"  claudekit/raw iteration {ours / raw:.3f}x (target <= 1.05x)")
        fixed = counts[case, "claudekit", sizes[0]] - counts[case, "raw", sizes[0]] - (ours - raw) * sizes[0]
        print(
            f"  claudekit's fixed cost per reply (request, history, usage record): {fixed / 1e6:,.1f}M "
            "instructions"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        asyncio.run(_one(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    elif sys.argv[1:2] == ["--instructions"]:
        instructions()
    else:
        asyncio.run(main())
