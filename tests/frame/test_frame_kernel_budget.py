"""The kernel budget (set_budget) covers everything the kernel sends: chats at once, ck.map, ck.batch;
failed calls count what is known; a ck.map stuck on 529s ends after give_up_after_s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

import claudekit as ck
from claudekit.frame import Snapshot, set_progress_factory
from claudekit.offline import Fault, OfflineBackend, OfflineRequest, Turn
from claudekit.usage import UsageLog, get_prices, set_budget, spent

from .conftest import MODEL, EchoResponder, calls, messages_sent

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _no_budget_after() -> Iterator[None]:
    yield
    set_budget(None)


async def test_ck_map_keeps_the_kernel_budget(backend: OfflineBackend):
    df = pd.DataFrame({"id": [f"r{i}" for i in range(20)]})
    set_budget(spent() + 0.001)  # below one row's worst case at max_tokens=1000
    out = await ck.map(df, "id={id}", offline=backend, max_tokens=1000, progress=False)

    assert messages_sent(backend) == 0
    assert (out["claude_status"] == "skipped_budget").all()
    assert "set_budget" in out["claude_error"].iloc[0]


async def test_ck_map_rows_in_flight_hold_the_kernel_budget(backend: OfflineBackend):
    price = get_prices().lookup(MODEL)
    assert price is not None
    df = pd.DataFrame({"id": [f"r{i}" for i in range(12)]})
    before = spent()
    room = 150 * price.output * 1e-6 * 1.2  # one row's worst case at max_tokens=150, not two
    set_budget(before + room)
    out = await ck.map(df, "id={id}", offline=backend, max_tokens=150, concurrency=8, progress=False)

    status = out["claude_status"].tolist()
    assert status.count("ok") >= 1 and status.count("skipped_budget") >= 1
    assert messages_sent(backend) == status.count("ok")
    assert spent() - before <= room


async def test_ck_batch_is_refused_before_submitting_past_the_kernel_budget(backend: OfflineBackend):
    df = pd.DataFrame({"id": [f"r{i}" for i in range(20)]})
    set_budget(spent() + 0.0001)
    with pytest.raises(ck.BudgetExceededError) as info:
        await ck.batch(df, "id={id}", offline=backend, max_tokens=1000, progress=False)
    assert calls(backend, "POST", "/v1/messages/batches") == 0
    assert info.value.scope == "session" and "\n" not in str(info.value)
    assert "nothing was" in str(info.value)


async def test_concurrent_chats_cannot_together_pass_the_kernel_budget():
    backend = OfflineBackend(event_delay=0.02)  # the calls overlap
    prompt = "Tell me about the weather on the moon."
    probe = ck.Chat(offline=backend, render=False, max_tokens=400, usage_log=UsageLog())
    worst = (await probe.estimate(prompt)).cost_max_usd
    assert worst is not None
    before = spent()
    set_budget(before + 1.5 * worst)  # room for one call's worst case, not two
    chats = [ck.Chat(offline=backend, render=False, max_tokens=400) for _ in range(5)]
    results = await asyncio.gather(*(c(prompt) for c in chats), return_exceptions=True)

    refused = [r for r in results if isinstance(r, ck.BudgetExceededError)]
    answered = [r for r in results if not isinstance(r, BaseException)]
    assert len(answered) == 1 and len(refused) == 4, results
    assert len(backend.requests) == 1  # counted at the backend
    assert spent() - before <= 1.5 * worst
    assert "held by calls still running" in str(refused[0])


async def test_calls_that_fail_mid_stream_count_their_input_and_what_arrived():
    backend = OfflineBackend(
        responder=lambda _r: Turn(text="word " * 200, fault=Fault.error_event(after_events=6))
    )
    chat = ck.Chat(offline=backend, render=False, system="You are terse. " * 300, usage_log=UsageLog())
    for _ in range(6):
        with pytest.raises(ck.ClaudekitError):
            await chat("Tell me something long.")
    failed = [r for r in chat.usage.records if r.status != "ok"]
    assert len(failed) == 6 and all(r.input_tokens for r in failed)
    price = get_prices().lookup(MODEL)
    assert price is not None
    inputs = sum(r.input_tokens or 0 for r in failed)
    # At least the input tokens are paid; a little more for the words that arrived.
    assert chat.usage.total_cost >= inputs * price.input * 1e-6 > 0
    assert chat.usage.total_cost > inputs * price.input * 1e-6
    assert all(r.output_tokens is None for r in failed)  # still unknown: only the cost counts them


class _Notes:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def update(self, snapshot: Snapshot) -> None:
        self.notes.append(snapshot.note)

    def finish(self, snapshot: Snapshot, error: BaseException | None) -> None:
        self.notes.append(snapshot.note)


async def test_a_map_under_a_persistent_529_gives_up_after_give_up_after_s():
    echo = EchoResponder()

    def overloaded(request: OfflineRequest) -> Any:
        echo(request)
        return Fault.status(529, retry_after=0.05)

    backend = OfflineBackend(responder=overloaded)
    notes = _Notes()
    set_progress_factory(lambda _setting: notes)  # type: ignore[arg-type, return-value]
    try:
        df = pd.DataFrame({"id": [f"r{i}" for i in range(6)]})
        started = time.monotonic()
        out = await ck.map(df, "id={id}", offline=backend, max_retries=0, concurrency=2, give_up_after_s=2.0)
        took = time.monotonic() - started
    finally:
        set_progress_factory(None)

    assert (out["claude_status"] == "overloaded_error").all(), out["claude_status"].tolist()
    assert out["claude_error"].str.len().gt(0).all()
    assert took < 30, took  # not 50 requeues x backoff per row
    assert any(n.startswith("stuck") for n in notes.notes), notes.notes
    # Said before it gave up, and it gave up without sending every row 50 times.
    assert messages_sent(backend) < 6 * 20


async def test_a_reply_interrupted_mid_stream_counts_its_input_and_what_arrived():
    backend = OfflineBackend(responder=lambda _r: Turn(text="word " * 200), event_delay=0.005)
    chat = ck.Chat(offline=backend, render=False, system="You are terse. " * 300, usage_log=UsageLog())
    stream = chat.stream("Tell me something long.")
    words = asyncio.Event()

    async def consume() -> None:
        async for _event in stream:
            if stream.text:  # some words have arrived
                words.set()

    task = asyncio.ensure_future(consume())
    await words.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    record = chat.usage.records[-1]
    assert record.status == "interrupted" and record.input_tokens and record.output_tokens is None
    price = get_prices().lookup(MODEL)
    assert price is not None
    assert record.cost_usd is not None and record.cost_usd > record.input_tokens * price.input * 1e-6
