"""The progress of a Dask job: small reports from each partition, one display on the driver.

A Dask frame is lazy, so progress belongs to each compute. Each partition's task reports on the job's
topic (``Worker.log_event``): a start with the partition's row total, then its counts — done, ok, errors,
skipped, cost, reused — at most :data:`REPORT_EVERY_S` apart, and its final counts when it ends
(:class:`Reporter`, the ``Progress`` its pandas run is given). The driver folds them into one
:class:`~claudekit.frame._progress.Snapshot` and drives ONE display made by ``make_progress`` (the
notebook's widget in a kernel, a line on a terminal) per compute (:class:`DaskProgress`).

A task Dask runs again (its worker died) is a new *attempt* of the same partition: its counts replace
the earlier attempt's, so no row is counted twice; what the earlier attempt spent stays in the cost
(it was paid), except the answers the new attempt reuses from a state file, which it counts itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._progress import Progress, Snapshot, make_progress

__all__ = ["DaskProgress", "Reporter", "wants_progress"]

#: A partition reports its counts at most this often (its start and its end always go).
REPORT_EVERY_S = 0.25
#: While a compute is open the driver checks this often whether it ended without every partition.
_CHECK_S = 0.5
_COUNTS = ("done", "ok", "errors", "skipped", "cost", "reused", "reused_cost")


def wants_progress(setting: Any) -> bool:
    """Whether ``progress=setting`` asks for a display (False and None ask for none: nothing is sent)."""
    return setting is not False and setting is not None


class Reporter:
    """A partition's ``Progress`` on its worker: its snapshots as small reports, throttled."""

    def __init__(self, send: Callable[[dict[str, Any]], None], partition: int, total: int) -> None:
        self.send = send
        self.head: dict[str, Any] = {"p": partition, "a": uuid.uuid4().hex[:12], "total": total}
        self.ended = False
        self._last = -1e9

    def start(self) -> None:
        self.send(dict(self.head))

    def update(self, snapshot: Snapshot) -> None:
        now = time.monotonic()
        if now - self._last < REPORT_EVERY_S:
            return
        self._last = now
        self.send(self._counts(snapshot))

    def finish(self, snapshot: Snapshot, error: BaseException | None) -> None:
        self.ended = True
        self.send(dict(self._counts(snapshot), end=True, failed=_name(error)))

    def failed(self, error: BaseException) -> None:
        """The partition's task raised before (or after) its run reported its end."""
        if not self.ended:
            self.ended = True
            self.send(dict(self.head, end=True, failed=_name(error)))

    def _counts(self, s: Snapshot) -> dict[str, Any]:
        return dict(
            self.head, done=s.done, ok=s.ok, errors=s.errors, skipped=s.skipped, cost=s.cost_usd,
            reused=s.reused, reused_cost=s.reused_cost_usd,
        )


def _name(error: BaseException | None) -> str | None:
    return None if error is None else type(error).__name__


@dataclass
class _Part:
    """One partition in one compute: its latest attempt's counts, and what earlier attempts spent."""

    total: int
    attempts: set[str] = field(default_factory=set)
    current: str = ""
    counts: dict[str, Any] = field(default_factory=dict)  # the latest counts reported (any attempt)
    counted: str = ""  # the attempt those counts are from
    spent_before: float = 0.0  # what earlier attempts of this compute reported spending
    base: tuple[int, float] | None = None  # reused rows (and their cost) from before this compute
    ended: bool = False

    def take(self, msg: dict[str, Any]) -> None:
        attempt = str(msg["a"])
        if attempt not in self.attempts:  # a new attempt: this partition runs (again)
            self.attempts.add(attempt)
            self.current, self.ended = attempt, False
        elif attempt != self.current:
            return  # an attempt Dask gave up on: its rows are counted by the current one
        if "done" in msg:
            if self.counted != attempt:
                self.spent_before += float(self.counts.get("cost", 0.0))
                self.counted = attempt
            if self.base is None:
                self.base = (int(msg["reused"]), float(msg["reused_cost"]))
            self.counts = {k: msg[k] for k in _COUNTS}
        self.ended = self.ended or bool(msg.get("end"))

    def cost(self) -> float:
        """This compute's spend: the latest attempt's, plus the earlier attempts' (at least the answers
        they recorded in the state file, which the latest attempt counts as reused)."""
        base = self.base[1] if self.base is not None else 0.0
        recorded = float(self.counts.get("reused_cost", 0.0)) - base
        return float(self.counts.get("cost", 0.0)) + max(self.spent_before, recorded)


class DaskProgress:
    """The driver's progress of one lazy Dask job, for each of its computes (see the module docstring).

    ``receive`` takes each partition's report (on the Dask client's event loop). The first report of a
    compute makes its display; it is finished when every partition has ended, when one failed, or when
    ``busy()`` says the client waits for nothing any more (a compute of some partitions only, e.g.
    ``head()``, or one that failed). ``later(seconds, callback)`` schedules those checks.
    """

    def __init__(
        self,
        kind: str,
        partitions: int,
        setting: Any,
        *,
        busy: Callable[[], bool] = lambda: True,
        later: Callable[[float, Callable[[], None]], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind, self.partitions, self.setting = kind, partitions, setting
        self.busy, self.later, self.clock = busy, later, clock
        self.parts: dict[int, _Part] = {}
        self.display: Progress | None = None
        self.open = False
        self.computes = 0
        self.events = 0
        self._old: set[str] = set()  # the attempts of the computes before this one
        self._started = 0.0

    def receive(self, msg: dict[str, Any]) -> None:
        self.events += 1
        attempt, number = str(msg["a"]), int(msg["p"])
        if attempt in self._old:
            return  # a late report of a compute already finished
        if not self.open:
            self._begin()
        part = self.parts.setdefault(number, _Part(int(msg["total"])))
        part.take(msg)
        if msg.get("failed"):
            self._end(f"stopped: partition {number} failed ({msg['failed']})")
        elif len(self.parts) == self.partitions and all(p.ended for p in self.parts.values()):
            self._end("")
        elif self.display is not None:
            self.display.update(self.snapshot())

    def snapshot(self) -> Snapshot:
        parts = self.parts.values()
        s = Snapshot(self.kind, sum(p.total for p in parts), elapsed_s=self.clock() - self._started)
        for p in parts:
            c = p.counts
            s.done += int(c.get("done", 0))
            s.ok += int(c.get("ok", 0))
            s.errors += int(c.get("errors", 0))
            s.skipped += int(c.get("skipped", 0))
            s.cost_usd += p.cost()
            s.reused += p.base[0] if p.base is not None else 0
            s.reused_cost_usd += p.base[1] if p.base is not None else 0.0
        started, ended = len(self.parts), sum(p.ended for p in parts)
        if started < self.partitions:
            s.note = f"{started} of {self.partitions} partitions started"
        elif ended < self.partitions:
            s.note = f"{ended} of {self.partitions} partitions done"
        return s

    def _begin(self) -> None:
        self.parts, self.open, self._started = {}, True, self.clock()
        self.computes += 1
        self.display = make_progress(self.setting)
        self._check_later(self.computes)

    def _end(self, note: str) -> None:
        s = self.snapshot()
        s.note = note
        self.open = False
        self._old = {a for p in self.parts.values() for a in p.attempts}
        if self.display is not None:
            self.display.finish(s, None)
        self.display = None

    def _check_later(self, compute: int) -> None:
        if self.later is not None:
            self.later(_CHECK_S, lambda: self._check(compute))

    def _check(self, compute: int) -> None:
        """While the compute is open: ended without every partition once the client waits for nothing."""
        if not self.open or compute != self.computes:
            return
        if self.busy():
            self._check_later(compute)
            return
        done = sum(p.ended for p in self.parts.values())
        running = len(self.parts) - done
        self._end(
            f"{done} of {self.partitions} partitions computed"
            + (f", {running} stopped" if running else "")
        )
