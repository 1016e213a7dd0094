"""Keeping the event loop awake while a turn runs, so that a kernel interrupt lands at once.

ipykernel delivers a kernel interrupt with a plain ``call_soon`` from its SIGINT handler, which does
not wake an event loop asleep in select(): without a wake-up now and then, an interrupt during an
HTTP wait (connect, first byte, the SDK's retry back-off) lands only when some other I/O happens.
The core knows none of this: it calls what ``_seams.set_loop_waker`` registered (see notebook/__init__).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ClassVar

__all__ = ["keep_awake"]

_WAKE_S = 0.25


def keep_awake() -> Callable[[], None]:
    """Wake the running loop every _WAKE_S until the returned callable is called (once per turn)."""
    return _Waker.acquire().release


class _Waker:
    """One task per event loop that wakes it every _WAKE_S while any turn runs (see _WAKE_S)."""

    _by_loop: ClassVar[dict[asyncio.AbstractEventLoop, _Waker]] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.users = 0
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def acquire(cls) -> _Waker:
        loop = asyncio.get_running_loop()
        waker = cls._by_loop.get(loop)
        if waker is None:
            waker = cls._by_loop[loop] = cls(loop)
        waker.users += 1
        if waker.task is None:
            waker.task = loop.create_task(_wake_periodically())
        return waker

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0:
            self._by_loop.pop(self.loop, None)
            if self.task is not None:
                self.task.cancel()
                self.task = None


async def _wake_periodically() -> None:
    while True:
        await asyncio.sleep(_WAKE_S)
