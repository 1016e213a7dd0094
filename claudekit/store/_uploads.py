"""Files API uploads remembered by content hash and base URL, so a re-run never uploads the same bytes twice.

The table lives in the store's database but outside its numbered migrations (``CREATE TABLE IF NOT
EXISTS``): it is a cache of what the service holds, never read by anything else, and a database without
it loses nothing. With the store off, uploads are remembered for this process only.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from ._open import get_store
from ._schema import SCHEMA_VERSION, version

__all__ = ["forget", "listing", "recall", "remember"]

_FIELDS = ("sha256", "base_url", "file_id", "filename", "media_type", "size", "uploaded")
_TABLE = f"""CREATE TABLE IF NOT EXISTS uploads (
  sha256 TEXT NOT NULL, base_url TEXT NOT NULL, file_id TEXT NOT NULL, filename TEXT NOT NULL,
  media_type TEXT NOT NULL, size INTEGER NOT NULL, uploaded INTEGER NOT NULL,
  PRIMARY KEY ({_FIELDS[0]}, {_FIELDS[1]})
)"""
_memory: dict[tuple[str, str], dict[str, Any]] = {}
_lock = threading.Lock()


def _db() -> sqlite3.Connection | None:
    """The store's database, or None: store off or ``usage`` (a file name can say what a file is about),
    a database a newer claudekit made (never written), or one that cannot be opened (then this process
    remembers its uploads itself)."""
    store = get_store()
    if store is None or store.mode != "on":
        return None
    try:
        store.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(store.path, timeout=10.0, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 10000")
        if version(db) > SCHEMA_VERSION:
            db.close()
            return None
        db.execute(_TABLE)
    except (sqlite3.Error, OSError):
        return None
    return db


def recall(sha256: str, base_url: str) -> dict[str, Any] | None:
    """The remembered upload of these bytes to this service, or None."""
    with _lock:
        db = _db()
        if db is None:
            return _memory.get((sha256, base_url))
        try:
            row = db.execute(
                f"SELECT {', '.join(_FIELDS)} FROM uploads WHERE sha256 = ? AND base_url = ?",
                (sha256, base_url),
            ).fetchone()
        finally:
            db.close()
    return dict(zip(_FIELDS, row, strict=True)) if row else None


def remember(row: dict[str, Any]) -> None:
    """Keep an upload (``row`` has the fields of the table; ``uploaded`` is filled in when missing)."""
    full = {"uploaded": time.time_ns() // 1000, **row}
    with _lock:
        db = _db()
        if db is None:
            _memory[(full["sha256"], full["base_url"])] = full
            return
        try:
            marks = ", ".join("?" * len(_FIELDS))
            db.execute(
                f"INSERT OR REPLACE INTO uploads ({', '.join(_FIELDS)}) VALUES ({marks})",
                tuple(full[f] for f in _FIELDS),
            )
        finally:
            db.close()


def forget(file_id: str, base_url: str) -> None:
    """Forget an upload (deleted, or gone from the service)."""
    with _lock:
        db = _db()
        if db is None:
            for key in [k for k, v in _memory.items() if v["file_id"] == file_id and k[1] == base_url]:
                del _memory[key]
            return
        try:
            db.execute("DELETE FROM uploads WHERE file_id = ? AND base_url = ?", (file_id, base_url))
        finally:
            db.close()


def listing() -> list[dict[str, Any]]:
    """Every remembered upload, newest first."""
    with _lock:
        db = _db()
        if db is None:
            rows = list(_memory.values())
        else:
            try:
                found = db.execute(f"SELECT {', '.join(_FIELDS)} FROM uploads").fetchall()
            finally:
                db.close()
            rows = [dict(zip(_FIELDS, r, strict=True)) for r in found]
    return sorted(rows, key=lambda r: r["uploaded"], reverse=True)
