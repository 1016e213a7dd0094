"""In-process httpx2 transports (async and sync) over a handler callable, e.g. an :class:`OfflineBackend`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2

from ._wire import Action, Cut, Handler, Reply, Sleep, Stall

__all__ = ["OfflineAsyncTransport", "OfflineTransport"]

_CUT_MESSAGE = "peer closed connection without sending complete message body (offline fault: cut)"


def _read_timeout(request: httpx2.Request) -> float | None:
    timeout: Any = request.extensions.get("timeout") or {}
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if value is not None else None


def _split_head(reply: Reply) -> tuple[list[Action], list[Action]]:
    """Actions before the status line (stalls/sleeps) and the body's actions."""
    actions = list(reply.actions)
    head: list[Action] = []
    while actions and isinstance(actions[0], (Sleep, Stall)):
        head.append(actions.pop(0))
    return head, actions


def _headers(request: httpx2.Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


class _AsyncBody(httpx2.AsyncByteStream):
    def __init__(self, actions: list[Action], request: httpx2.Request) -> None:
        self._actions = actions
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        timeout = _read_timeout(self._request)
        for action in self._actions:
            if isinstance(action, bytes):
                if action:
                    yield action
            else:
                await _async_wait(action, timeout, self._request)


async def _async_wait(action: Action, timeout: float | None, request: httpx2.Request) -> None:
    if isinstance(action, Sleep):
        await asyncio.sleep(action.seconds)
    elif isinstance(action, Stall):
        # No socket here, so enforce the client's read timeout the way the network layer would.
        if timeout is not None and action.seconds > timeout:
            await asyncio.sleep(timeout)
            raise httpx2.ReadTimeout("The read operation timed out (offline fault: stall)", request=request)
        await asyncio.sleep(action.seconds)
    elif isinstance(action, Cut):
        raise httpx2.RemoteProtocolError(_CUT_MESSAGE, request=request)


class OfflineAsyncTransport(httpx2.AsyncBaseTransport):
    """``httpx2.AsyncClient(transport=backend.async_transport())``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        reply = self.handler(request.method, request.url.raw_path.decode(), _headers(request), body)
        head, rest = _split_head(reply)
        timeout = _read_timeout(request)
        for action in head:
            await _async_wait(action, timeout, request)
        if rest and isinstance(rest[0], Cut):
            raise httpx2.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx2.Response(
            reply.status, headers=reply.headers, stream=_AsyncBody(rest, request), request=request
        )


class _SyncBody(httpx2.SyncByteStream):
    def __init__(self, actions: list[Action], request: httpx2.Request) -> None:
        self._actions = actions
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        timeout = _read_timeout(self._request)
        for action in self._actions:
            if isinstance(action, bytes):
                if action:
                    yield action
            else:
                _sync_wait(action, timeout, self._request)


def _sync_wait(action: Action, timeout: float | None, request: httpx2.Request) -> None:
    if isinstance(action, Sleep):
        time.sleep(action.seconds)
    elif isinstance(action, Stall):
        if timeout is not None and action.seconds > timeout:
            time.sleep(timeout)
            raise httpx2.ReadTimeout("The read operation timed out (offline fault: stall)", request=request)
        time.sleep(action.seconds)
    elif isinstance(action, Cut):
        raise httpx2.RemoteProtocolError(_CUT_MESSAGE, request=request)


class OfflineTransport(httpx2.BaseTransport):
    """``httpx2.Client(transport=backend.transport())`` — the synchronous twin."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        reply = self.handler(request.method, request.url.raw_path.decode(), _headers(request), body)
        head, rest = _split_head(reply)
        timeout = _read_timeout(request)
        for action in head:
            _sync_wait(action, timeout, request)
        if rest and isinstance(rest[0], Cut):
            raise httpx2.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx2.Response(
            reply.status, headers=reply.headers, stream=_SyncBody(rest, request), request=request
        )
