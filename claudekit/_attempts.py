"""HTTP attempts the SDK retried, so that the usage log has one record per call that got a response.

The SDK retries 408/409/429/5xx inside one ``messages.create``; claudekit sees only the last response.
A request hook and a response hook on the SDK client's HTTP client note every attempt while a
claudekit step is watching (a context variable); outside claudekit's own calls they do nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx2

__all__ = ["Attempt", "install", "split", "watching"]

_watching: ContextVar[list[Attempt] | None] = ContextVar("claudekit_attempts", default=None)
_STARTED = "claudekit_started"


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


async def _on_request(request: httpx2.Request) -> None:
    if _watching.get() is not None:
        request.extensions[_STARTED] = (time.perf_counter(), datetime.now(timezone.utc))


async def _on_response(response: httpx2.Response) -> None:
    attempts = _watching.get()
    if attempts is None:
        return
    error_type: str | None = None
    if response.status_code >= 400:
        # Error bodies are small JSON; the SDK reads the same cached bytes afterwards.
        with contextlib.suppress(Exception):
            await response.aread()
            error_type = str(response.json()["error"]["type"])
    now = time.perf_counter()
    # Both hooks are installed together, so the request's start is there; the fallback is for safety.
    started, started_at = response.request.extensions.get(_STARTED) or (now, datetime.now(timezone.utc))
    attempts.append(
        Attempt(
            response=response,
            started_at=started_at,
            started=started,
            latency_s=now - started,
            request_id=response.headers.get("request-id"),
            error_type=error_type,
        )
    )


def install(sdk: Any) -> None:
    """Add the hooks to an ``AsyncAnthropic``'s HTTP client (once; harmless on a client shared elsewhere)."""
    http = getattr(sdk, "_client", None)  # the httpx client the SDK sends every attempt through
    hooks = getattr(http, "event_hooks", None)
    if not isinstance(hooks, dict) or _on_response in hooks.get("response", []):
        return
    http.event_hooks = {  # type: ignore[union-attr]
        **hooks,
        "request": [*hooks.get("request", []), _on_request],
        "response": [*hooks.get("response", []), _on_response],
    }


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
