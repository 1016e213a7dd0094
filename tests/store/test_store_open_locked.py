"""A kernel whose first write meets another process's lock, held past the busy timeout, keeps its store."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from claudekit.store import Store, _store

from ._support import record, rows


def test_opening_waits_for_a_lock_held_past_the_busy_timeout(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Shortened so the test takes seconds: sqlite gives up after 0.2 s (10 s for real), the writer retries
    # for 5 s (60 s), a producer waits for the writer for 0.5 s at most (2 s); the lock is held for >= 1 s.
    monkeypatch.setattr(_store, "_BUSY_TIMEOUT_S", 0.2)
    monkeypatch.setattr(_store, "_RETRY_FOR_S", 5.0)
    monkeypatch.setattr(_store, "_WAIT_S", 0.5)
    db_path = home / "claudekit.db"
    first = Store(db_path)
    assert first.start()  # the file and its schema exist, as another kernel made them
    first.close()
    store = Store(db_path)
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another process writing (a large chat, a long migration)
    try:
        started = time.monotonic()
        for i in range(10):  # this kernel's first calls, made while the lock is held
            store.add_call(record(i))
            time.sleep(0.02)
        time.sleep(max(0.0, started + 1.0 - time.monotonic()))
        held = time.monotonic() - started
        opened_while_held = store.broken is None and store.flush(0)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    for i in range(10, 13):  # and calls after the lock is gone
        store.add_call(record(i))
    assert store.flush(10)
    assert store.broken is None, store.broken
    assert store.dropped == 0
    stored = rows(db_path, "SELECT request_id FROM calls ORDER BY request_id")
    assert [r[0] for r in stored] == [f"req_{i:06d}" for i in range(13)]
    # The lock really outlasted several busy timeouts, and nothing was written while it was held.
    assert held >= 5 * 0.2, held
    assert not opened_while_held
    store.close()
