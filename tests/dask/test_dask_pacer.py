"""The cluster pacer's own rules, on a clock the test moves (no cluster: the class is plain Python)."""

from __future__ import annotations

import asyncio
from typing import Any

from claudekit.frame._cluster import ClusterPacer, ClusterPermits
from claudekit.frame._pacing import Cost

P = "anthropic-ratelimit-"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _report(clock: Clock, remaining: int, limit: int = 600, **extra: Any) -> dict[str, Any]:
    headers = {f"{P}requests-limit": str(limit), f"{P}requests-remaining": str(remaining)}
    return {"headers": headers, "at": clock.t, **extra}


def test_one_probe_until_a_response_says_the_limits_then_permits_in_small_batches() -> None:
    clock = Clock()
    pacer = ClusterPacer(clock=clock)
    assert pacer.grant(2, (0.0, 0.0), None) == (1, 0.0)  # the probe
    got, wait = pacer.grant(2, (0.0, 0.0), None)  # another worker, before the probe's answer
    assert got == 0 and wait > 0
    assert pacer.grant(2, (0.0, 0.0), _report(clock, remaining=5)) == (2, 0.0)
    assert pacer.grant(2, (0.0, 0.0), None) == (2, 0.0)
    got, wait = pacer.grant(2, (0.0, 0.0), None)  # 1 left: one permit, not two
    assert got == 1
    got, wait = pacer.grant(2, (0.0, 0.0), None)
    assert got == 0 and abs(wait - 0.1) < 1e-9  # 600 a minute: one more every 0.1 s
    clock.t += 0.1
    assert pacer.grant(2, (0.0, 0.0), None)[0] == 1


def test_a_429_from_any_worker_pauses_every_worker_from_when_it_was_heard() -> None:
    clock = Clock()
    pacer = ClusterPacer(clock=clock)
    pacer.grant(1, (0.0, 0.0), _report(clock, remaining=100))
    heard = clock.t
    clock.t += 0.5  # the report arrives half a second after the 429
    report = _report(clock, remaining=0, rate_limited=1, retry_after=2.0)
    report["at"] = heard
    assert pacer.grant(0, (0.0, 0.0), report) == (0, 0.0)  # a report alone takes no permit
    got, wait = pacer.grant(4, (0.0, 0.0), None)
    assert got == 0 and abs(wait - 1.5) < 1e-9
    clock.t = heard + 2.0
    assert pacer.grant(1, (0.0, 0.0), None)[0] == 1


def test_the_token_buckets_bound_a_grant_too() -> None:
    clock = Clock()
    pacer = ClusterPacer(clock=clock)
    headers = {f"{P}output-tokens-limit": "6000", f"{P}output-tokens-remaining": "250"}
    pacer.grant(1, (0.0, 0.0), {"headers": headers, "at": clock.t})
    assert pacer.grant(10, (0.0, 100.0), None)[0] == 2  # 250 output tokens: two rows of 100


def test_a_lower_remaining_from_elsewhere_in_the_organisation_is_taken_in_a_small_gap_is_not() -> None:
    clock = Clock()
    pacer = ClusterPacer(clock=clock)
    pacer.grant(1, (0.0, 0.0), _report(clock, remaining=100))
    pacer.grant(1, (0.0, 0.0), _report(clock, remaining=99))  # within the rounding and in-flight gap
    assert pacer.buckets["requests"].level == 98.0  # its own count: 100 less the two permits granted
    pacer.grant(1, (0.0, 0.0), _report(clock, remaining=40))  # someone else spent 60
    assert pacer.buckets["requests"].level == 39.0


def test_the_money_budget_reserves_worst_cases_across_workers() -> None:
    pacer = ClusterPacer()
    assert pacer.reserve("job", 1.0, 0.4) == (True, 0.0)
    assert pacer.reserve("job", 1.0, 0.4) == (True, 0.0)  # another worker
    assert pacer.reserve("job", 1.0, 0.4)[0] is False  # 1.2 could pass the limit
    pacer.settle("job", 0.4, 0.1)  # a row finished: it cost 0.1, not its worst case
    assert pacer.reserve("job", 1.0, 0.4) == (True, 0.1)
    assert pacer.spent("job") == 0.1
    assert pacer.reserve("other", 1.0, 0.9)[0] is True  # each job has its own limit


def test_worker_permits_come_from_the_pacer_and_the_rest_go_back() -> None:
    clock = Clock()
    pacer = ClusterPacer(clock=clock)
    pacer.grant(1, (0.0, 0.0), _report(clock, remaining=10))
    calls: list[str] = []

    def call(method: str, *args: Any) -> Any:
        calls.append(method)
        return getattr(pacer, method)(*args)

    permits = ClusterPermits(call)

    async def two() -> None:
        for _ in range(3):
            await permits.acquire(Cost())

    asyncio.run(two())
    assert calls == ["grant", "grant"]  # three attempts, two round trips (two permits at a time)
    before = pacer.buckets["requests"].level
    permits.close()  # one permit unused
    assert pacer.buckets["requests"].level == before + 1


def test_rows_at_once_grow_under_cluster_permits_even_when_the_bucket_looks_empty() -> None:
    from claudekit.frame._pacing import Pacer

    empty = {f"{P}requests-limit": "600", f"{P}requests-remaining": "0"}
    local, shared = Pacer(16), Pacer(16, permits=ClusterPermits(lambda *a: (0, 0.0)))
    for pacer in (local, shared):
        for _ in range(8):
            pacer.observe(200, empty)
    assert local.limit == 4.0  # one process: an empty bucket holds it at its start
    assert shared.limit == 12.0  # the cluster's permits pace the attempts: 4, then one more per answer
