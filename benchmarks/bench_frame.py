"""Benchmarks of claudekit.map and claudekit.batch (DataFrame jobs), each measured side by side in one run.

Run: python benchmarks/bench_frame.py [--rows-live N] [--rows-overhead N] [--rows-batch N] [--rpm R]

1. Live map of 2,000 rows against the offline backend limited to R requests per minute, its buckets
   starting empty (the steady state from the first request): the sustained rate at the server against R,
   429s per call, failed rows.                               Targets: >= 0.9 R, <= 5 % of calls, 0 rows.
2. claudekit's own overhead per row at 100k rows, with a transport that answers instantly: the CPU time
   of ck.map minus the CPU time of the same requests sent by a bare SDK loop (same client, transport and
   concurrency), per row; the stages on their own (template + request, bookkeeping, join); and a Chat per
   row for comparison. Memory: peak traced allocations during ck.map against the result frame's
   memory_usage(deep=True).                                  Targets: <= 0.2 ms per row, <= 3x.
3. Batch: a 100k-row job through the offline backend (split into batches of 25,000): the time of each
   stage (plan, split, submit, the backend's processing, results + join).

CPU time (time.process_time) is used for item 2 because the transport, the SDK and claudekit all run in
this one process, and wall time on a shared machine swings by tens of percent between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
import tracemalloc
from datetime import datetime, timezone
from typing import Any

os.environ.setdefault("CLAUDEKIT_RENDER", "0")

import anthropic
import httpx2
import pandas as pd

import claudekit as ck
from claudekit._request._settings import Settings
from claudekit.frame._columns import result_frame
from claudekit.frame._job import requests_params, split
from claudekit.frame._outcome import from_message
from claudekit.frame._pacing import Pacer
from claudekit.frame._plan import make_plan
from claudekit.offline import BatchSettings, OfflineBackend, OfflineRequest, RateLimits, Turn
from claudekit.offline import make_async_client as offline_client
from claudekit.usage import UsageLog, UsageRecord, session_log

MODEL = "claude-sonnet-4-6"
TEMPLATE = "Classify the sentiment of this review as positive or negative: {text}"


def reviews(n: int) -> pd.DataFrame:
    """Product reviews of a typical length (about 220 characters), each one different."""
    text = (
        "I bought this for my kitchen and after two weeks of daily use I can say the build quality is {q}, "
        "the handle stays cool, cleaning takes a minute, and the price was fair for what you get. "
        "Delivery was on day {d}. (order {i})"
    )
    words = ("great", "awful", "fine", "poor", "excellent", "mediocre")
    return pd.DataFrame({"text": [text.format(q=words[i % 6], d=i % 9, i=i) for i in range(n)]})


# -- 1. live map against an enforced rate limit ----------------------------------------------------------


async def bench_rate_limit(rows: int, rpm: int) -> None:
    admitted: list[float] = []

    def tiny(request: OfflineRequest) -> Turn:
        admitted.append(time.monotonic())
        return Turn(text="positive")

    backend = OfflineBackend(
        responder=tiny, rate_limits=RateLimits(requests_per_minute=rpm, start_full=False)
    )
    df = reviews(rows)
    t0 = time.monotonic()
    out = await ck.map(df, TEMPLATE, offline=backend, max_tokens=20, concurrency=32, progress=False)
    elapsed = time.monotonic() - t0
    calls = sum(1 for m, p in backend.http_log if m == "POST" and p == "/v1/messages")
    refused = backend.rate_limiter.refused
    failed = int((out["claude_status"] != "ok").sum())
    sustained = (len(admitted) - 1) / (admitted[-1] - admitted[0]) * 60
    print(f"\n== 1. live map, {rows:,} rows, offline backend limited to R = {rpm:,} requests/min")
    print("   (its buckets start empty: the steady state from the first request)")
    ratio = sustained / rpm
    print(f"sustained rate at the server   {sustained:8,.0f} /min   = {ratio:.2f} R   (target >= 0.90 R)")
    whole = rows / elapsed * 60
    print(f"whole run, client side         {whole:8,.0f} /min   = {whole / rpm:.2f} R")
    share = refused / calls
    print(f"429s                           {refused:8,d} of {calls:,} calls = {share:.1%}   (target <= 5%)")
    print(f"failed rows                    {failed:8,d}   (target 0)")


# -- 2. overhead per row and memory ----------------------------------------------------------------------


def _message_json() -> bytes:
    return json.dumps(
        {
            "id": "msg_01bench",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": "positive"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 24,
                "output_tokens": 2,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "service_tier": "standard",
            },
        }
    ).encode()


def _stream_body() -> bytes:
    """A real streamed answer from the offline backend, replayed as is by the instant transport."""
    backend = OfflineBackend(responder=lambda r: Turn(text="positive"))
    body = {"model": MODEL, "max_tokens": 20, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    reply = backend.handle("POST", "/v1/messages", {"x-api-key": "k"}, json.dumps(body).encode())
    return reply.body


class Instant(httpx2.AsyncBaseTransport):
    """Answers every request at once with a fixed message (JSON, or SSE for stream=True), and the
    service's rate-limit headers with room to spare."""

    def __init__(self) -> None:
        self.json, self.sse = _message_json(), _stream_body()
        limits = [("requests", 1_000_000), ("input-tokens", 10**9), ("output-tokens", 10**9)]
        self.headers = [("request-id", "req_bench")]
        for name, n in limits:
            self.headers += [
                (f"anthropic-ratelimit-{name}-limit", str(n)),
                (f"anthropic-ratelimit-{name}-remaining", str(n - 1)),
                (f"anthropic-ratelimit-{name}-reset", "2026-12-01T00:00:00Z"),
            ]

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        if b'"stream":true' in body or b'"stream": true' in body:
            return httpx2.Response(
                200,
                headers=[("content-type", "text/event-stream"), *self.headers],
                content=self.sse,
                request=request,
            )
        return httpx2.Response(
            200,
            headers=[("content-type", "application/json"), *self.headers],
            content=self.json,
            request=request,
        )


def instant_client() -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key="bench",
        base_url="http://instant.invalid",
        http_client=httpx2.AsyncClient(transport=Instant()),
    )


async def _sdk_loop(client: anthropic.AsyncAnthropic, bodies: list[dict[str, Any]], concurrency: int) -> None:
    """What a careful hand-written loop does: the same requests, the same concurrency, nothing else."""
    gate = asyncio.Semaphore(concurrency)

    async def one(body: dict[str, Any]) -> Any:
        async with gate:
            return await client.messages.create(**body)

    await asyncio.gather(*(one(b) for b in bodies))


def _cpu(fn: Any) -> tuple[Any, float]:
    gc.collect()
    t = time.process_time()
    out = fn()
    return out, time.process_time() - t


async def bench_overhead(rows: int, concurrency: int = 16) -> None:
    df = reviews(rows)
    settings = Settings(max_tokens=20)
    plan, t_plan = _cpu(lambda: make_plan(df, TEMPLATE, settings))
    bodies = [r.body for r in plan.requests.values()]
    client = instant_client()
    session_log().clear()

    # The bare loop runs before and after claudekit and counts as their mean, so that a drift in the
    # machine's load during the run does not land on one side only.
    t = time.process_time()
    await _sdk_loop(client, bodies, concurrency)
    t_sdk_before = time.process_time() - t
    gc.collect()
    t = time.process_time()
    out = await ck.map(
        df,
        TEMPLATE,
        client=client,
        max_tokens=20,
        concurrency=concurrency,
        progress=False,
        usage_log=UsageLog(),
    )
    t_ck = time.process_time() - t
    assert (out["claude_status"] == "ok").all()
    session_log().clear()
    gc.collect()
    t = time.process_time()
    await _sdk_loop(client, bodies, concurrency)
    t_sdk = (t_sdk_before + time.process_time() - t) / 2

    # The stages on their own, per row.
    message = anthropic.types.Message.model_validate_json(_message_json())
    now = datetime.now(timezone.utc)
    log, pacer, headers = UsageLog(parent=UsageLog()), Pacer(16), httpx2.Headers(Instant().headers)

    def bookkeeping() -> None:
        for i in range(rows):
            record = UsageRecord.from_message(
                message,
                chat_id="bench",
                turn=i,
                step=0,
                model=MODEL,
                request_id="req",
                status="ok",
                latency_s=0.1,
                ttft_s=None,
                started_at=now,
            )
            log.append(record)
            pacer.observe(200, headers)
            from_message(message, None, record)

    _, t_book = _cpu(bookkeeping)
    outcomes = {fp: from_message(message, None, log[0]) for fp in plan.requests}
    _, t_join = _cpu(lambda: result_frame(plan, outcomes, df))

    chat_rows = min(rows, 2_000)
    chat_log = UsageLog()

    async def chats() -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(text: str) -> None:
            async with gate:
                await ck.Chat(client=client, usage_log=chat_log, render=False, max_tokens=20)(text)

        await asyncio.gather(*(one(TEMPLATE.format(text=t)) for t in df["text"][:chat_rows]))

    t = time.process_time()
    await chats()
    t_chat = time.process_time() - t
    stream_bodies = [{**b, "stream": True} for b in bodies[:chat_rows]]
    t = time.process_time()
    await _sdk_loop(client, stream_bodies, concurrency)
    t_stream = time.process_time() - t
    session_log().clear()

    per = lambda seconds, n=rows: seconds / n * 1e3  # noqa: E731 - ms per row
    print(f"\n== 2. overhead per row, {rows:,} rows, a transport that answers instantly (CPU time)")
    print(
        f"bare SDK loop (messages.create)      {per(t_sdk):7.3f} ms/row   (runs before and after: "
        f"{per(t_sdk_before):.3f}, {per(2 * t_sdk - t_sdk_before):.3f})"
    )
    print(f"claudekit.map                        {per(t_ck):7.3f} ms/row")
    print(
        f"claudekit's own overhead             {per(t_ck - t_sdk):7.3f} ms/row   (target <= 0.200)   "
        f"ratio {t_ck / t_sdk:.2f}x the bare loop"
    )
    print(
        f"  of which, measured alone: template + request {per(t_plan):.3f}, bookkeeping "
        f"(usage record + log + pacer + outcome) {per(t_book):.3f}, join into the frame {per(t_join):.3f}"
    )
    print(
        f"for comparison, {chat_rows:,} rows as one Chat per row (streaming turn runner): "
        f"{per(t_chat, chat_rows):.3f} ms/row against {per(t_stream, chat_rows):.3f} for bare streams "
        f"(+{per(t_chat - t_stream, chat_rows):.3f})"
    )

    # Memory: what a job holds at its peak (plan, in-flight requests, records in its log and the
    # session's, outcomes, the frame) against the frame it returns.
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    out = await ck.map(df, TEMPLATE, client=client, max_tokens=20, concurrency=concurrency, progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = int(out.memory_usage(deep=True).sum())
    print(
        f"memory: peak {(peak - base) / 2**20:,.1f} MiB during map ({(peak - base) / rows:,.0f} B/row, the "
        f"usage log's record of every call included) against {size / 2**20:,.1f} MiB for the result frame "
        f"({size / rows:,.0f} B/row) = {(peak - base) / size:.2f}x   (target <= 3x)"
    )
    session_log().clear()
    await client.close()


# -- 3. a 100k-row batch through the offline backend -----------------------------------------------------


async def bench_batch(rows: int, per_batch: int = 25_000) -> None:
    backend = OfflineBackend(
        responder=lambda r: Turn(text="positive"), batches=BatchSettings(processing_seconds=0.0)
    )
    df = reviews(rows)
    settings = Settings(max_tokens=20, cache="1h")
    t = time.perf_counter()
    plan = make_plan(df, TEMPLATE, settings)
    t_plan = time.perf_counter() - t
    items = list(requests_params(plan.requests.values()).values())
    t = time.perf_counter()
    chunks = split(items, per_batch, 256 * 2**20)
    t_split = time.perf_counter() - t

    t = time.perf_counter()
    job = await ck.batch(
        df,
        TEMPLATE,
        offline=backend,
        max_tokens=20,
        max_batch_requests=per_batch,
        poll_interval=0.01,
        progress=False,
    )
    t_batch = time.perf_counter() - t
    t_submit = max(0.0, t_batch - t_plan - t_split)  # ck.batch = plan + split + submit

    client = offline_client(backend)
    t = time.perf_counter()
    for batch_id in job.batch_ids:  # the backend answers each request when it first looks at the batch
        await client.messages.batches.retrieve(batch_id)
    t_process = time.perf_counter() - t
    t = time.perf_counter()
    for batch_id in job.batch_ids:  # the SDK alone: download and decode the JSONL results, nothing else
        async for _item in await client.messages.batches.results(batch_id):
            pass
    t_decode = time.perf_counter() - t
    await client.close()
    t = time.perf_counter()
    out = await job
    t_join = time.perf_counter() - t
    assert (out["claude_status"] == "ok").all() and len(out) == rows

    print(
        f"\n== 3. batch, {rows:,} rows through the offline backend, {len(chunks)} batches of <= {per_batch:,}"
    )
    print(f"plan (template + request per row)        {t_plan:7.2f} s")
    print(f"split into batches                       {t_split:7.2f} s")
    print(f"submit (JSON + HTTP create, per batch)   {t_submit:7.2f} s")
    print(f"offline backend processing               {t_process:7.2f} s   (the service's side)")
    print(f"poll + results (JSONL) + join + frame    {t_join:7.2f} s")
    print(f"  of which the SDK's results() download and decoding alone took {t_decode:.2f} s")
    client_side = t_plan + t_split + t_submit + t_join
    print(
        f"client side, SDK included (all but the backend's processing) "
        f"{client_side:.2f} s = {client_side / rows * 1e3:.3f} ms/row"
    )
    session_log().clear()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows-live", type=int, default=2_000)
    parser.add_argument("--rpm", type=int, default=3_000)
    parser.add_argument("--rows-overhead", type=int, default=100_000)
    parser.add_argument("--rows-batch", type=int, default=100_000)
    args = parser.parse_args()
    await bench_rate_limit(args.rows_live, args.rpm)
    await bench_overhead(args.rows_overhead)
    await bench_batch(args.rows_batch)


if __name__ == "__main__":
    asyncio.run(main())
