"""Shared test helpers: the real SDK over an httpx2 transport, and the shared recorded fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
if not SHARED.exists():  # CI clones next to shared/; allow an override too
    SHARED = Path(os.environ.get("CLAUDEKIT_SHARED", "/work/shared"))
SSE_DIR = SHARED / "fixtures" / "anthropic" / "sse"


def sse_transport(
    bodies: list[bytes] | bytes,
    *,
    status: int | list[int] = 200,
    headers: dict[str, str] | None = None,
    seen: list[httpx2.Request] | None = None,
) -> httpx2.MockTransport:
    """A transport that answers successive requests with the given bodies (SSE or JSON)."""
    queue = list(bodies) if isinstance(bodies, list) else [bodies]
    statuses = list(status) if isinstance(status, list) else [status] * len(queue)

    def handler(request: httpx2.Request) -> httpx2.Response:
        if seen is not None:
            seen.append(request)
        body = queue.pop(0) if len(queue) > 1 else queue[0]
        code = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        ctype = "text/event-stream" if body.lstrip().startswith(b"event:") else "application/json"
        h = {"content-type": ctype, "request-id": "req_test_1", **(headers or {})}
        return httpx2.Response(code, content=body, headers=h)

    return httpx2.MockTransport(handler)


def sdk_client(transport: httpx2.AsyncBaseTransport, **kw: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key="sk-test-not-a-real-key",
        http_client=httpx2.AsyncClient(transport=transport),
        **kw,
    )


@pytest.fixture(autouse=True)
def _no_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests see plain events; set per test so nbval's kernels (which inherit our env) still render."""
    monkeypatch.setenv("CLAUDEKIT_RENDER", "0")


@pytest.fixture
def make_client() -> Callable[..., anthropic.AsyncAnthropic]:
    def make(bodies: list[bytes] | bytes, **kw: Any) -> anthropic.AsyncAnthropic:
        seen = kw.pop("seen", None)
        status = kw.pop("status", 200)
        headers = kw.pop("headers", None)
        return sdk_client(sse_transport(bodies, status=status, headers=headers, seen=seen), **kw)

    return make


def client_sockets(port: int) -> int:
    """Open TCP sockets of this process connected to ``port`` (the loopback server), from /proc."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    n = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            remote, inode = cols[2], cols[9]
            if int(remote.rsplit(":", 1)[1], 16) == port and inode in inodes:
                n += 1
    return n


def busy_connections(client: anthropic.AsyncAnthropic) -> int:
    pool = client._client._transport._pool  # type: ignore[attr-defined]
    busy = [c for c in pool.connections if not (c.is_idle() or c.is_closed())]
    return len(busy) + len(pool._requests)
