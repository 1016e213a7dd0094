"""Rate limits handled, not hit: how many rows run at once, and when the next HTTP attempt may go.

The service sends, with every response, its ``anthropic-ratelimit-{requests,input-tokens,output-tokens}
-{limit,remaining,reset}`` headers; its buckets refill continuously at ``limit`` per minute (the rate-
limits documentation: a token bucket). :class:`Pacer` is SDK middleware, so it sees every attempt,
the SDK's own retries included. Before an attempt it waits until its model of each bucket (the last
``remaining`` plus the refill since, minus what is in flight) covers the attempt's estimated cost, and
after a 429/529 it waits out ``retry-after`` (or backs off when there is none). How many rows run at
once adapts: it halves on a 429 or 529 and grows by one per answer while the buckets have headroom, up
to the job's ``concurrency``. The SDK still does the retries (``max_retries``); the pacer only decides
when an attempt may start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import anthropic

__all__ = ["Cost", "LocalPermits", "Pacer", "Permits", "cost_of_attempt", "interesting", "retry_after"]

_PREFIX = "anthropic-ratelimit-"
_BUCKETS = ("requests", "input-tokens", "output-tokens")
_WANTED = (_PREFIX, "retry-after")
_MAX_WAIT = 2.0  # re-check at least this often while waiting (a fresher header may come in)


@dataclass(frozen=True)
class Cost:
    """What one attempt takes from each bucket (estimated before it is sent)."""

    requests: float = 1.0
    input_tokens: float = 0.0
    output_tokens: float = 0.0

    def of(self, bucket: str) -> float:
        if bucket == "requests":
            return self.requests
        return self.input_tokens if bucket == "input-tokens" else self.output_tokens


#: The cost of the attempt being sent in this task (set by the job around ``messages.create``).
cost_of_attempt: ContextVar[Cost | None] = ContextVar("claudekit_frame_cost", default=None)


class _Bucket:
    __slots__ = ("at", "level", "limit")

    def __init__(self, limit: float, level: float, at: float) -> None:
        self.limit, self.level, self.at = limit, level, at

    def available(self, now: float) -> float:
        return min(self.limit, self.level + (now - self.at) * self.limit / 60.0)


class Permits(Protocol):
    """Where an attempt's permission to go comes from: this process's model of the service's buckets
    (:class:`LocalPermits`) or one shared by a cluster (``claudekit.frame._cluster``). The
    :class:`Pacer` asks before each attempt and tells it what each response said."""

    async def acquire(self, cost: Cost) -> float:
        """Wait until an attempt of ``cost`` may go; return the seconds waited."""
        ...

    def release(self, cost: Cost) -> None:
        """The attempt of ``cost`` has its response (or failed)."""
        ...

    def observe(self, status: int, headers: dict[str, str]) -> None:
        """A response's status and its rate-limit headers (lower-cased names)."""
        ...


class LocalPermits:
    """Permits from this process's model of each bucket: the last ``remaining`` plus the refill since,
    minus what is in flight; after a 429/529 nothing goes until ``retry-after`` (or a back-off)."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], Any]) -> None:
        self.clock = clock
        self.sleep = sleep
        self.pause_until = 0.0
        self._buckets: dict[str, _Bucket] = {}
        self._reserved = dict.fromkeys(_BUCKETS, 0.0)
        self._backoff = 0

    async def acquire(self, cost: Cost) -> float:
        waited = 0.0
        while True:
            wait = self._wait_for(cost, self.clock())
            if wait <= 0:
                break
            step = min(wait, _MAX_WAIT)
            waited += step
            await self.sleep(step)
        for name in _BUCKETS:
            self._reserved[name] += cost.of(name)
        return waited

    def release(self, cost: Cost) -> None:
        for name in _BUCKETS:
            self._reserved[name] -= cost.of(name)

    def _wait_for(self, cost: Cost, now: float) -> float:
        wait = self.pause_until - now
        for name, bucket in self._buckets.items():
            need = min(cost.of(name), bucket.limit)
            short = need - (bucket.available(now) - self._reserved[name])
            if short > 0:
                wait = max(wait, short * 60.0 / bucket.limit)
        return wait

    def observe(self, status: int, headers: dict[str, str]) -> None:
        now = self.clock()
        for name, limit, remaining in limits_seen(headers):
            self._buckets[name] = _Bucket(limit, remaining, now)
        if status in (429, 529):
            delay = retry_after(headers)
            if delay is None:  # no advice: back off like the SDK does (0.5 s doubling, at most 8 s)
                delay = min(8.0, 0.5 * 2**self._backoff)
                self._backoff += 1
            self.pause_until = max(self.pause_until, now + delay)
        elif status < 400:
            self._backoff = 0

    def headroom(self, now: float) -> bool:
        return now >= self.pause_until and all(
            b.available(now) > 0.1 * b.limit for b in self._buckets.values()
        )


class Pacer(anthropic.Middleware):
    """Concurrency and pacing for one job (see the module docstring); ``permits`` decides when each
    attempt may go (this process's :class:`LocalPermits` by default)."""

    def __init__(
        self,
        concurrency: int,
        *,
        permits: Permits | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.max_concurrency = max(1, int(concurrency))
        self.limit = float(min(self.max_concurrency, 4))
        self.running = 0
        self.clock = clock
        self.local = LocalPermits(clock, sleep)
        self.permits: Permits = self.local if permits is None else permits
        self.attempts = 0
        self.rate_limited = 0  # 429 and 529 responses seen
        self.waited_s = 0.0

    # -- rows --------------------------------------------------------------------------------------
    @property
    def has_room(self) -> bool:
        return self.running < int(self.limit)

    # -- attempts (SDK middleware) -----------------------------------------------------------------
    async def handle_async(self, request: Any, call_next: Any) -> Any:
        if str(request.method).lower() != "post" or not str(request.url).rstrip("/").endswith("/v1/messages"):
            return await call_next(request)  # count_tokens and the batches endpoints have limits of their own
        cost = cost_of_attempt.get() or Cost()
        self.waited_s += await self.permits.acquire(cost)
        self.attempts += 1
        try:
            response = await call_next(request)
        finally:
            self.permits.release(cost)
        self.observe(response.status_code, response.headers)
        return response

    def observe(self, status: int, headers: Any) -> None:
        """Learn from a response: the permits hear of it; on 429/529 fewer rows at once, else more."""
        seen = interesting(headers)
        self.permits.observe(status, seen)
        if self.permits is not self.local:
            self.local.observe(status, seen)  # the headroom below reads this process's view too
        if status in (429, 529):
            self.rate_limited += 1
            self.limit = max(1.0, self.limit / 2)
        elif status < 400 and (self.permits is not self.local or self.local.headroom(self.clock())):
            # With permits from elsewhere (a cluster's pacer), those pace the attempts: rows waiting
            # for a permit cost nothing, and this process's view of the buckets (near empty whenever the
            # cluster uses the whole limit) must not keep slow calls at a few at a time.
            self.limit = min(float(self.max_concurrency), self.limit + 1.0)


def interesting(headers: Any) -> dict[str, str]:
    """The rate-limit and retry-after headers, in one pass (each ``Headers.get`` scans them all)."""
    raw = getattr(headers, "raw", None)
    if raw is None:  # a plain mapping
        return {str(k).lower(): str(v) for k, v in headers.items() if str(k).lower().startswith(_WANTED)}
    out: dict[str, str] = {}
    for key, value in raw:
        name = key.decode("latin-1").lower()
        if name.startswith(_WANTED):
            out[name] = value.decode("latin-1")
    return out


def limits_seen(headers: dict[str, str]) -> Iterator[tuple[str, float, float]]:
    """(bucket, limit, remaining) for each rate-limit bucket whose two headers are there and numeric."""
    for name in _BUCKETS:
        limit = headers.get(f"{_PREFIX}{name}-limit")
        remaining = headers.get(f"{_PREFIX}{name}-remaining")
        if limit is None or remaining is None:
            continue
        try:
            pair = float(limit), float(remaining)
        except ValueError:
            continue
        yield name, *pair


def retry_after(headers: dict[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue  # an HTTP date: the SDK's own retry honours it; we fall back to a back-off
    return None
