"""Calls the SDK retried are in the usage log: one record per HTTP call that got a response."""

from __future__ import annotations

import httpx2
import pandas as pd
import pytest

import claudekit as ck
from claudekit.offline import Fault, OfflineBackend, Script, Turn, make_async_client


async def test_retried_responses_are_logged_before_the_call_that_succeeded() -> None:
    backend = OfflineBackend(
        responder=Script([Fault.status(529), Fault.status(429, retry_after=0), Turn(text="ok")])
    )
    chat = ck.Chat(offline=backend, render=False, max_retries=2)
    reply = await chat("hi")
    assert reply.text == "ok"
    df = chat.usage.df
    assert len(backend.requests) == 3 and len(df) == 3  # one record per HTTP call
    assert list(df["status"]) == ["overloaded_error (retried)", "rate_limit_error (retried)", "ok"]
    assert df["request_id"].notna().all() and df["request_id"].nunique() == 3
    retried = df.iloc[:2]
    # A refused call is not billed: no tokens, no cost (missing, not zero), and it counts as an error.
    assert retried["input_tokens"].isna().all() and retried["cost_usd"].isna().all()
    assert (
        (retried["latency_s"] >= 0).all() and (df["step"] == 0).all() and (df["turn"] == df["turn"][2]).all()
    )
    assert df["timestamp"].is_monotonic_increasing
    summary = chat.usage.summary()
    assert int(summary["calls"].sum()) == 3 and int(summary["errors"].sum()) == 2
    assert df["input_tokens"].iloc[2] == reply.usage.input_tokens  # the success keeps its usage


async def test_when_retries_run_out_every_response_is_logged_once() -> None:
    backend = OfflineBackend(responder=Script([Fault.status(529)] * 3))
    chat = ck.Chat(offline=backend, render=False, max_retries=2)
    with pytest.raises(ck.OverloadedError):
        await chat("hi")
    statuses = list(chat.usage.df["status"])
    assert len(backend.requests) == 3
    assert statuses == ["overloaded_error (retried)"] * 2 + ["overloaded_error"]


async def test_no_retries_means_one_record_and_other_clients_are_untouched() -> None:
    backend = OfflineBackend(responder=Script([Turn(text="a"), Turn(text="b")]))
    sdk = make_async_client(backend, max_retries=0)
    chat = ck.Chat(client=sdk, render=False)
    await chat("hi")
    assert list(chat.usage.df["status"]) == ["ok"]
    # The same client used directly (outside a claudekit call): nothing is watched or logged.
    await sdk.messages.create(
        model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    assert len(chat.usage) == 1
    # The SDK's request middleware does the watching, on claudekit's copy of the client: the caller's own
    # client is left as it was, and a second chat on it shares the same copy (installs nothing twice).
    assert sdk.middleware == () and len(chat.client.middleware) == 1
    assert chat.client._client is sdk._client  # one HTTP client, one connection pool
    assert ck.Chat(client=sdk, render=False).client is chat.client


async def test_a_connection_that_fails_after_a_retried_response_keeps_that_response() -> None:
    calls = 0

    async def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
            return httpx2.Response(529, content=body, headers={"request-id": "req_first"})
        raise httpx2.ConnectError("connection refused")

    sdk = ck.offline.make_async_client(OfflineBackend(), max_retries=1)
    sdk = sdk.with_options(http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)))
    chat = ck.Chat(client=sdk, render=False)
    with pytest.raises(ck.NetworkError):
        await chat("hi")
    df = chat.usage.df
    assert calls == 2
    assert list(df["status"][:1]) == ["overloaded_error (retried)"] and df["request_id"][0] == "req_first"
    assert isinstance(df, pd.DataFrame) and len(df) == 2  # the retried 529, then the failed call itself
