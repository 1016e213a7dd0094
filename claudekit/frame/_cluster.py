"""One rate limit for a cluster: a pacer that lives in one place and grants permits to every worker.

:class:`ClusterPacer` is plain Python that a cluster runs as a single shared object (a Dask actor,
``claudekit.frame._dask``; Ray or Spark could host the same class). It keeps its own token bucket per
service bucket (requests, input tokens, output tokens per minute), learnt from the
``anthropic-ratelimit-*`` headers every worker reports, and grants permits in small batches: a worker
asks for a few attempts' worth at a time, so pacing costs one round trip per batch, not per request.
A 429/529 with ``retry-after`` reported by any worker pauses every worker. It also holds a job's money
budget: each row's worst case is reserved before it starts and settled with what it cost, so
``max_cost_usd`` holds across workers as it does in one process (a Dask ``batch`` partition reserves
its whole batch's worst case before submitting, and settles it with the batch's cost at the end).

Holds are tagged by (job, partition, attempt): each run of a partition's task begins an attempt
(:meth:`ClusterPacer.begin`), so when a task runs again (its worker died) the earlier attempt's holds
are let go. What that attempt may have been charged for without settling it is never dropped: a request
it may have sent (a permit granted to it, or its batch) whose cost it did not settle is counted as spent
at its worst case — the service charged it if its answer arrived, and the pacer cannot know — and only
the rest is released (``stats()``: ``released_usd``, ``in_doubt_usd``). A batch task run again with its
state file carries the earlier attempt's hold over instead: it re-attaches to that batch and settles its
real cost.

A pacer lost with its worker takes the jobs' spent amounts with it. A worker that finds it gone puts
the pacer's standby in its place (``_dask``) and marks the job :meth:`~ClusterPacer.lost` there: pacing
goes on, and a job with a money budget starts nothing more (its rows not started are
``skipped_budget``, saying why).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._live import Budget
from ._pacing import Cost, limits_seen, retry_after

__all__ = ["LOST", "ClusterBudget", "ClusterPacer", "ClusterPermits", "Tag"]

#: Before any response has said what the limits are, one attempt at a time goes (a probe).
_PROBE_WAIT_S = 0.05
#: A worker asks for at most this many attempts' permits at once: small, so no worker hoards them.
BATCH = 2
_MAX_WAIT_S = 1.0


@dataclass
class _Level:
    limit: float
    level: float
    at: float

    def now(self, t: float) -> float:
        self.level = min(self.limit, self.level + (t - self.at) * self.limit / 60.0)
        self.at = t
        return self.level


#: A job, partition and attempt: whose holds and permits these are (see the module docstring).
Tag = tuple[str, int, int]


@dataclass
class _Attempt:
    """One run of a partition's task: the worst cases it holds, and the requests it may have sent whose
    cost it has not settled (permits granted, less rows settled and permits given back)."""

    holds: list[float] = field(default_factory=list)
    sends: int = 0


@dataclass
class _Part:
    current: int = 0
    attempt: _Attempt = field(default_factory=_Attempt)


@dataclass
class ClusterPacer:
    """The shared pacer (see the module docstring). Every method is quick and never blocks."""

    clock: Callable[[], float] = time.time
    buckets: dict[str, _Level] = field(default_factory=dict)
    pause_until: float = 0.0
    probing: bool = False
    granted: int = 0
    reports: int = 0
    rate_limited: int = 0
    budgets: dict[str, list[float]] = field(default_factory=dict)  # job -> [limit, spent, held]
    parts: dict[tuple[str, int], _Part] = field(default_factory=dict)
    lost_jobs: set[str] = field(default_factory=set)
    released_usd: float = 0.0
    in_doubt_usd: float = 0.0

    def grant(
        self, want: int, cost: tuple[float, float], report: dict[str, Any] | None, tag: Tag | None = None
    ) -> tuple[int, float]:
        """Permits for up to ``want`` attempts of ``cost`` (input, output tokens each): (granted, wait
        before asking again). ``report`` is what the asking worker heard since it last asked."""
        got, wait = self._grant(want, cost, report)
        attempt = self._attempt(tag)
        if attempt is not None:
            attempt.sends += got
        return got, wait

    def _grant(
        self, want: int, cost: tuple[float, float], report: dict[str, Any] | None
    ) -> tuple[int, float]:
        now = self.clock()
        if report:
            self._learn(report, now)
        if want <= 0:  # only a report
            return 0, 0.0
        if now < self.pause_until:
            return 0, self.pause_until - now
        if not self.buckets:  # no limits known yet: one probe, whose response teaches them
            if self.probing:
                return 0, _PROBE_WAIT_S
            self.probing = True
            self.granted += 1
            return 1, 0.0
        each = {"requests": 1.0, "input-tokens": cost[0], "output-tokens": cost[1]}
        n, wait = int(want), 0.0
        for name, b in self.buckets.items():
            need = min(each[name], b.limit)
            if need <= 0:
                continue
            have = b.now(now)
            fits = int(have // need)
            if fits < n:
                n = fits
                wait = max(wait, (need - (have - fits * need)) * 60.0 / b.limit)
        if n <= 0:
            return 0, min(_MAX_WAIT_S, max(wait, 0.001))
        for name, b in self.buckets.items():
            b.level -= n * min(each[name], b.limit)
        self.granted += n
        return n, 0.0

    def _learn(self, report: dict[str, Any], now: float) -> None:
        """Take in a worker's report: the latest headers it saw (and when), and any 429's advice."""
        self.reports += 1
        headers: dict[str, str] = report.get("headers") or {}
        age = min(5.0, max(0.0, now - float(report.get("at", now))))
        for name, lim, rem in limits_seen(headers):
            seen = min(lim, rem + age * lim / 60.0)  # what the service had, refilled since it said so
            b = self.buckets.get(name)
            if b is None:
                self.buckets[name] = _Level(lim, seen, now)
            else:
                # Lowered only when the service shows clearly less than this model: someone else of the
                # organisation is spending too. Small gaps are the permits granted since that response
                # and the header's rounding down; taking those in on every report would lose rate.
                b.limit = lim
                if seen < b.now(now) - max(2.0, 0.01 * lim):
                    b.level = seen
        self.probing = False
        if report.get("rate_limited"):
            self.rate_limited += int(report["rate_limited"])
            delay = report.get("retry_after")
            delay = 1.0 if delay is None else float(delay)
            # From when the worker heard it (the report may come a little later), on the same clock.
            self.pause_until = max(self.pause_until, now - age + delay)
            for b in self.buckets.values():
                b.level = min(b.level, 0.0)

    def give_back(self, n: int, cost: tuple[float, float], tag: Tag | None = None) -> None:
        """Permits a worker did not use (its partition ended)."""
        each = {"requests": 1.0, "input-tokens": cost[0], "output-tokens": cost[1]}
        for name, b in self.buckets.items():
            b.level = min(b.limit, b.level + n * min(each[name], b.limit))
        attempt = self._attempt(tag)
        if attempt is not None:
            attempt.sends = max(0, attempt.sends - n)

    # -- attempts --------------------------------------------------------------------------------------
    def begin(self, job: str, partition: int, carry: bool = False) -> tuple[int, float]:
        """A run of ``partition``'s task starts: (its attempt number, the amount carried over). An earlier
        attempt's holds are let go (see :meth:`_let_go`), or with ``carry`` become this attempt's (a batch
        that re-attaches to the earlier attempt's batch through its state file, and settles its cost)."""
        part = self.parts.setdefault((job, partition), _Part())
        old, part.current, part.attempt = part.attempt, part.current + 1, _Attempt()
        if carry:
            part.attempt = old
            return part.current, sum(old.holds)
        self._let_go(job, old)
        return part.current, 0.0

    def _let_go(self, job: str, old: _Attempt) -> None:
        """Release an attempt's holds, except the worst cases of the requests it may have sent without
        settling them (never fewer than that: each may have been charged), which become spent."""
        doubt = sum(sorted(old.holds, reverse=True)[: min(old.sends, len(old.holds))])
        total = sum(old.holds)
        budget = self.budgets.get(job)
        if budget is not None:
            budget[1] += doubt
            budget[2] = max(0.0, budget[2] - total)
        self.in_doubt_usd += doubt
        self.released_usd += total - doubt
        old.holds.clear()

    def _attempt(self, tag: Tag | None) -> _Attempt | None:
        """The attempt ``tag`` names while it is the partition's latest (None: untagged, or superseded)."""
        if tag is None:
            return None
        part = self.parts.get((tag[0], int(tag[1])))
        return part.attempt if part is not None and part.current == int(tag[2]) else None

    def lost(self, job: str) -> None:
        """This pacer replaced one lost with its worker while ``job`` ran: what the job spent is not known
        here, so nothing more of it may start under a money budget (never guessed low)."""
        self.lost_jobs.add(job)

    # -- money -----------------------------------------------------------------------------------------
    def reserve(self, job: str, limit: float, worst: float, tag: Tag | None = None) -> tuple[bool, float]:
        """Hold ``worst`` for a row of ``job`` if it fits under ``limit`` with what is spent and held:
        (whether it was held, what the job has spent so far). A superseded attempt starts nothing."""
        spent_held = self.budgets.setdefault(job, [limit, 0.0, 0.0])
        attempt = self._attempt(tag)
        stale = tag is not None and attempt is None
        if stale or job in self.lost_jobs or spent_held[1] + spent_held[2] + worst > limit:
            return False, spent_held[1]
        spent_held[2] += worst
        if attempt is not None:
            attempt.holds.append(worst)
        return True, spent_held[1]

    def settle(self, job: str, worst: float, cost: float, tag: Tag | None = None) -> None:
        """A row of ``job`` is finished: its worst case is no longer held, and it cost ``cost`` (counted
        even from a superseded attempt, whose holds were let go already)."""
        spent_held = self.budgets.setdefault(job, [float("inf"), 0.0, 0.0])
        spent_held[1] += cost
        attempt = self._attempt(tag)
        if tag is not None and (attempt is None or worst not in attempt.holds):
            return
        if attempt is not None:
            attempt.holds.remove(worst)
            attempt.sends = max(0, attempt.sends - 1)
        spent_held[2] = max(0.0, spent_held[2] - worst)

    def reserve_batch(self, job: str, limit: float, worst: float, tag: Tag) -> tuple[bool, float]:
        """Hold ``worst`` for the batch a partition is about to submit; what the attempt holds already
        (carried over from an attempt that died) counts toward it. The batch may be created from now on,
        so it is in doubt until :meth:`settle_batch`."""
        spent_held = self.budgets.setdefault(job, [limit, 0.0, 0.0])
        attempt = self._attempt(tag)
        if attempt is None or job in self.lost_jobs:
            return False, spent_held[1]
        extra = max(0.0, worst - sum(attempt.holds))
        if extra > 0 and spent_held[1] + spent_held[2] + extra > limit:
            return False, spent_held[1]
        spent_held[2] += extra
        attempt.holds.append(extra)
        attempt.sends = len(attempt.holds)
        return True, spent_held[1]

    def settle_batch(self, job: str, cost: float, tag: Tag) -> None:
        """A partition's batches ended: its hold goes, and they cost ``cost``."""
        spent_held = self.budgets.setdefault(job, [float("inf"), 0.0, 0.0])
        spent_held[1] += cost
        attempt = self._attempt(tag)
        if attempt is not None:
            spent_held[2] = max(0.0, spent_held[2] - sum(attempt.holds))
            attempt.holds.clear()
            attempt.sends = 0

    def spent(self, job: str) -> float:
        return self.budgets.get(job, [0.0, 0.0, 0.0])[1]

    def held(self, job: str) -> float:
        return self.budgets.get(job, [0.0, 0.0, 0.0])[2]

    def money(self) -> dict[str, list[float]]:
        """Every job's [limit, spent, held] (an actor's fields cannot be read from outside)."""
        return {job: list(v) for job, v in self.budgets.items()}

    def stats(self) -> dict[str, Any]:
        return {
            "granted": self.granted, "reports": self.reports, "rate_limited": self.rate_limited,
            "released_usd": self.released_usd, "in_doubt_usd": self.in_doubt_usd,
            "lost_jobs": len(self.lost_jobs),
        }


class ClusterPermits:
    """A worker's permits, drawn from the :class:`ClusterPacer` a few at a time (a Permits)."""

    def __init__(
        self, call: Callable[..., Any], sleep: Callable[[float], Any] = asyncio.sleep, tag: Tag | None = None
    ) -> None:
        self._call = call  # call(method_name, *args) -> result, blocking (run in a thread here)
        self.tag = tag  # whose permits: an attempt that dies holding some counts them as maybe sent
        self._sleep = sleep
        self._stash = 0
        self._cost = (0.0, 0.0)
        self._report: dict[str, Any] | None = None
        self.calls = 0

    async def acquire(self, cost: Cost) -> float:
        waited = 0.0
        self._cost = (cost.input_tokens, cost.output_tokens)
        while self._stash <= 0:
            report, self._report = self._report, None
            self.calls += 1
            got, wait = await asyncio.to_thread(self._call, "grant", BATCH, self._cost, report, self.tag)
            self._stash += int(got)
            if self._stash <= 0:
                step = max(0.001, min(float(wait), _MAX_WAIT_S))
                waited += step
                await self._sleep(step)
        self._stash -= 1
        return waited

    def release(self, cost: Cost) -> None:
        """Nothing to give back: the service charged the attempt whatever its outcome."""

    def observe(self, status: int, headers: dict[str, str]) -> None:
        report = self._report or {"rate_limited": 0}
        report["headers"], report["at"] = headers, time.time()
        if status in (429, 529):
            report["rate_limited"] = int(report.get("rate_limited", 0)) + 1
            report["retry_after"] = retry_after(headers)
            # Every worker should stop now, not when this one next asks: sent at once, not awaited.
            self._report = None
            asyncio.get_running_loop().run_in_executor(None, self._call, "grant", 0, self._cost, report)
            return
        self._report = report

    def close(self) -> None:
        """Hand back unused permits and the last report (at the end of a partition)."""
        if self._stash > 0 or self._report:
            self._call("give_back", self._stash, self._cost, self.tag)
            if self._report:
                self._call("grant", 0, self._cost, self._report)
            self._stash, self._report = 0, None


#: Why a row is not started once the job's pacer was replaced (see :meth:`ClusterPacer.lost`).
LOST = (
    "not sent: the cluster's pacer was lost with its worker, and with it what this job had spent, so "
    "its budget can no longer be held; run it again (with state=, only the rows without an answer go)"
)


class ClusterBudget(Budget):
    """``max_cost_usd`` held across a cluster: each row's worst case is reserved at the pacer."""

    call: Callable[..., Any] | None = None
    job: str = ""
    tag: Tag | None = None

    def allows(self, worst: float) -> bool:
        assert self.call is not None
        ok, spent = self.call("reserve", self.job, self.limit, worst, self.tag)
        self.spent = float(spent)  # what the whole job has spent, for the skipped rows' message
        return bool(ok)

    def refusal(self, worst: float) -> str:
        if getattr(self.call, "relinked", False):  # the pacer was replaced: see ClusterPacer.lost
            return LOST
        return super().refusal(worst)

    def hold(self, worst: float) -> None:
        """Already held at the pacer by :meth:`allows`."""

    def release(self, worst: float) -> None:
        assert self.call is not None
        # What this worker spent since its last settle goes with it (rows in flight at once may
        # finish in any order; the job's total at the pacer is right either way).
        cost, self._unsettled = self._unsettled, 0.0
        self.call("settle", self.job, worst, cost, self.tag)
