"""claudekit.batch and BatchJob through the offline Message Batches endpoints (real SDK, real HTTP)."""

from __future__ import annotations

import random
from typing import Any

import pandas as pd
import pytest

import claudekit as ck
from claudekit.offline import BatchSettings, Fault, OfflineBackend, make_async_client
from claudekit.usage import UsageLog, get_prices

from .conftest import MODEL, EchoResponder, calls, messages_sent

pytestmark = pytest.mark.timeout(60)
FAST = 0.01  # poll interval (wall clock); the backend's own clock decides when a batch ends


def frame(n: int) -> pd.DataFrame:
    labels = [f"row-{i}" for i in range(n)]
    random.Random(3).shuffle(labels)
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)]}, index=labels)


def make_backend(**settings: Any) -> OfflineBackend:
    return OfflineBackend(responder=EchoResponder(), batches=BatchSettings(**settings))


async def test_results_come_back_shuffled_and_are_joined_by_custom_id():
    backend = make_backend(processing_seconds=0.0)
    df = frame(12)
    job = await ck.batch(df, "id={id}", offline=backend, poll_interval=FAST)
    assert isinstance(job, ck.BatchJob) and job.status == "in_progress"
    out = await job

    # The service's order is arbitrary; the offline one is shuffled: check that it really was.
    client = make_async_client(backend)
    returned = [item.custom_id async for item in await client.messages.batches.results(job.batch_ids[0])]
    await client.close()
    submitted = [r["custom_id"] for r in _created_requests(backend)]
    assert sorted(returned) == sorted(submitted) and returned != submitted
    assert out.index.equals(df.index)
    assert out["claude_text"].tolist() == [f"answer for {i}" for i in df["id"]]
    assert (out["claude_status"] == "ok").all() and job.status == "ended"
    assert job.counts["succeeded"] == 12


def _created_requests(backend: OfflineBackend) -> list[dict[str, Any]]:
    batches = backend.batches._batches
    return [{"custom_id": c} for b in batches.values() for c in b.custom_ids]


async def test_custom_ids_are_stable_unique_and_of_the_allowed_shape():
    backend = make_backend(processing_seconds=0.0)
    df = pd.DataFrame({"id": ["a", "b", "c"]}, index=["plain-key", "needs hashing: é/ü", "plain-key"])
    await ck.batch(df, "id={id}", offline=backend)
    await ck.batch(df, "id={id}", offline=backend)
    first, second = (b.custom_ids for b in backend.batches._batches.values())
    assert first == second and len(set(first)) == 3
    assert all(1 <= len(c) <= 64 and all(ch.isalnum() or ch in "_-" for ch in c) for c in first)
    assert first[0].startswith("plain-key-") and first[1].startswith("k")


async def test_errored_and_expired_requests_can_be_sent_again():
    failed_once: set[str] = set()

    def fault(custom_id: str, params: dict[str, Any]) -> Any:
        text = params["messages"][0]["content"][0]["text"]
        if text in ("id=r3", "id=r5") and text not in failed_once:
            failed_once.add(text)
            return "expired" if text == "id=r3" else Fault.status(529)
        return None

    backend = make_backend(processing_seconds=0.0, fault=fault)
    df = frame(8)
    job = await ck.batch(df, "id={id}", offline=backend, poll_interval=FAST)
    out = await job
    by_id = dict(zip(out["id"], out["claude_status"], strict=True))
    assert by_id["r3"] == "expired" and by_id["r5"] == "overloaded_error"
    assert sum(s == "ok" for s in by_id.values()) == 6
    assert job.counts["expired"] == 1 and job.counts["errored"] == 1
    assert "job.retry()" in out.loc[out["id"] == "r3", "claude_error"].iloc[0]

    await job.retry()
    assert calls(backend, "POST", "/v1/messages/batches") == 2
    again = await job
    assert (again["claude_status"] == "ok").all()
    assert len(backend.batches._batches[job.batch_ids[-1]].custom_ids) == 2  # only those two went again


async def test_cancel_mid_way_keeps_what_finished_and_cancels_the_rest():
    backend = make_backend(processing_seconds=10.0, cancel_seconds=1.0)
    df = frame(10)
    job = await ck.batch(df, "id={id}", offline=backend, poll_interval=FAST)
    backend.advance(5.5)  # on the backend's clock, half of the requests have been answered
    assert await job.cancel() == "canceling"
    backend.advance(1.0)
    out = await job
    status = out["claude_status"].tolist()
    assert status.count("ok") == 5 and status.count("canceled") == 5
    assert job.counts["canceled"] == 5 and job.status == "ended"
    canceled = out[out["claude_status"] == "canceled"]
    assert canceled["claude_text"].isna().all() and (canceled["claude_error"].str.contains("canceled")).all()


async def test_jobs_are_split_at_the_configured_size_limits():
    backend = make_backend(processing_seconds=0.0, max_requests=4, max_bytes=2_500)
    df = frame(10)
    out = await (
        await ck.batch(
            df, "id={id}", offline=backend, max_batch_requests=4, poll_interval=FAST, max_batch_bytes=2_500
        )
    )
    sizes = [len(b.custom_ids) for b in backend.batches._batches.values()]
    assert sum(sizes) == 10 and max(sizes) <= 4 and len(sizes) >= 3
    assert (out["claude_status"] == "ok").all()

    # A client that allows more than the service does gets the service's refusal, on one line.
    with pytest.raises(ck.APIError, match="at most 4 requests") as err:
        await ck.batch(frame(6), "id={id} again", offline=backend, max_batch_bytes=10_000)
    assert "\n" not in str(err.value)


async def test_batch_costs_half_of_live_for_the_same_rows_and_tokens():
    backend = make_backend(processing_seconds=0.0)
    df = frame(6)  # prompts far below the cacheable minimum: no cache effects on either side
    log = UsageLog()
    live = await ck.map(df, "id={id} tell me more", offline=backend, usage_log=log, max_tokens=300)
    batched = await (
        await ck.batch(df, "id={id} tell me more", offline=backend, usage_log=log, max_tokens=300)
    )

    for col in ("claude_input_tokens", "claude_output_tokens"):
        assert batched[col].tolist() == live[col].tolist()
    price = get_prices().lookup(MODEL)
    assert price is not None
    expected = (
        live["claude_input_tokens"] * price.input + live["claude_output_tokens"] * price.output
    ) * 1e-6
    assert live["claude_cost_usd"].tolist() == pytest.approx(expected.tolist())
    assert batched["claude_cost_usd"].tolist() == pytest.approx((0.5 * expected).tolist())
    tiers = log.df.groupby("service_tier", observed=True)["cost_usd"].sum()
    assert tiers["batch"] == pytest.approx(0.5 * tiers["standard"])


async def test_budget_refuses_to_submit_a_batch_whose_upper_bound_passes_it():
    backend = make_backend(processing_seconds=0.0)
    with pytest.raises(ck.BudgetExceededError, match="refused before submitting") as err:
        await ck.batch(frame(5), "id={id}", offline=backend, max_tokens=1000, max_cost_usd=0.001)
    assert "nothing was submitted" in str(err.value)
    assert calls(backend, "POST", "/v1/messages/batches") == 0 and messages_sent(backend) == 0
    job = await ck.batch(frame(5), "id={id}", offline=backend, max_tokens=1000, max_cost_usd=1.0)
    assert len(job.batch_ids) == 1


async def test_running_the_same_batch_again_with_state_re_attaches(tmp_path: Any):
    backend = make_backend(processing_seconds=5.0)
    df = frame(6)
    state = tmp_path / "batch.jsonl"
    first = await ck.batch(df, "id={id}", offline=backend, state=state, poll_interval=FAST)
    assert first.df["claude_status"].eq("pending").all()
    # "The kernel restarts" here: the same call again must not submit anything.
    again = await ck.batch(df, "id={id}", offline=backend, state=state, poll_interval=FAST)
    assert calls(backend, "POST", "/v1/messages/batches") == 1
    assert again.batch_ids == first.batch_ids
    backend.advance(5.0)
    out = await again
    assert (out["claude_status"] == "ok").all()
    # And once everything is in the state file, a third run sends nothing at all.
    before = len(backend.http_log)
    third = await ck.batch(df, "id={id}", offline=backend, state=state)
    assert third.batch_ids == [] and len(backend.http_log) == before
    pd.testing.assert_frame_equal(await third, out)
