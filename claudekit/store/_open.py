"""The process's store: opened for the current environment, flushed at exit."""

from __future__ import annotations

import atexit
import os
import threading

from ._paths import db_path, mode
from ._store import Store

__all__ = ["flush", "get_store"]

_lock = threading.Lock()
_current: Store | None = None
_key: tuple[str | None, ...] | None = None  # the environment _current was made for


def get_store() -> Store | None:
    """The store for the current ``CLAUDEKIT_HOME`` and ``CLAUDEKIT_STORE``; None when it is off.

    Every usage record asks, so the answer is cached on the raw values of the variables it depends on
    (three dictionary lookups); changing one of them takes effect at the next call."""
    global _current, _key
    env = os.environ
    key = (env.get("CLAUDEKIT_HOME"), env.get("CLAUDEKIT_STORE"), env.get("XDG_DATA_HOME"))
    if key == _key:
        return _current
    with _lock:
        m = mode()
        path = db_path() if m != "off" else None
        store = _current
        if store is not None and (store.path != path or store.mode != m):
            store.close()
            store = None
        if store is None and path is not None:
            store = Store(path, m)
        _current, _key = store, key
        return store


def flush(timeout: float | None = 10.0) -> bool:
    """Wait until this process's queued writes are in the database (True when they are)."""
    store = _current
    return True if store is None else store.flush(timeout)


def _at_exit() -> None:
    store = _current
    if store is not None:
        store.flush(5.0)


atexit.register(_at_exit)
