"""Dry runs and budgets: what a job would cost, from the token-counting endpoint, before it is sent."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..usage._estimate import Estimate, estimate_request, price_range, request_cache_ttl
from ..usage._prices import get_prices

if TYPE_CHECKING:
    from ._plan import Request

__all__ = ["JobEstimate", "estimate_job", "worst_case_usd"]

#: Above this many requests a dry run counts a random sample and scales it by prompt size.
SAMPLE = 200


@dataclass(frozen=True)
class JobEstimate:
    """What a job would send and cost. Costs are ``None`` when the model's price is unknown.

    The lower bound charges the input at the base price and no output; the upper bound charges every
    input token at the cache-write price (when caching is on) and ``max_tokens`` of output per request.
    """

    model: str
    rows: int
    requests: int
    input_tokens: int
    max_output_tokens: int
    live_min_usd: float | None
    live_max_usd: float | None
    batch_min_usd: float | None
    batch_max_usd: float | None
    method: str
    reused: int = 0

    def __repr__(self) -> str:
        def usd(lo: float | None, hi: float | None) -> str:
            return (
                "unknown (no price for this model)"
                if lo is None or hi is None
                else f"${lo:,.4f} – ${hi:,.4f}"
            )

        shared = self.rows - self.requests - self.reused
        notes = (
            [f"{shared:,} {'row repeats' if shared == 1 else 'rows repeat'} an earlier prompt"]
            if shared > 0
            else []
        )
        if self.reused:
            notes.append(f"{self.reused:,} already answered in the state file")
        extra = f" ({'; '.join(notes)})" if notes else ""
        per = self.max_output_tokens // self.requests if self.requests else 0
        return "\n".join(
            [
                f"JobEstimate: {self.rows:,} rows → {self.requests:,} requests to {self.model}{extra}",
                f"  input tokens   {self.input_tokens:,} ({self.method})",
                f"  output tokens  at most {self.max_output_tokens:,} (max_tokens {per:,} per request)",
                f"  cost, live     {usd(self.live_min_usd, self.live_max_usd)}",
                f"  cost, batch    {usd(self.batch_min_usd, self.batch_max_usd)}",
            ]
        )


def _bounds(
    model: str, input_tokens: int, max_output: int, ttl: str | None, multiplier: float = 1.0
) -> tuple[float | None, float | None]:
    return price_range(model, input_tokens, max_output, cache_ttl=ttl, multiplier=multiplier)


def worst_case_usd(model: str, input_tokens: float, max_output: int, ttl: str | None) -> float | None:
    """The most one live request can cost (every input token written to the cache, full output)."""
    return _bounds(model, int(input_tokens) + 1, max_output, ttl)[1]


async def estimate_job(
    client: Any, requests: Sequence[Request], *, rows: int, reused: int, concurrency: int
) -> JobEstimate:
    """Count the input of every request (or of a sample) and price the job live and at batch price."""
    if not requests:
        raise ValueError("nothing to estimate")
    first = requests[0].body
    model, max_out = str(first["model"]), int(first["max_tokens"])
    sample = list(requests)
    if len(sample) > SAMPLE:
        sample = random.Random(0).sample(sample, SAMPLE)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(req: Request) -> Estimate:
        async with gate:
            return await estimate_request(client, req.body)

    counted = await asyncio.gather(*(one(r) for r in sample))
    scale = 1.0
    if len(sample) < len(requests):
        # Scale by prompt size: the sample's tokens per character times all requests' characters.
        chars_all = sum(r.chars for r in requests) + len(requests)
        chars_sample = sum(r.chars for r in sample) + len(sample)
        scale = chars_all / chars_sample
        method = (
            f"token-counting endpoint on a random sample of {len(sample):,} of {len(requests):,} "
            "requests, scaled by prompt length"
        )
    else:
        method = f"token-counting endpoint, all {len(requests):,} requests"
    ttl = request_cache_ttl(first)
    batch_m = get_prices().batch_multiplier
    # Each request is priced on its own: a long-prompt price tier applies per request.
    live = [_bounds(model, e.input_tokens, max_out, ttl) for e in counted]
    batch = [_bounds(model, e.input_tokens, max_out, ttl, multiplier=batch_m) for e in counted]
    n = len(requests)
    return JobEstimate(
        model,
        rows,
        n,
        round(sum(e.input_tokens for e in counted) * scale),
        max_out * n,
        *_total(live, scale),
        *_total(batch, scale),
        method,
        reused,
    )


def _total(
    bounds: list[tuple[float | None, float | None]], scale: float
) -> tuple[float | None, float | None]:
    if any(lo is None or hi is None for lo, hi in bounds):
        return None, None
    return sum(lo or 0.0 for lo, _ in bounds) * scale, sum(hi or 0.0 for _, hi in bounds) * scale
