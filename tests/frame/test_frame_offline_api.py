"""The offline backend's Message Batches endpoints and rate limits, through the SDK's own client."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import anthropic
import httpx2
import pytest

from claudekit.offline import BatchSettings, OfflineBackend, RateLimits, make_async_client

from .conftest import MODEL

pytestmark = pytest.mark.timeout(60)


def request(custom_id: str, text: str = "hello", **params: Any) -> dict[str, Any]:
    body = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": text}], **params}
    return {"custom_id": custom_id, "params": body}


async def test_a_batch_goes_from_in_progress_to_ended_on_the_backends_clock():
    backend = OfflineBackend(batches=BatchSettings(processing_seconds=60.0))
    client = make_async_client(backend)
    batch = await client.messages.batches.create(requests=[request(f"r{i}") for i in range(3)])
    assert batch.processing_status == "in_progress" and batch.results_url is None
    assert batch.request_counts.processing == 3
    assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(86_400, abs=1)
    backend.advance(30.0)
    mid = await client.messages.batches.retrieve(batch.id)
    # The service tallies results only once the whole batch has ended.
    assert mid.processing_status == "in_progress" and mid.request_counts.processing == 3
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        await client.messages.batches.results(batch.id)
    backend.advance(30.0)
    done = await client.messages.batches.retrieve(batch.id)
    assert done.processing_status == "ended" and done.request_counts.succeeded == 3
    assert done.ended_at is not None and done.results_url is not None
    assert done.results_url.endswith(f"/v1/messages/batches/{batch.id}/results")
    items = [item async for item in await client.messages.batches.results(batch.id)]
    assert {i.custom_id for i in items} == {"r0", "r1", "r2"}
    assert all(i.result.type == "succeeded" and i.result.message.usage.service_tier == "batch" for i in items)
    await client.close()


async def test_each_request_is_validated_and_cached_like_a_messages_call():
    backend = OfflineBackend(batches=BatchSettings(processing_seconds=0.0))
    client = make_async_client(backend)
    system = [{"type": "text", "text": "rules " * 1500, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    reqs = [request(f"c{i}", f"question {i}", system=system) for i in range(3)]
    reqs.append(
        {"custom_id": "no-max", "params": {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}}
    )
    reqs.append(request("streamed", stream=True))
    batch = await client.messages.batches.create(requests=reqs)
    results = {i.custom_id: i.result async for i in await client.messages.batches.results(batch.id)}
    assert results["no-max"].type == "errored"
    assert results["no-max"].error.error.type == "invalid_request_error"
    assert "max_tokens" in results["no-max"].error.error.message
    assert results["streamed"].type == "errored"
    usages = [results[f"c{i}"].message.usage for i in range(3)]
    assert sorted(u.cache_creation_input_tokens > 0 for u in usages) == [False, False, True]
    assert sum(u.cache_read_input_tokens > 0 for u in usages) == 2
    await client.close()


async def test_envelope_rules_and_size_limits_are_enforced():
    backend = OfflineBackend(batches=BatchSettings(max_requests=3, max_bytes=1_000))
    client = make_async_client(backend, max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match="custom_id"):
        await client.messages.batches.create(requests=[request("has space")])
    with pytest.raises(anthropic.BadRequestError, match="not unique"):
        await client.messages.batches.create(requests=[request("a"), request("a")])
    with pytest.raises(anthropic.BadRequestError, match="at most 3"):
        await client.messages.batches.create(requests=[request(f"r{i}") for i in range(4)])
    with pytest.raises(anthropic.APIStatusError) as err:
        await client.messages.batches.create(requests=[request("big", "x" * 2_000)])
    assert err.value.status_code == 413
    await client.close()


async def test_list_cancel_delete_expiry_and_retention():
    backend = OfflineBackend(batches=BatchSettings(processing_seconds=3 * 86_400.0))  # slower than 24 h
    client = make_async_client(backend, max_retries=0)
    ids = [(await client.messages.batches.create(requests=[request(f"r{i}")])).id for i in range(3)]
    page = await client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    rest = await client.messages.batches.list(limit=2, after_id=page.data[-1].id)
    assert [b.id for b in rest.data] == [ids[0]] and not rest.has_more

    with pytest.raises(anthropic.BadRequestError, match="still processing"):
        await client.messages.batches.delete(ids[0])
    canceled = await client.messages.batches.cancel(ids[0])
    assert canceled.cancel_initiated_at is not None
    assert (await client.messages.batches.retrieve(ids[0])).request_counts.canceled == 1

    backend.advance(86_400.0)  # a day later the others expire unfinished
    expired = await client.messages.batches.retrieve(ids[1])
    assert expired.processing_status == "ended" and expired.request_counts.expired == 1
    assert (await client.messages.batches.delete(ids[0])).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.batches.retrieve(ids[0])

    backend.advance(29 * 86_400.0)  # results are kept 29 days
    archived = await client.messages.batches.retrieve(ids[1])
    assert archived.archived_at is not None and archived.results_url is None
    await client.close()


async def test_every_message_response_reports_the_rate_limits():
    # A clock that stands still: no refill between the two requests, so the differences are exact.
    backend = OfflineBackend(
        clock=lambda: 1_000.0, rate_limits=RateLimits(requests_per_minute=50, input_tokens_per_minute=10_000)
    )
    client = make_async_client(backend)
    seen = []
    for text in ("one", "two words here"):
        raw = await client.messages.with_raw_response.create(
            model=MODEL, max_tokens=20, messages=[{"role": "user", "content": text}]
        )
        seen.append((raw.headers, (await raw.parse()).usage))
    (h1, _), (h2, u2) = seen
    assert h1["anthropic-ratelimit-requests-limit"] == "50"
    assert int(h1["anthropic-ratelimit-requests-remaining"]) == 49
    assert int(h2["anthropic-ratelimit-requests-remaining"]) == 48
    spent = int(h1["anthropic-ratelimit-input-tokens-remaining"]) - int(
        h2["anthropic-ratelimit-input-tokens-remaining"]
    )
    assert spent == u2.input_tokens
    reset = datetime.strptime(h2["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc
    )
    assert reset > datetime.now(timezone.utc)  # the bucket is full again only after some refill
    assert "anthropic-ratelimit-output-tokens-remaining" in h2 and "anthropic-ratelimit-tokens-limit" in h2
    await client.close()


async def test_an_enforced_limit_answers_429_with_retry_after_until_the_bucket_refills():
    backend = OfflineBackend(clock=lambda: 1_000.0, rate_limits=RateLimits(requests_per_minute=2))
    http = httpx2.AsyncClient(
        transport=backend.async_transport(), base_url="http://offline.claudekit.invalid"
    )
    body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    codes = [(await http.post("/v1/messages", json=body, headers={"x-api-key": "k"})) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    refused = codes[2]
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.headers["retry-after"] == "30"  # one request refills in 60 s / 2
    assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
    backend.advance(30.0)
    assert (await http.post("/v1/messages", json=body, headers={"x-api-key": "k"})).status_code == 200
    await http.aclose()
