"""The MCP sessions' own event loop, in a daemon thread, shared by every server of the process.

Each server's session lives in one task of this loop (the SDK's transports are anyio context managers:
entered and left in the same task), so chats on any loop (a kernel's, ``asyncio.run``'s, a sync caller's)
share it. At interpreter exit every server is closed (its process ended) before the loop stops.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_closers: list[Any] = []  # objects with an async ``_aclose()``, closed at exit


def loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use."""
    global _loop
    with _lock:
        if _loop is None:
            new = asyncio.new_event_loop()
            thread = threading.Thread(target=new.run_forever, name="claudekit-mcp", daemon=True)
            thread.start()
            _loop = new
            atexit.register(shutdown)
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> Future[T]:
    """Run ``coro`` on the shared loop; a concurrent future for its result."""
    return asyncio.run_coroutine_threadsafe(coro, loop())


async def run(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the shared loop from another loop; cancelling this cancels it there too."""
    return await asyncio.wrap_future(submit(coro))


def track(server: Any) -> None:
    """Close ``server`` at interpreter exit."""
    with _lock:
        if server not in _closers:
            _closers.append(server)


def untrack(server: Any) -> None:
    """``server`` was closed already."""
    with _lock:
        if server in _closers:
            _closers.remove(server)


def shutdown(timeout: float = 10.0) -> None:
    """Close every server (ending its process), then stop the loop. Called at exit."""
    global _loop
    with _lock:
        current, servers = _loop, list(_closers)
        _loop = None
        _closers.clear()
    if current is None or current.is_closed():
        return

    async def close_all() -> None:
        await asyncio.gather(*(s._aclose() for s in servers), return_exceptions=True)

    with contextlib.suppress(Exception):  # exiting anyway
        asyncio.run_coroutine_threadsafe(close_all(), current).result(timeout)
    current.call_soon_threadsafe(current.stop)
