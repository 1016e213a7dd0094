"""HTTP attempts the SDK retried, so that the usage log has one record per call that got a response.

The SDK retries 408/409/429/5xx inside one ``messages.create``; claudekit sees only the last response.
The SDK's request middleware runs once per attempt inside its retry loop: ours notes every attempt
made while a claudekit step is watching (a context variable, so concurrent steps never mix) and does
nothing for anyone else's calls through a shared client.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import anthropic
import httpx2

__all__ = ["Attempt", "split", "watching", "with_attempts"]

_watching: ContextVar[list[Attempt] | None] = ContextVar("claudekit_attempts", default=None)


@dataclass
class Attempt:
    response: httpx2.Response
    started_at: datetime
    started: float  # time.perf_counter() when the request went out
    latency_s: float
    request_id: str | None
    error_type: str | None  # the API's error type ("rate_limit_error"), or None for a success

    @property
    def status(self) -> str:
        """The usage log's status for a retried attempt, e.g. ``overloaded_error (retried)``."""
        return f"{self.error_type or f'http {self.response.status_code}'} (retried)"


class _AttemptLog(anthropic.Middleware):
    async def handle_async(self, request: anthropic.APIRequest, call_next: Any) -> Any:
        attempts = _watching.get()
        if attempts is None:
            return await call_next(request)
        started, started_at = time.perf_counter(), datetime.now(timezone.utc)
        response = await call_next(request)  # connection failures raise: there is no response to log
        http = response.http_response
        error_type: str | None = None
        if http.status_code >= 400:
            # Error bodies are small JSON; the SDK reads the same cached bytes afterwards.
            with contextlib.suppress(Exception):
                await http.aread()
                error_type = str(http.json()["error"]["type"])
        attempts.append(
            Attempt(
                response=http,
                started_at=started_at,
                started=started,
                latency_s=time.perf_counter() - started,
                request_id=http.headers.get("request-id"),
                error_type=error_type,
            )
        )
        return response


_MIDDLEWARE = _AttemptLog()
# A client passed in by the user is wrapped once (the SDK's with_middleware makes a copy that shares its
# HTTP client), however many chats use it.
_wrapped: weakref.WeakKeyDictionary[anthropic.AsyncAnthropic, anthropic.AsyncAnthropic] = (
    weakref.WeakKeyDictionary()
)


def with_attempts(sdk: anthropic.AsyncAnthropic) -> anthropic.AsyncAnthropic:
    """``sdk`` itself if it already logs attempts, else a copy of it (same HTTP client) that does."""
    if _MIDDLEWARE in sdk.middleware:
        return sdk
    copy = _wrapped.get(sdk)
    if copy is None:
        copy = _wrapped[sdk] = sdk.with_middleware(_MIDDLEWARE)
    return copy


@contextlib.contextmanager
def watching(attempts: list[Attempt]) -> Iterator[list[Attempt]]:
    """Collect the attempts made inside the block (one ``messages.create``, no yield inside)."""
    token = _watching.set(attempts)
    try:
        yield attempts
    finally:
        _watching.reset(token)


def split(attempts: list[Attempt], final: httpx2.Response | None) -> tuple[list[Attempt], Attempt | None]:
    """The attempts the SDK retried, and the one that produced ``final`` (the response claudekit went
    on with, if any: its start is the call's start, so latency excludes the retries)."""
    return [a for a in attempts if a.response is not final], next(
        (a for a in attempts if a.response is final), None
    )
