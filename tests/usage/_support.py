"""Shared helpers for the usage tests."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from anthropic.types import Message

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def make_message(
    *,
    model: str = "claude-sonnet-4-6",
    usage: dict[str, Any] | None = None,
    stop_reason: str | None = "end_turn",
    msg_id: str = "msg_01",
    diagnostics: dict[str, Any] | None = None,
) -> Message:
    body: dict[str, Any] = {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage if usage is not None else {"input_tokens": 10, "output_tokens": 5},
    }
    if diagnostics is not None:
        body["diagnostics"] = diagnostics
    return Message.model_validate(body)
