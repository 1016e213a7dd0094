"""Fixtures for the DataFrame jobs: offline backends reached through real HTTP code paths."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from claudekit.offline import OfflineBackend, OfflineRequest, OfflineServer, Turn
from claudekit.offline._responders import DefaultResponder

MODEL = "claude-sonnet-4-6"
_ID = re.compile(r"\bid=(\S+)")


class EchoResponder:
    """Answers ``answer for <id>`` for a prompt containing ``id=<id>`` (structured output as usual);
    counts what it was asked, and can fail or stall chosen requests."""

    def __init__(self) -> None:
        self.default = DefaultResponder()
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, request: OfflineRequest) -> Any:
        prompt = request.last_user_text
        match = _ID.search(prompt)
        with self.lock:
            self.seen.append(match.group(1) if match else prompt)
        if request.output_schema is not None:
            return self.default(request)
        return Turn(text=f"answer for {match.group(1) if match else '?'}")


@pytest.fixture
def echo() -> EchoResponder:
    return EchoResponder()


@pytest.fixture
def backend(echo: EchoResponder) -> OfflineBackend:
    return OfflineBackend(responder=echo, signing_key=b"test-key")


@pytest.fixture
def server(backend: OfflineBackend) -> Iterator[OfflineServer]:
    with backend.serve() as srv:
        yield srv


def messages_sent(backend: OfflineBackend) -> int:
    """POST /v1/messages requests the backend received (counted at the backend, not by the client)."""
    return sum(1 for method, path in backend.http_log if method == "POST" and path == "/v1/messages")


def calls(backend: OfflineBackend, method: str, path_prefix: str) -> int:
    return sum(1 for m, p in backend.http_log if m == method and p.startswith(path_prefix))
