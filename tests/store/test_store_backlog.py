"""What a kill -9 can lose while another process holds the store's lock does not grow with speed."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from claudekit.store import Store
from claudekit.store._store import _BACKLOG_N

from ._support import record


def _produce(store: Store, n: int, returned: list[float]) -> None:
    """Calls ending faster than on any real job (~2,000 a second); each waits for I/O, as a call does."""
    for i in range(n):
        time.sleep(0.0005)
        store.add_call(record(i))
        returned.append(time.monotonic())


def test_a_fast_producer_waits_once_the_locked_out_backlog_is_full(home: Path) -> None:
    db_path = home / "claudekit.db"
    store = Store(db_path)
    assert store.start()
    store.add_call(record(1000))
    assert store.flush(10)  # a writer that keeps up, as before any lock
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # as another kernel writing a large chat would
    returned: list[float] = []
    producer = threading.Thread(target=_produce, args=(store, 200, returned), daemon=True)
    try:
        producer.start()
        time.sleep(0.045)  # inside the 50 ms time bound: only the count bound can hold the producer
        queued_while_locked = len(returned)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    producer.join(30)
    assert store.flush(30)
    # The writer's first batch (taken before it met the lock) may hold a few records more.
    assert 0 < queued_while_locked <= _BACKLOG_N + 4, queued_while_locked
    stored = sqlite3.connect(db_path).execute("SELECT count(*) FROM calls").fetchone()[0]
    assert stored == 201  # waiting lost nothing once the lock was gone
    store.close()


def test_the_count_bound_holds_when_the_first_write_meets_the_lock(home: Path) -> None:
    # A kernel whose store is not open yet (its first call, or a forked child) while another process holds
    # the lock: the writer waits for it while opening the file (journal mode, migration, its session row).
    db_path = home / "claudekit.db"
    first = Store(db_path)
    assert first.start()  # the file and its schema exist, as another kernel made them
    first.close()
    store = Store(db_path)
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    returned: list[float] = []
    producer = threading.Thread(target=_produce, args=(store, 200, returned), daemon=True)
    try:
        producer.start()
        time.sleep(0.045)
        queued_while_locked = len(returned)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    producer.join(30)
    assert store.flush(30)
    assert 0 < queued_while_locked <= _BACKLOG_N + 4, queued_while_locked
    stored = sqlite3.connect(db_path).execute("SELECT count(*) FROM calls").fetchone()[0]
    assert stored == 200
    store.close()
