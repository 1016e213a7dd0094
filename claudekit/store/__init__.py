"""A local SQLite store of usage and conversations, shared by every kernel on the machine.

On by default: one file, ``$CLAUDEKIT_HOME/claudekit.db`` (default: the user's data directory, e.g.
``~/.local/share/claudekit``). ``CLAUDEKIT_STORE=usage`` keeps usage without any content (no prompts,
answers, system prompts or tool definitions); ``CLAUDEKIT_STORE=off`` keeps nothing.

Tables (schema version in ``PRAGMA user_version``, migrations in ``_migrations``): ``sessions`` (one per
kernel), ``chats`` (name, model, settings, tools), ``messages`` (each chat's history as Messages API
params, in order, searchable with FTS5), ``calls`` (one row per usage record, with the notebook path
from ``JPY_SESSION_NAME`` and the cell's execution count). API keys and key-shaped strings are replaced
by ``[redacted]`` before anything is written.
"""

from __future__ import annotations

import atexit
import os
import threading

from ._paths import DB_NAME, db_path, default_home, home, mode
from ._query import StoredChat, chats, load_chat, query_calls, search
from ._schema import SCHEMA_VERSION, migrate
from ._scrub import REDACTED, add_secret, scrub
from ._store import ChatState, Store, StoreError, StoreWarning

__all__ = [
    "DB_NAME",
    "REDACTED",
    "SCHEMA_VERSION",
    "ChatState",
    "Store",
    "StoreError",
    "StoreWarning",
    "StoredChat",
    "add_secret",
    "chats",
    "db_path",
    "default_home",
    "flush",
    "get_store",
    "home",
    "load_chat",
    "migrate",
    "mode",
    "query_calls",
    "scrub",
    "search",
]

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
