"""A time-based throttle: the first update goes out at once, later ones at most ``rate`` per second."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Throttle"]


class Throttle:
    """Decides when a live view may refresh.

    The renderer is called synchronously for every event, so no timer is needed: an event refreshes the
    view only if at least ``1/rate`` seconds passed since the last refresh; everything in between is
    coalesced into the next refresh, and ``finish`` always flushes the final state. ``clock`` is injectable
    for tests (seconds, monotonic).
    """

    __slots__ = ("clock", "interval", "last", "refreshes")

    def __init__(self, rate: float = 15.0, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive (refreshes per second), got {rate!r}")
        self.interval = 1.0 / rate
        self.clock = clock
        self.last: float | None = None
        self.refreshes = 0

    def ready(self) -> bool:
        """True when a refresh is allowed now (the caller then refreshes and calls :meth:`mark`)."""
        return self.last is None or self.clock() - self.last >= self.interval - 1e-9

    def mark(self) -> None:
        self.last = self.clock()
        self.refreshes += 1

    def poll(self) -> bool:
        """:meth:`ready` and, if so, :meth:`mark` in one call."""
        if self.ready():
            self.mark()
            return True
        return False
