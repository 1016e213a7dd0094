"""Message threads for ``Chat``: a turn sends only the messages the service does not hold yet.

Beta ``message-threads-2026-08-12``: the first request carries ``thread: {"type": "create"}`` and the service
keeps the conversation under the response's id; the next one carries ``{"type": "continue",
"previous_message_id": …}``, only the messages after that reply, and no ``system`` / ``tools``. The local
history stays the source of truth: whenever it no longer starts with what the service holds (an edited
history, another model, system prompt or tool set, a refusal taken back) or the service answers
``thread_not_found`` / ``thread_already_continued`` / ``thread_continue_in_flight``, the turn goes out in
full under a new thread.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["THREADS_BETA", "ThreadCursor", "resend_in_full"]

THREADS_BETA = "message-threads-2026-08-12"
_RESEND = frozenset({"thread_not_found", "thread_already_continued", "thread_continue_in_flight"})
_CREATE_ONLY = ("system", "tools")  # the service keeps the thread's own; a continue must not send them


def _digest(value: Any) -> str:
    """A fingerprint that ignores ``cache_control`` (claudekit moves its breakpoint every turn)."""

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k != "cache_control"}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return hashlib.sha256(json.dumps(strip(value), sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class ThreadCursor:
    """What the service holds of one chat: the reply a turn continues from, fingerprints of what was sent."""

    reply_id: str | None = None
    sent: int = 0  # messages of the request that produced ``reply_id`` (the reply comes after them)
    prefix: str = ""  # their fingerprint
    fields: str = ""  # fingerprint of model, system and tools
    _pending: tuple[int, str, str] | None = None

    def shape(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` as this turn sends it: a continue with the new messages, or a create."""
        messages: list[Any] = body["messages"]
        fields = _digest({k: body.get(k) for k in ("model", *_CREATE_ONLY)})
        self._pending = (len(messages), _digest(messages), fields)
        continues = (
            self.reply_id is not None
            and fields == self.fields
            and len(messages) > self.sent + 1
            and _digest(messages[: self.sent]) == self.prefix
        )
        if continues:
            out = {k: v for k, v in body.items() if k not in _CREATE_ONLY}
            out["messages"] = messages[self.sent + 1 :]
            thread: dict[str, Any] = {"type": "continue", "previous_message_id": self.reply_id}
        else:
            out = dict(body)
            thread = {"type": "create"}
        out["extra_body"] = {**(body.get("extra_body") or {}), "thread": thread}
        headers = dict(body.get("extra_headers") or {})
        betas = [b for b in (headers.get("anthropic-beta") or "").split(",") if b.strip()]
        headers["anthropic-beta"] = ",".join([*betas, THREADS_BETA])
        out["extra_headers"] = headers
        return out

    def answered(self, reply_id: str) -> None:
        """The service stored the reply to the request last shaped: the next turn continues from it."""
        if self._pending is None:
            return
        self.sent, self.prefix, self.fields = self._pending
        self.reply_id = reply_id
        self._pending = None

    def forget(self) -> None:
        """Start a new thread on the next turn (a refusal taken back, a failed turn, a lost thread)."""
        self.reply_id = None
        self._pending = None


def resend_in_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a thread rejection that a full resend under a new thread recovers from."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return isinstance(details, dict) and details.get("error_code") in _RESEND
