"""The schema: a version, migrations that keep data, WAL, and a newer database left alone."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import pytest

import claudekit as ck
from claudekit import store
from claudekit.store import SCHEMA_VERSION, Store, StoreWarning, migrate
from claudekit.usage import session_log

from ._support import record, rows


def test_a_new_store_is_at_the_latest_version_in_wal_mode(home: Path) -> None:
    session_log().append(record(1))
    assert store.flush()
    db = home / "claudekit.db"
    assert rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    applied = rows(db, "SELECT version, name FROM _migrations ORDER BY version")
    assert [v for v, _ in applied] == list(range(1, SCHEMA_VERSION + 1))
    assert applied[0][1] == "m001_initial"
    assert rows(db, "SELECT count(*) FROM calls") == [(1,)]
    assert rows(db, "SELECT count(*) FROM sessions") == [(1,)]


def _v1_database(path: Path) -> None:
    """A database as the first version of the schema made it, with a chat, its messages and a call."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(db, upto=1) == 1
    assert "messages_fts" not in {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    db.execute(
        "INSERT INTO chats (id, name, created, updated, model, settings, tools, state) "
        "VALUES ('c1', 'old-analysis', 1, 2, 'claude-sonnet-4-6', '{}', '[]', '{\"turn\": 1}')"
    )
    for i, (role, text) in enumerate(
        [("user", "Why did churn rise in March?"), ("assistant", "Prices went up.")]
    ):
        content = json.dumps({"role": role, "content": [{"type": "text", "text": text}]})
        db.execute(
            "INSERT INTO messages (chat, position, role, content, text, created) "
            "VALUES ('c1', ?, ?, ?, ?, 3)",
            (i, role, content, text),
        )
    db.execute(
        "INSERT INTO calls (session, chat, timestamp, chat_id, turn, step, model, status, input_tokens, "
        "output_tokens, cost_usd) VALUES ('s0', 'c1', 1700000000000000, 'old-analysis', 1, 0, "
        "'claude-sonnet-4-6', 'ok', 12, 5, 0.25)"
    )
    db.close()


def test_migrating_from_version_1_to_2_keeps_the_data(home: Path) -> None:
    db = home / "claudekit.db"
    _v1_database(db)
    before = {t: rows(db, f"SELECT * FROM {t} ORDER BY 1") for t in ("chats", "messages", "calls")}
    assert rows(db, "PRAGMA user_version") == [(1,)]
    # Opening the store migrates it; the old rows are all still there, unchanged.
    session_log().append(record(7, chat_id="new-chat"))
    assert store.flush()
    assert rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    for table, old in before.items():
        now = rows(db, f"SELECT * FROM {table} ORDER BY 1")
        # Later migrations add columns at the end (migration 3: the server tools' counts).
        assert [row[: len(o)] for row, o in zip(now, old, strict=False)] == old, table
    assert rows(db, "SELECT web_search_requests FROM calls ORDER BY 1")[0] == (None,)
    # The migration indexed the messages written before it existed.
    found = ck.search("churn")
    assert list(found["chat"]) == ["old-analysis"] and list(found["position"]) == [0]
    assert "[churn]" in found["snippet"][0]
    # And the old call is in the usage history next to the new one.
    hist = ck.usage.history()
    assert list(hist["chat_id"]) == ["old-analysis", "new-chat"]
    assert hist["cost_usd"][0] == 0.25


def test_two_openers_of_a_new_file_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    a = sqlite3.connect(path, isolation_level=None)
    b = sqlite3.connect(path, isolation_level=None)
    assert migrate(a) == SCHEMA_VERSION
    assert migrate(b) == SCHEMA_VERSION  # sees the work done, applies nothing twice
    assert rows(path, "SELECT count(*) FROM _migrations") == [(SCHEMA_VERSION,)]
    a.close()
    b.close()


def test_a_database_from_a_newer_claudekit_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    s = Store(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s.add_call(record(1))
        assert s.flush()
    assert s.broken is not None and "newer" in s.broken
    assert any(issubclass(w.category, StoreWarning) for w in caught)
    assert rows(path, "SELECT count(*) FROM calls") == [(0,)]
    assert path.read_bytes() == before
    s.close()


def test_an_unwritable_home_warns_once_and_the_chat_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the home directory should be")
    s = Store(blocker / "claudekit.db")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s.add_call(record(1))
        assert s.flush()
        s.add_call(record(2))  # dropped quietly: it said so once
        assert s.flush()
    messages = [str(w.message) for w in caught if issubclass(w.category, StoreWarning)]
    assert len(messages) == 1 and "\n" not in messages[0] and "CLAUDEKIT_HOME" in messages[0]
    s.close()
