"""The offline API's wire types: a request as a route sees it, a reply as chunks and actions, a route.

A leaf: the backend, the batch store, the transports and the server all speak these and nothing else
of each other. A :data:`Handler` answers one HTTP request (as the callable in httpx's
``MockTransport(handler)`` does); :class:`~claudekit.offline.OfflineBackend` is one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from ._errors import ApiError

__all__ = ["Action", "Call", "Cut", "Handler", "Reply", "Route", "Sleep", "Stall", "b62", "json_reply"]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def b62(data: bytes, n: int) -> str:
    num = int.from_bytes(data, "big")
    out = []
    for _ in range(n):
        num, r = divmod(num, 62)
        out.append(_B62[r])
    return "".join(out)


@dataclass(frozen=True)
class Sleep:
    """Pause between chunks (pacing)."""

    seconds: float


@dataclass(frozen=True)
class Stall:
    """A stall fault: nothing arrives for ``seconds`` (clients with a shorter read timeout give up)."""

    seconds: float


@dataclass(frozen=True)
class Cut:
    """Close the connection here, before the body is complete."""


Action = bytes | Sleep | Stall | Cut


@dataclass
class Reply:
    """A response: status, headers, and the body as a list of chunks and control actions."""

    status: int
    headers: list[tuple[str, str]]
    actions: list[Action] = field(default_factory=list)
    streaming: bool = False
    usage: Mapping[str, Any] | None = None  # of an answered /v1/messages request (for rate limits)

    @property
    def body(self) -> bytes:
        return b"".join(a for a in self.actions if isinstance(a, bytes))


@dataclass(frozen=True)
class Call:
    """One HTTP request as a route handler sees it (header names lower-case)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    params: Mapping[str, str]
    msg_id: str
    req_id: str

    def json(self) -> Any:
        """The body parsed as JSON, or the API's 400 for a body that is not JSON text."""
        try:
            parsed = json.loads(self.body or b"null")
            lone = _has_lone_surrogate(parsed)
        except ValueError as exc:
            raise ApiError(400, f"There was an issue with the JSON body: {exc}") from None
        except RecursionError:
            # 100k nested arrays: Python's parser gives up (the service answers 400 as well).
            raise ApiError(400, "There was an issue with the JSON body: it is nested too deeply") from None
        if lone:
            # Valid JSON (a "\ud800" escape) that is not valid Unicode text.
            raise ApiError(400, "There was an issue with the JSON body: invalid Unicode (lone surrogate)")
        return parsed


@dataclass(frozen=True)
class Route:
    """``method`` plus a path template (``/v1/models/{model_id}``) and the handler that answers it."""

    method: str
    template: str
    handler: Callable[[Call], Reply]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The template's parameters when ``method`` and ``path`` are this route's, else ``None``."""
        want, got = self.template.strip("/").split("/"), path.strip("/").split("/")
        if method != self.method or len(want) != len(got):
            return None
        params: dict[str, str] = {}
        for part, value in zip(want, got, strict=True):
            if part.startswith("{") and part.endswith("}"):
                params[part[1:-1]] = unquote(value)
            elif part != value:
                return None
        return params


Handler = Callable[[str, str, Mapping[str, str], bytes], Reply]
"""Answers one HTTP request: ``(method, path with query, headers with lower-case names, body)``."""


def json_reply(status: int, payload: Mapping[str, Any], req_id: str) -> Reply:
    data = json.dumps(payload, ensure_ascii=False).encode()
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(data))),
        ("request-id", req_id),
    ]
    return Reply(status, headers, [data])


def _has_lone_surrogate(value: Any) -> bool:
    # Iterative: JSON that the parser accepts is never refused for its depth here.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
