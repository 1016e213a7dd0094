"""Helpers for the store tests."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from claudekit.usage import UsageRecord

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def record(i: int, *, chat_id: str = "chat-x", model: str = "claude-sonnet-4-6", **kw: Any) -> UsageRecord:
    """A plausible priced record; ``i`` makes it unique (request id, timestamp, tokens)."""
    first = i % 10 == 0
    values: dict[str, Any] = {
        "timestamp": T0 + timedelta(seconds=i),
        "chat_id": chat_id,
        "turn": i // 2 + 1,
        "step": i % 2,
        "model": model,
        "status": "ok",
        "request_id": f"req_{i:06d}",
        "message_id": f"msg_{i:06d}",
        "stop_reason": "end_turn",
        "input_tokens": 3 + i % 7,
        "cache_creation_input_tokens": 2000 if first else 40,
        "cache_read_input_tokens": 0 if first else 2000 + i,
        "output_tokens": 20 + i % 50,
        "latency_s": 0.5,
        "ttft_s": 0.1,
        "cache_miss_reason": "system_changed" if i % 17 == 5 else None,
        "client_miss_reason": "system prompt changed" if i % 17 == 5 else None,
    }
    values.update(kw)
    return UsageRecord(**values).priced()


def rows(path: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def all_bytes(home: Path) -> bytes:
    """Everything the store wrote: the database, its WAL and shared-memory files."""
    return b"".join(p.read_bytes() for p in sorted(home.glob("claudekit.db*")))
