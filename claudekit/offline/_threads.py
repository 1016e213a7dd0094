"""Message threads (beta ``message-threads-2026-08-12``): the conversation is kept under each reply's id.

As the service's page "Message threads" (build-with-claude/message-threads) and the SDK's thread types say:

- ``thread: {"type": "create"}`` stores the request's conversation and the reply under the response ``id``;
- ``thread: {"type": "continue", "previous_message_id": …}`` sends only the messages after that reply and
  omits ``system`` and ``tools`` (the thread keeps the ones it was created with; sending them is refused;
  ``tool_addition`` / ``tool_removal`` system blocks change the tools, see ``_tool_changes``);
- a stored reply expires 5 minutes after the request that stored it (the backend's clock); a continue from
  an unknown or expired id is a 404 with ``error.details.error_code`` ``thread_not_found`` (the SDK then
  resends in full);
- a reply can be continued once (``thread_already_continued``), and not while another continue from it is
  in flight (``thread_continue_in_flight``); another ``model`` is ``thread_fingerprint_mismatch``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import ApiError

__all__ = ["THREADS_BETA", "THREAD_TTL", "ThreadStore"]

THREADS_BETA = "message-threads-2026-08-12"
THREAD_TTL = 300.0  # seconds after the request that stored a reply
_MAX_STORED = 2_000  # replies kept at most, oldest dropped first: bounded memory for a long-lived server
_NOT_FOUND = (
    "No usable thread state was found for `previous_message_id` {pid}: it expired, was never stored, "
    "or belongs to another server. Replay the full conversation with "
    '`thread: {{"type": "create"}}` to start a new thread.'
)


@dataclass
class _Stored:
    model: str
    fields: dict[str, Any]  # ``system`` and ``tools`` as the thread was created with them
    messages: list[Any]  # the whole conversation, this reply included, as sent (turns not merged)
    expires: float
    continued: bool = False
    in_flight: bool = False


class ThreadStore:
    """The replies stored by threaded requests, by response id, on the backend's clock."""

    def __init__(self, clock: Callable[[], float], *, limit: int = _MAX_STORED) -> None:
        self._clock = clock
        self._limit = limit
        self._lock = threading.Lock()
        self._stored: OrderedDict[str, _Stored] = OrderedDict()

    def __len__(self) -> int:
        return len(self._stored)

    def expand(self, body: Mapping[str, Any], betas: frozenset[str]) -> tuple[dict[str, Any], str | None]:
        """The request as one whole conversation (``thread`` removed) and the id it continues from, if any.

        A continue is marked in flight: call :meth:`finish` with that id once it is answered or refused."""
        full = {k: v for k, v in body.items() if k != "thread"}
        thread = body.get("thread")
        if thread is None:
            return full, None
        if THREADS_BETA not in betas:
            raise ApiError(400, "thread: Extra inputs are not permitted")
        kind = thread.get("type") if isinstance(thread, Mapping) else None
        if kind == "create":
            if set(thread) != {"type"}:
                raise ApiError(
                    400, f"thread.create.{sorted(set(thread) - {'type'})[0]}: Extra inputs are not permitted"
                )
            return full, None
        if kind != "continue":
            raise ApiError(
                400,
                "thread: Input tag found using 'type' does not match any of the expected tags: "
                "'create', 'continue'",
            )
        pid = thread.get("previous_message_id")
        if not isinstance(pid, str):
            raise ApiError(400, "thread.continue.previous_message_id: Input should be a valid string")
        for name in ("system", "tools"):
            if name in body:
                raise ApiError(
                    400,
                    f"{name}: cannot be sent with a thread continue; the thread keeps the `{name}` it "
                    "was created with",
                )
        stored = self._claim(pid, str(body.get("model")))
        full["messages"] = [*stored.messages, *(body.get("messages") or [])]
        full.update(stored.fields)
        return full, pid

    def _claim(self, pid: str, model: str) -> _Stored:
        with self._lock:
            self._prune()
            stored = self._stored.get(pid)
            if stored is None:
                raise ApiError(
                    404,
                    _NOT_FOUND.format(pid=pid),
                    "not_found_error",
                    details={"error_code": "thread_not_found"},
                )
            if stored.continued:
                raise ApiError(
                    400,
                    f"The response {pid} has already been continued, and each response can be continued "
                    "only once. Continue from the thread's most recent response `id`.",
                    details={"error_code": "thread_already_continued"},
                )
            if stored.in_flight:
                raise ApiError(
                    400,
                    f"Another request is still continuing from {pid}. Wait for it to complete and "
                    "continue from its response `id`.",
                    details={"error_code": "thread_continue_in_flight"},
                )
            if stored.model != model:
                raise ApiError(
                    400,
                    f"model: `{model}` differs from the thread's `{stored.model}`. Send the stored value, "
                    'or replay the full conversation with `thread: {"type": "create"}` to change it.',
                    details={"error_code": "thread_fingerprint_mismatch"},
                )
            stored.in_flight = True
            return stored

    def finish(self, pid: str | None, *, answered: bool) -> None:
        """End the continue from ``pid``: answered, the reply is continued; refused, it stays open."""
        if pid is None:
            return
        with self._lock:
            stored = self._stored.get(pid)
            if stored is not None:
                stored.in_flight = False
                stored.continued = stored.continued or answered

    def store(self, msg_id: str, full: Mapping[str, Any], content: list[dict[str, Any]]) -> None:
        """Keep a threaded request's conversation and its reply under ``msg_id`` for the next continue."""
        reply = {"role": "assistant", "content": [_as_param(block) for block in content]}
        fields = {k: full[k] for k in ("system", "tools") if k in full}
        entry = _Stored(
            str(full.get("model")), fields, [*full["messages"], reply], self._clock() + THREAD_TTL
        )
        with self._lock:
            self._stored[msg_id] = entry
            self._prune()

    def forget(self) -> None:
        """Drop every stored reply (a lost thread: the next continue gets ``thread_not_found``)."""
        with self._lock:
            self._stored.clear()

    def _prune(self) -> None:
        now = self._clock()
        for key in [k for k, v in self._stored.items() if v.expires <= now and not v.in_flight]:
            del self._stored[key]
        while len(self._stored) > self._limit:
            self._stored.popitem(last=False)


def _as_param(block: Mapping[str, Any]) -> dict[str, Any]:
    """A response content block as the request param that sends it back (``null`` fields dropped)."""
    return {k: v for k, v in block.items() if v is not None}
