"""The store's schema: numbered migrations, applied in order, each in one transaction.

The schema version is SQLite's ``PRAGMA user_version`` (the number of migrations applied); the
``_migrations`` table says when each was applied (as simonw/llm's ``_llm_migrations`` does). A database
made by a newer claudekit (a higher version than this code knows) is read but never written.

Times are integer microseconds since the Unix epoch (UTC), so that a DataFrame column is one cast away.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

__all__ = ["CALL_COLUMNS", "MIGRATIONS", "SCHEMA_VERSION", "NewerSchemaError", "migrate", "version"]

#: The usage record's fields, in the usage DataFrame's order (``claudekit.usage.UsageRecord``).
CALL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("timestamp", "INTEGER NOT NULL"),
    ("chat_id", "TEXT NOT NULL"),
    ("turn", "INTEGER NOT NULL"),
    ("step", "INTEGER NOT NULL"),
    ("model", "TEXT NOT NULL"),
    ("status", "TEXT NOT NULL"),
    ("request_id", "TEXT"),
    ("message_id", "TEXT"),
    ("stop_reason", "TEXT"),
    ("input_tokens", "INTEGER"),
    ("cache_creation_input_tokens", "INTEGER"),
    ("cache_creation_5m_input_tokens", "INTEGER"),
    ("cache_creation_1h_input_tokens", "INTEGER"),
    ("cache_read_input_tokens", "INTEGER"),
    ("output_tokens", "INTEGER"),
    ("thinking_tokens", "INTEGER"),
    ("server_tool_uses", "INTEGER"),
    ("latency_s", "REAL"),
    ("ttft_s", "REAL"),
    ("cost_usd", "REAL"),
    ("cost_no_cache_usd", "REAL"),
    ("cache_miss_reason", "TEXT"),
    ("cache_missed_input_tokens", "INTEGER"),
    ("client_miss_reason", "TEXT"),
    ("service_tier", "TEXT"),
    ("web_search_requests", "INTEGER"),
    ("web_fetch_requests", "INTEGER"),
    ("code_execution_requests", "INTEGER"),
)
#: The server tools' counts came with migration 3; the first migration made the columns before them.
_SERVER_TOOL_COLUMNS = CALL_COLUMNS[-3:]


def _m001_initial(db: sqlite3.Connection) -> None:
    """Sessions (one per kernel), chats with their settings, messages in order, one row per API call."""
    call_columns = ",\n  ".join(f"{name} {decl}" for name, decl in CALL_COLUMNS[:-3])
    _script(
        db,
        f"""
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  started INTEGER NOT NULL,
  pid INTEGER,
  notebook TEXT,
  version TEXT
);
CREATE TABLE chats (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created INTEGER NOT NULL,
  updated INTEGER NOT NULL,
  model TEXT,
  settings TEXT,
  tools TEXT,
  state TEXT,
  session TEXT,
  notebook TEXT
);
CREATE INDEX chats_by_name ON chats(name, updated);
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  chat TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  role TEXT NOT NULL,
  content TEXT NOT NULL,
  text TEXT NOT NULL,
  created INTEGER NOT NULL,
  session TEXT,
  cell INTEGER,
  UNIQUE (chat, position)
);
CREATE TABLE calls (
  id INTEGER PRIMARY KEY,
  session TEXT NOT NULL,
  chat TEXT,
  notebook TEXT,
  cell INTEGER,
  {call_columns}
);
CREATE INDEX calls_by_time ON calls(timestamp);
CREATE INDEX calls_by_notebook ON calls(notebook, timestamp);
CREATE INDEX calls_by_chat ON calls(chat);
""",
    )


def _m002_message_search(db: sqlite3.Connection) -> None:
    """Full-text search over the text of prompts and answers (FTS5, stemmed), kept in step by triggers."""
    _script(
        db,
        """
CREATE VIRTUAL TABLE messages_fts USING fts5(
  text, content='messages', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
  INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
END;
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
""",
    )


Migration = Callable[[sqlite3.Connection], None]


def _m003_server_tools(db: sqlite3.Connection) -> None:
    """The server tools' request counts (web search, web fetch, code execution) on each call."""
    for name, decl in _SERVER_TOOL_COLUMNS:
        db.execute(f"ALTER TABLE calls ADD COLUMN {name} {decl}")


MIGRATIONS: tuple[Migration, ...] = (_m001_initial, _m002_message_search, _m003_server_tools)
SCHEMA_VERSION = len(MIGRATIONS)


class NewerSchemaError(RuntimeError):
    """The database was made by a newer claudekit."""


def version(db: sqlite3.Connection) -> int:
    row = db.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(db: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> int:
    """Apply the migrations the database lacks (up to ``upto``); returns the version it is at.

    ``db`` must be in autocommit mode (``isolation_level=None``). Two processes opening a new database at
    once are safe: the check is repeated inside ``BEGIN IMMEDIATE``, which only one of them holds."""
    if version(db) >= upto:
        return _check_known(version(db))
    db.execute("BEGIN IMMEDIATE")
    try:
        current = version(db)
        if current == 0:
            db.execute(
                "CREATE TABLE IF NOT EXISTS _migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
        for number in range(current + 1, upto + 1):
            step = MIGRATIONS[number - 1]
            step(db)
            db.execute(
                "INSERT INTO _migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (number, step.__name__.lstrip("_"), time.time_ns() // 1000),
            )
            db.execute(f"PRAGMA user_version = {number}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return _check_known(version(db))


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run a script inside the caller's transaction (``executescript`` would commit first)."""
    for statement in _statements(sql):
        db.execute(statement)


def _statements(sql: str) -> list[str]:
    """Split a script into complete statements (triggers contain ';' inside BEGIN … END)."""
    out: list[str] = []
    current = ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


def _check_known(found: int) -> int:
    if found > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"the store has schema version {found}, newer than this claudekit knows ({SCHEMA_VERSION})"
        )
    return found
