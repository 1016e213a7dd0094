"""A live job: one ``messages.create`` per distinct prompt, paced, budgeted, logged and resumable.

Every call is in the usage log (retried attempts too). A failed request never raises: its rows get
the error's type as status and its one-line message; a request refused for rate limits after the SDK's
own retries goes back in the queue, so a 429 storm slows the job down instead of failing rows. When the
shared prefix (system prompt, tools, examples) carries a cache marker, the first request runs alone so
that every later one reads the prefix from the cache instead of writing it again.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from .._base._errors import (
    BudgetExceededError,
    ClaudekitError,
    OverloadedError,
    RateLimitError,
    from_sdk_error,
    is_transport_error,
)
from .._runner import _attempts
from ..usage import UsageRecord, get_budget
from ..usage._budget import Reservation, reserve_budget
from ._estimate import worst_case_usd
from ._outcome import Outcome, from_error, from_message
from ._pacing import Cost, Pacer, cost_of_attempt
from ._plan import Plan, Request
from ._progress import Progress, Snapshot
from ._state import StateFile

__all__ = ["Budget", "LiveRun"]

#: How often one request may be put back after being refused for rate limits (then it fails).
MAX_REQUEUES = 50
#: Without a single answer for this long while every request is refused (429/529), the job gives up:
#: the remaining rows fail with that error instead of waiting for an hour (``give_up_after_s``).
GIVE_UP_AFTER_S = 300.0
#: The progress line says the job is stuck once no answer came for this share of ``give_up_after_s``.
_SAY_STUCK = 0.2
_RETRYABLE = (RateLimitError, OverloadedError)


@dataclass
class Budget:
    """``max_cost_usd`` for a live job: spent so far plus the worst case of what is in flight."""

    limit: float
    model: str
    max_tokens: int
    ttl: str | None
    prefix_chars: int
    spent: float = 0.0
    in_flight: float = 0.0
    tokens_per_char: float = 0.5  # pessimistic until answers show the real ratio
    learned: bool = False
    _unsettled: float = 0.0  # spent since the last release (a cluster budget settles it there)

    def worst(self, req: Request) -> float:
        chars = self.prefix_chars + req.chars
        cost = worst_case_usd(self.model, chars * self.tokens_per_char, self.max_tokens, self.ttl)
        return cost if cost is not None else float("inf")

    def allows(self, worst: float) -> bool:
        return self.spent + self.in_flight + worst <= self.limit

    def refusal(self, worst: float) -> str:
        """Why a row whose worst case is ``worst`` is not started (after :meth:`allows` said no)."""
        return (
            f"not sent: its worst case (${worst:,.4f}) would pass max_cost_usd=${self.limit:,.4f} "
            f"(${self.spent:,.4f} spent)"
        )

    def hold(self, worst: float) -> None:
        """A row whose worst case is ``worst`` starts (after :meth:`allows` said it may)."""
        self.in_flight += worst

    def spend(self, cost: float) -> None:
        """A row's answer cost ``cost``."""
        self._unsettled += cost
        self.spent += cost

    def release(self, worst: float) -> None:
        """The row that held ``worst`` is finished (its cost, if any, was spent already)."""
        self.in_flight -= worst
        self._unsettled = 0.0

    def learn(self, req: Request, record: UsageRecord) -> None:
        prompt = record.prompt_tokens
        if prompt:
            observed = 1.2 * prompt / max(1, self.prefix_chars + req.chars)
            self.tokens_per_char = max(self.tokens_per_char, observed) if self.learned else observed
            self.learned = True


@dataclass(frozen=True)
class _Worst:
    """A row's worst case in the form the kernel budget takes (an :class:`Estimate`'s two fields)."""

    cost_max_usd: float | None
    model: str
    input_tokens: int
    max_output_tokens: int


@dataclass
class _Estimates:
    """Running averages for pacing: uncached input and output tokens per request."""

    input_tokens: float
    output_tokens: float
    max_tokens: int
    seen: int = 0

    def cost(self) -> Cost:
        out = self.max_tokens if not self.seen else min(self.max_tokens, 1.5 * self.output_tokens + 16)
        return Cost(1.0, self.input_tokens, out)

    def learn(self, record: UsageRecord) -> None:
        uncached = (record.input_tokens or 0) + (record.cache_creation_input_tokens or 0)
        k = 0.2 if self.seen else 1.0
        self.input_tokens += k * (uncached - self.input_tokens)
        self.output_tokens += k * ((record.output_tokens or 0) - self.output_tokens)
        self.seen += 1


@dataclass
class LiveRun:
    plan: Plan
    client: Any  # the SDK client with the pacer as middleware
    pacer: Pacer
    log: Any  # UsageLog
    name: str
    state: StateFile | None = None
    budget: Budget | None = None
    progress: Progress | None = None
    timeout: Any = None
    give_up_after_s: float = GIVE_UP_AFTER_S
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    requeues: dict[str, int] = field(default_factory=dict)
    snapshot: Snapshot = field(init=False)
    _seq: int = 0
    _started: float = field(default_factory=time.monotonic)
    _answered_at: float = field(default_factory=time.monotonic)  # the last answer (or the start)
    _stuck: ClaudekitError | None = None  # the 429/529 that keeps coming back, while no answer comes
    _gave_up: ClaudekitError | None = None

    def __post_init__(self) -> None:
        plan = self.plan
        self.snapshot = Snapshot("map", plan.rows)
        self.snapshot.done = self.snapshot.errors = len(plan.row_error)
        for fp, outcome in self.outcomes.items():  # reused from a state file: counted apart
            rows = len(plan.requests[fp].rows)
            self.snapshot.done += rows
            self.snapshot.ok += rows if outcome.ok else 0
            self.snapshot.errors += 0 if outcome.ok else rows
            self.snapshot.reused += rows
            self.snapshot.reused_cost_usd += outcome.cost or 0.0
        first = next(iter(plan.requests.values()), None)
        chars = first.chars if first is not None else 0
        self._estimates = _Estimates(chars / 3.0, 0.0, plan.settings.max_tokens)

    async def run(self) -> dict[str, Outcome]:
        todo = deque(r for fp, r in self.plan.requests.items() if fp not in self.outcomes)
        finished: asyncio.Queue[asyncio.Task[tuple[Request, Outcome | None]]] = asyncio.Queue()
        running: set[asyncio.Task[tuple[Request, Outcome | None]]] = set()
        warming = self.plan.shared_prefix_cached
        try:
            while todo or running:
                while todo and self.pacer.has_room and not (warming and running):
                    if self._gave_up is not None:
                        self._fail_all(todo, self._gave_up)
                        break
                    req = todo[0]
                    worst = self.budget.worst(req) if self.budget is not None else 0.0
                    held, refusal = self._admit(req, worst)
                    if refusal is not None:
                        if not running:  # even alone it would pass the budget: stop starting rows
                            self._skip_all(todo, refusal)
                        break
                    todo.popleft()
                    if self.budget is not None:
                        self.budget.hold(worst)
                    self.pacer.running += 1
                    task = asyncio.ensure_future(self._one(req, worst, held))
                    task.add_done_callback(finished.put_nowait)  # O(1) per row, unlike asyncio.wait
                    running.add(task)
                if not running:
                    continue
                task = await finished.get()
                running.discard(task)
                warming = False
                req, outcome = task.result()
                if outcome is None:
                    todo.appendleft(req)
                else:
                    self._finish(req, outcome)
        except BaseException:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        return self.outcomes

    def _admit(self, req: Request, worst: float) -> tuple[Reservation | None, str | None]:
        """Whether a row whose worst case is ``worst`` may start: the job's max_cost_usd, then the
        kernel's budget (set_budget), which holds the worst case while the row is in flight."""
        b = self.budget
        if b is not None and not b.allows(worst):
            return None, b.refusal(worst)
        if get_budget() is None:
            return None, None
        chars = (b.prefix_chars + req.chars) if b is not None else req.chars
        tokens = int(chars * (b.tokens_per_char if b is not None else 0.5))
        s = self.plan.settings
        estimate = _Worst(None if worst == float("inf") else worst, s.model, tokens, s.max_tokens)
        try:
            return reserve_budget(estimate), None
        except BudgetExceededError as err:
            why = err.message.removeprefix("refused before sending: ").replace("this call", "this row")
            return None, f"not sent: {why}; see claudekit.usage.set_budget"

    def _fail_all(self, todo: deque[Request], err: ClaudekitError) -> None:
        """The job is stuck (see ``give_up_after_s``): the rows not started fail with its error."""
        outcome = from_error(err)
        while todo:
            req = todo.popleft()
            self.outcomes[req.fp] = replace(outcome)
            self._count(req, outcome)
        self._show()

    def _skip_all(self, todo: deque[Request], message: str) -> None:
        while todo:
            req = todo.popleft()
            outcome = Outcome("skipped_budget", error=message)
            self.outcomes[req.fp] = outcome
            self._count(req, outcome)
        self._show()

    def _finish(self, req: Request, outcome: Outcome) -> None:
        self.outcomes[req.fp] = outcome
        # Answered: the request is not needed any more (a 100k-row job's memory is mostly its rows).
        self.plan.requests.pop(req.fp, None)
        if self.state is not None:
            self.state.result(req.fp, outcome)
        self._count(req, outcome)
        self._show()

    def _count(self, req: Request, outcome: Outcome) -> None:
        s, n = self.snapshot, len(req.rows)
        s.done += n
        if outcome.ok:
            s.ok += n
        elif outcome.status == "skipped_budget":
            s.skipped += n
        else:
            s.errors += n
        s.cost_usd += outcome.cost or 0.0

    def _show(self) -> None:
        if self.progress is not None:
            self.snapshot.elapsed_s = time.monotonic() - self._started
            self.snapshot.note = self._note()
            self.progress.update(self.snapshot)

    def _note(self) -> str:
        if self.snapshot.done >= self.plan.rows:
            return ""
        quiet = time.monotonic() - self._answered_at
        if self._stuck is not None and quiet > _SAY_STUCK * self.give_up_after_s:
            return (
                f"stuck: no answer for {quiet:.0f} s, every request refused ({self._stuck.kind}); "
                f"the rows left fail after {self.give_up_after_s:.0f} s (give_up_after_s)"
            )
        return f"{int(self.pacer.limit)} at once"

    async def _one(
        self, req: Request, worst: float, held: Reservation | None
    ) -> tuple[Request, Outcome | None]:
        try:
            return req, await self._call(req)
        finally:  # the call's cost is in the log (or it failed): its worst case is not held any more
            self.pacer.running -= 1
            if self.budget is not None:
                self.budget.release(worst)
            if held is not None:
                held.release()

    async def _call(self, req: Request) -> Outcome | None:
        """Send one request; None means "refused for rate limits, queue it again"."""
        self._seq += 1
        seq = self._seq
        attempts: list[_attempts.Attempt] = []
        token = cost_of_attempt.set(self._estimates.cost())
        try:
            with _attempts.watching(attempts):
                raw = await self.client.messages.with_raw_response.create(**req.body, timeout=self.timeout)
            message = await raw.parse()
        except Exception as exc:
            if not is_transport_error(exc):
                raise  # a bug is not a row's error
            err = from_sdk_error(exc)
            self._log_attempts(attempts, getattr(exc, "response", None), seq, err)
            tries = self.requeues.get(req.fp, 0)
            if isinstance(err, _RETRYABLE) and tries < MAX_REQUEUES:
                self._stuck = err
                if time.monotonic() - self._answered_at > self.give_up_after_s:
                    self._gave_up = err
                    return from_error(err)
                self.requeues[req.fp] = tries + 1
                self._show()
                return None
            return from_error(err)
        finally:
            cost_of_attempt.reset(token)
        self._answered_at, self._stuck = time.monotonic(), None
        last = self._log_attempts(attempts, raw.http_response, seq, None)
        latency = time.perf_counter() - last.started if last else None
        record = self._record(message, seq, "ok", raw.request_id, latency, last.started_at if last else None)
        self.log.append(record)
        self._estimates.learn(record)
        if self.budget is not None:
            self.budget.spend(record.cost_usd or 0.0)
            self.budget.learn(req, record)
        return from_message(message, self.plan.settings.output_format, record)

    def _log_attempts(
        self,
        attempts: list[_attempts.Attempt],
        final: Any,
        seq: int,
        err: ClaudekitError | None,
    ) -> _attempts.Attempt | None:
        """Log the attempts the SDK retried (and, for a failed call, the failure); return the final one."""
        retried, last = _attempts.split(attempts, final)
        records: list[tuple[str, str | None, float | None, datetime | None]] = [
            (a.status, a.request_id, a.latency_s, a.started_at) for a in retried
        ]
        if err is not None:
            at = last.started_at if last else None
            records.append((err.kind, getattr(err, "request_id", None), last.latency_s if last else None, at))
        for status, request_id, latency, at in records:
            self.log.append(self._record(None, seq, status, request_id, latency, at))
        return last

    def _record(
        self, message: Any, seq: int, status: str, request_id: str | None, latency: float | None, at: Any
    ) -> UsageRecord:
        return UsageRecord.from_message(
            message,
            chat_id=self.name,
            turn=seq,
            step=0,
            model=self.plan.settings.model,
            request_id=request_id,
            status=status,
            latency_s=latency,
            ttft_s=None,
            started_at=at or datetime.now(timezone.utc),
        )


def reuse(outcomes: dict[str, Outcome], plan: Plan) -> dict[str, Outcome]:
    """The answers a state file already holds for this plan's requests (answered ones: an API error,
    a cancel or an expiry is sent again; an answer, even cut off at max_tokens, is not paid twice)."""
    return {fp: replace(o) for fp, o in outcomes.items() if o.answered and fp in plan.requests}
