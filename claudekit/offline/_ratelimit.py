"""Rate limits as the service applies them: token buckets, ``anthropic-ratelimit-*`` headers, 429s.

Model (https://platform.claude.com/docs/en/api/rate-limits): one bucket each for requests, input tokens
and output tokens per minute. A bucket holds at most its per-minute limit and refills continuously at
``limit / 60`` per second (not reset at fixed intervals). A request takes one request; its uncached
input tokens (input + cache writes; cache reads do not count) and its output tokens are taken when it
has been answered. A request arriving while a bucket is empty (or in deficit) is refused with 429
``rate_limit_error`` and ``retry-after`` (whole seconds) saying when it would be admitted.

Every ``/v1/messages`` response carries, per bucket, ``…-limit``, ``…-remaining`` and ``…-reset`` (when
the bucket will be full again, RFC 3339), plus ``anthropic-ratelimit-tokens-*`` for whichever token
bucket is the most restrictive right now. Unlike the service, token counts are not rounded to thousands.

The default backend only reports (generous limits, never refuses); pass ``RateLimits(...)`` to
:class:`~claudekit.offline.OfflineBackend` to enforce a limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = ["DEFAULT_LIMITS", "RateLimiter", "RateLimits", "WallClock", "rfc3339"]

_PREFIX = "anthropic-ratelimit-"


@dataclass(frozen=True)
class RateLimits:
    """Per-minute limits of one organisation on one model class.

    ``enforce=False`` only reports headers. ``start_full=False`` starts every bucket empty, as if another
    client had just used up the minute (the steady state, from the first request on).
    """

    requests_per_minute: int = 4_000
    input_tokens_per_minute: int = 2_000_000
    output_tokens_per_minute: int = 400_000
    enforce: bool = True
    start_full: bool = True

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


#: What the default backend reports (a high usage tier); it never refuses a request.
DEFAULT_LIMITS = RateLimits(enforce=False)


def rfc3339(epoch: float) -> str:
    """``2026-12-01T14:22:50Z`` (whole seconds, UTC), the service's timestamp format."""
    return datetime.fromtimestamp(math.floor(epoch), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class WallClock:
    """Wall-clock (epoch) time for a backend clock reading, so that ``advance()`` moves both."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._offset = time.time() - clock()

    def __call__(self, t: float | None = None) -> float:
        return (self._clock() if t is None else t) + self._offset


class _Bucket:
    __slots__ = ("at", "capacity", "level")

    def __init__(self, capacity: int, now: float, full: bool) -> None:
        self.capacity = float(capacity)
        self.level = self.capacity if full else 0.0
        self.at = now

    @property
    def per_second(self) -> float:
        return self.capacity / 60.0

    def refill(self, now: float) -> None:
        if now > self.at:
            self.level = min(self.capacity, self.level + (now - self.at) * self.per_second)
        self.at = now

    def wait_for(self, need: float) -> float:
        return max(0.0, (need - self.level) / self.per_second)

    def to_full(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.per_second)


class RateLimiter:
    """The three buckets of a backend, on its clock (thread-safe: the loopback server has many threads)."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float], wall: WallClock) -> None:
        self.limits = limits
        self._clock = clock
        self._wall = wall
        now = clock()
        self._buckets = {
            "requests": _Bucket(limits.requests_per_minute, now, limits.start_full),
            "input-tokens": _Bucket(limits.input_tokens_per_minute, now, limits.start_full),
            "output-tokens": _Bucket(limits.output_tokens_per_minute, now, limits.start_full),
        }
        self._lock = threading.Lock()
        self.refused = 0

    def _refill(self) -> float:
        now = self._clock()
        for bucket in self._buckets.values():
            bucket.refill(now)
        return now

    def admit(self) -> tuple[float, str] | None:
        """Take one request, or return (seconds to wait, which bucket) when it must be refused."""
        with self._lock:
            self._refill()
            b = self._buckets
            if self.limits.enforce:
                # Tokens are charged after the answer, so a token bucket refuses only while in deficit.
                waits = [
                    (b["requests"].wait_for(1.0), "requests"),
                    (b["input-tokens"].wait_for(1.0), "input-tokens"),
                    (b["output-tokens"].wait_for(1.0), "output-tokens"),
                ]
                wait, which = max(waits)
                if wait > 0:
                    self.refused += 1
                    return wait, which
            b["requests"].level = max(0.0, b["requests"].level - 1.0)
            return None

    def charge(self, input_tokens: int, output_tokens: int) -> None:
        """Take an answered request's uncached input and its output tokens."""
        with self._lock:
            self._refill()
            floor = -math.inf if self.limits.enforce else 0.0
            for name, n in (("input-tokens", input_tokens), ("output-tokens", output_tokens)):
                bucket = self._buckets[name]
                bucket.level = max(floor, bucket.level - n)

    def headers(self) -> list[tuple[str, str]]:
        """The ``anthropic-ratelimit-*`` headers for a response sent now."""
        with self._lock:
            now = self._refill()
            out: list[tuple[str, str]] = []
            for name, bucket in self._buckets.items():
                out += _bucket_headers(name, bucket, self._wall(now))
            # "tokens": the most restrictive token limit in effect right now.
            tight = min(
                (self._buckets["input-tokens"], self._buckets["output-tokens"]),
                key=lambda bk: bk.level / bk.capacity,
            )
            out += _bucket_headers("tokens", tight, self._wall(now))
            return out

    def refusal_message(self, which: str) -> str:
        limit = {
            "requests": f"{self.limits.requests_per_minute:,} requests per minute",
            "input-tokens": f"{self.limits.input_tokens_per_minute:,} input tokens per minute",
            "output-tokens": f"{self.limits.output_tokens_per_minute:,} output tokens per minute",
        }[which]
        return (
            f"This request would exceed your organization's rate limit of {limit} (offline backend). "
            "See the response headers for current usage, and try again later."
        )


def _bucket_headers(name: str, bucket: _Bucket, wall_now: float) -> list[tuple[str, str]]:
    return [
        (f"{_PREFIX}{name}-limit", str(int(bucket.capacity))),
        (f"{_PREFIX}{name}-remaining", str(max(0, math.floor(bucket.level)))),
        (f"{_PREFIX}{name}-reset", rfc3339(math.ceil(wall_now + bucket.to_full()))),
    ]
