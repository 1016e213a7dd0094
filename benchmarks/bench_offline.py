"""Benchmark the offline backend: throughput, time to first event, and cache strategies.

Run: ``python benchmarks/bench_offline.py``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import anthropic
import httpx2

from claudekit.offline import OfflineBackend, count_tokens, make_async_client
from claudekit.offline._shapes import adapter, check_shape
from claudekit.offline._tokens import REQUEST_FRAMING
from claudekit.offline._validation import Context, validate_request

MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": "Benchmark me, please."}]}
HEADERS = {"x-api-key": "offline", "anthropic-version": "2023-06-01"}


async def _throughput(http: httpx2.AsyncClient, n: int, stream: bool) -> tuple[float, float]:
    """(requests/s, median ms to first body chunk) over ``n`` sequential requests."""
    firsts: list[float] = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        async with http.stream(
            "POST", "/v1/messages", json={**BODY, "stream": stream}, headers=HEADERS
        ) as resp:
            first = True
            async for _chunk in resp.aiter_raw():
                if first:
                    firsts.append(time.perf_counter() - t0)
                    first = False
    elapsed = time.perf_counter() - start
    return n / elapsed, statistics.median(firsts) * 1000


async def bench_transports(n: int = 300) -> None:
    backend = OfflineBackend()
    print(f"== throughput, {n} sequential requests each (sonnet, short prompt, default responder)")
    async with httpx2.AsyncClient(
        transport=backend.async_transport(), base_url="http://offline.invalid"
    ) as http:
        for stream in (False, True):
            rps, ttfe = await _throughput(http, n, stream)
            print(f"in-process transport  stream={stream!s:5}  {rps:8.1f} req/s   first event {ttfe:6.2f} ms")
    with backend.serve() as server:
        async with httpx2.AsyncClient(base_url=server.base_url) as http:
            for stream in (False, True):
                rps, ttfe = await _throughput(http, n, stream)
                print(
                    f"loopback HTTP server  stream={stream!s:5}  {rps:8.1f} req/s   first event "
                    f"{ttfe:6.2f} ms"
                )
    # The whole SDK path too (parsing, accumulation).
    client = make_async_client(backend)
    t0 = time.perf_counter()
    for _ in range(n // 3):
        async with client.messages.stream(**BODY) as s:  # type: ignore[arg-type]
            await s.get_final_message()
    print(f"SDK messages.stream over in-process  {(n // 3) / (time.perf_counter() - t0):8.1f} req/s")


SYSTEM = " ".join(
    f"Policy {i}: when a customer asks about shipment {i}, check the tracking tool, quote the "
    "carrier's status "
    f"verbatim, and never promise a delivery date you cannot verify."
    for i in range(118)
)
TOOLS: list[dict[str, Any]] = [
    {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
    {
        "name": "track_shipment",
        "description": "Track a shipment by its tracking number",
        "input_schema": {
            "type": "object",
            "properties": {"tracking_number": {"type": "string"}},
            "required": ["tracking_number"],
        },
    },
    {
        "name": "get_time",
        "description": "Get the local time in a timezone",
        "input_schema": {
            "type": "object",
            "properties": {"timezone": {"type": "string"}},
            "required": ["timezone"],
        },
    },
]
CITIES = ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Delhi", "Tokyo", "Quito", "Dakar", "Seoul"]


def _with_cc(block: dict[str, Any]) -> dict[str, Any]:
    return {**block, "cache_control": {"type": "ephemeral"}}


def _shape(strategy: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    tools = [dict(t) for t in TOOLS]
    system: list[dict[str, Any]] = [{"type": "text", "text": SYSTEM}]
    msgs = [{**m, "content": [dict(b) for b in m["content"]]} for m in messages]
    extra: dict[str, Any] = {}
    if strategy in ("common", "claudekit default"):
        tools[-1] = _with_cc(tools[-1])
        system[-1] = _with_cc(system[-1])
    if strategy == "common":
        for role in ("user", "assistant"):
            for m in reversed(msgs):
                if m["role"] == role:
                    m["content"][-1] = _with_cc(m["content"][-1])
                    break
    if strategy == "claudekit default":
        extra["cache_control"] = {"type": "ephemeral"}
    return {"model": MODEL, "max_tokens": 2048, "tools": tools, "system": system, "messages": msgs, **extra}


async def bench_cache(turns: int = 20) -> None:
    static = count_tokens(tools=TOOLS, system=SYSTEM, messages=[]) - REQUEST_FRAMING
    print(f"\n== {turns}-turn tool session, system+tools = {static} tokens, model {MODEL}")
    print(
        f"{'strategy':18} {'input':>8} {'cache write':>12} {'cache read':>11} {'max read':>9} "
        f"{'cached share':>13}"
    )
    for strategy in ("none", "common", "claudekit default"):
        client = make_async_client(OfflineBackend())
        messages: list[dict[str, Any]] = []
        sums = {"input": 0, "write": 0, "read": 0, "max": 0}
        previous_cacheable = 0
        city = 0
        for _turn in range(turns):
            if not messages or messages[-1]["role"] == "assistant":
                messages.append(
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "text",
                                "text": f"What's the weather in {CITIES[city % len(CITIES)]} today?",
                            }
                        ],
                    }
                )
                city += 1
            body = _shape(strategy, messages)
            msg = await client.messages.create(**body)
            u = msg.usage
            sums["input"] += u.input_tokens
            sums["write"] += u.cache_creation_input_tokens or 0
            sums["read"] += u.cache_read_input_tokens or 0
            sums["max"] += previous_cacheable  # everything sent before could have been read
            previous_cacheable = count_tokens(body) - REQUEST_FRAMING
            content = [b.model_dump(exclude_none=True) for b in msg.content]
            messages.append({"role": "assistant", "content": content})
            ids = [b["id"] for b in content if b["type"] == "tool_use"]
            if ids:
                messages.append(
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": i,
                                "content": "Sunny, 23C, light wind from the west.",
                            }
                            for i in ids
                        ],
                    }
                )
        share = sums["read"] / sums["max"] if sums["max"] else 0.0
        print(
            f"{strategy:18} {sums['input']:8d} {sums['write']:12d} {sums['read']:11d} {sums['max']:9d} "
            f"{share:13.3f}"
        )


def _long_conversation(turns: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for i in range(turns):
        tid = f"toolu_{i:04d}"
        messages.append({"role": "user", "content": f"Weather in {CITIES[i % len(CITIES)]}?"})
        call = {"type": "tool_use", "id": tid, "name": "get_weather", "input": {"city": CITIES[i % 10]}}
        messages.append({"role": "assistant", "content": [{"type": "text", "text": "Checking."}, call]})
        messages.append(
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid, "content": "sun"}]}
        )
        messages.append({"role": "assistant", "content": "It is sunny."})
    messages.append({"role": "user", "content": "Thanks."})
    return {"model": MODEL, "max_tokens": 256, "tools": TOOLS, "system": SYSTEM, "messages": messages}


def _per_call(fn: Any, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def bench_validation() -> None:
    """Validation's share of a request: SDK-shape check, then all rules, against the whole handle()."""
    adapter.cache_clear()
    t0 = time.perf_counter()
    adapter("messages", False)
    build = time.perf_counter() - t0
    print(f"\n== validation (first request builds the SDK-shape validator once: {build * 1000:.0f} ms)")
    print(f"{'request':28} {'shape':>9} {'all rules':>10} {'handle()':>10} {'rules/handle':>13}")
    backend = OfflineBackend()
    ctx = Context(backend.signer)
    headers = {"x-api-key": "offline"}
    for label, body, n in (
        ("short prompt", BODY, 300),
        ("100-turn tool conversation", _long_conversation(100), 30),
    ):
        raw = json.dumps(body).encode()
        shape = _per_call(lambda b=body: check_shape(b, surface="messages", beta=False), n)
        rules = _per_call(lambda b=body: validate_request(b, ctx), n)
        whole = _per_call(lambda r=raw: backend.handle("POST", "/v1/messages", headers, r), n)
        print(
            f"{label:28} {shape * 1000:7.3f}ms {rules * 1000:8.3f}ms {whole * 1000:8.3f}ms "
            f"{rules / whole:12.0%}"
        )


def main() -> None:
    asyncio.run(bench_transports())
    asyncio.run(bench_cache())
    bench_validation()
    _ = anthropic  # imported so the benchmark fails fast if the SDK is missing


if __name__ == "__main__":
    main()
