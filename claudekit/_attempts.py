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

__all__ = ["Attempt", "install", "watching"]

_watching: ContextVar[list[Attempt] | None] = ContextVar("claudekit_attempts", default=None)
_STARTED = "claudekit_started"


@dataclass
class Attempt:
    response: httpx2.Response
    started_at: datetime
    started: float | None  # time.perf_counter() when the request went out
    latency_s: float | None
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
    started = response.request.extensions.get(_STARTED)
    error_type: str | None = None
    if response.status_code >= 400:
        # Error bodies are small JSON; the SDK reads the same cached bytes afterwards.
        with contextlib.suppress(Exception):
            await response.aread()
            error_type = str(response.json()["error"]["type"])
    attempts.append(
        Attempt(
            response=response,
            started_at=started[1] if started else datetime.now(timezone.utc),
            started=started[0] if started else None,
            latency_s=time.perf_counter() - started[0] if started else None,
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


def retried(attempts: list[Attempt], final: httpx2.Response | None) -> list[Attempt]:
    """The attempts that came before ``final`` (the response claudekit went on with, if any)."""
    return [a for a in attempts if a.response is not final]


def final_attempt(attempts: list[Attempt], final: httpx2.Response | None) -> Attempt | None:
    """The attempt that produced ``final``: its start is the call's start (latency excludes retries)."""
    return next((a for a in attempts if a.response is final and a.started is not None), None)
