"""Helpers for the store tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from claudekit.offline import Fault, OfflineBackend, OfflineRequest
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


class Capturing(OfflineBackend):
    """The offline backend, keeping every request body exactly as it arrived (path, bytes); the first
    message whose last user text is ``fail_once`` is refused with a 400 (it is captured all the same)."""

    def __init__(self, *args: Any, fail_once: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw: list[tuple[str, bytes]] = []
        self._fail_once = fail_once
        inner = self.responder

        def respond(req: OfflineRequest) -> Any:
            if self._fail_once is not None and req.last_user_text == self._fail_once:
                self._fail_once = None
                return Fault.status(400, message="refused once by the test server")
            return inner(req)

        self.responder = respond

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Any:
        self.raw.append((path.split("?", 1)[0], bytes(body)))
        return super().handle(method, path, headers, body)

    def messages_sent(self) -> list[bytes]:
        return [body for path, body in self.raw if path == "/v1/messages"]
