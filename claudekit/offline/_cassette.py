"""Record real Messages API exchanges into a JSON-lines cassette and replay them offline.

Modes follow vcrpy: ``once`` (record when the file does not exist, else replay only),
``new_episodes`` (replay what matches, record the rest), ``none`` (replay only) and
``all`` (always record, never replay). Requests match on method, path and the
canonical JSON body (plus the ``x-claudekit-fault`` header); identical requests replay
their recordings in order and then repeat the last one. Secrets never reach the file:
auth headers and any header named like a key/token/secret are dropped, the key a request
carries is remembered, and everything written goes through claudekit's one redaction
function (:func:`claudekit._base._secrets.scrub`, the store's): that key whatever its shape (a
gateway's key too), key-shaped values and bearer tokens become ``[redacted]``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2

from .._base._secrets import add_secret, scrub
from ._faults import FAULT_HEADER

__all__ = ["Cassette", "CassetteMiss", "RecordingTransport", "scrub"]

MODES = ("once", "new_episodes", "none", "all")
_SECRET_HEADER = re.compile(r"(key|token|secret|auth|cookie|session|password)", re.IGNORECASE)
_HOP_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "content-encoding", "connection", "keep-alive"}
)


def _remember_keys(headers: httpx2.Headers) -> None:
    """The key this request sends is the key in use: redact it wherever it appears, whatever its shape."""
    add_secret(headers.get("x-api-key"))
    auth = headers.get("authorization") or ""
    add_secret(auth.split(None, 1)[1] if " " in auth else auth)


def _safe_headers(headers: httpx2.Headers) -> dict[str, str]:
    return {
        k.lower(): scrub(v)
        for k, v in headers.items()
        if not _SECRET_HEADER.search(k) and k.lower() not in _HOP_HEADERS
    }


def request_key(method: str, path: str, body: bytes, fault: str | None = None) -> str:
    """The normalised request: method, path without query, canonical JSON body, fault header."""
    try:
        norm: Any = json.loads(body) if body else None
        text = json.dumps(norm, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        text = body.decode("utf-8", "replace")
    text = scrub(text)
    raw = "\n".join([method.upper(), path.split("?", 1)[0].rstrip("/"), text, fault or ""])
    return hashlib.sha256(raw.encode()).hexdigest()


class CassetteMiss(LookupError):
    """No recorded exchange matches the request (and the mode forbids recording)."""


class Cassette:
    """A JSON-lines file of exchanges: request (method, path, body, safe headers) and response."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: list[dict[str, Any]] = []
        self._played: dict[str, int] = {}
        self._lock = threading.Lock()
        if self.path.exists():
            with self.path.open(encoding="utf-8") as fh:
                self.entries = [json.loads(line) for line in fh if line.strip()]
        # Like vcrpy, only exchanges loaded from disk are replayed; ones recorded now are not.
        self._loaded = len(self.entries)

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def find(self, key: str) -> dict[str, Any] | None:
        """The next recording for ``key`` (in order, then the last one again)."""
        with self._lock:
            matches = [e for e in self.entries[: self._loaded] if e.get("key") == key]
            if not matches:
                return None
            n = self._played.get(key, 0)
            self._played[key] = n + 1
            return matches[min(n, len(matches) - 1)]

    def add(self, entry: dict[str, Any]) -> None:
        line = scrub(json.dumps(entry, ensure_ascii=False))
        with self._lock:
            self.entries.append(json.loads(line))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def reset(self) -> None:
        """Forget every recording (``all`` mode starts from an empty file)."""
        with self._lock:
            self.entries = []
            self._played = {}
            self._loaded = 0
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("", encoding="utf-8")


def _describe(request: httpx2.Request, body: bytes) -> str:
    summary = ""
    try:
        parsed = json.loads(body) if body else {}
        if isinstance(parsed, dict):
            msgs = parsed.get("messages") or []
            last = msgs[-1] if msgs else {}
            content = last.get("content") if isinstance(last, dict) else None
            if isinstance(content, list):
                content = " ".join(
                    str(b.get("text", b.get("type", ""))) for b in content if isinstance(b, dict)
                )
            summary = f" model={parsed.get('model')!r} messages={len(msgs)} last={str(content)[:80]!r}"
    except ValueError:
        pass
    return f"{request.method} {request.url.path}{summary}"


class _ReplayStream(httpx2.AsyncByteStream):
    def __init__(self, body: bytes, truncated: bool, request: httpx2.Request) -> None:
        self._body = body
        self._truncated = truncated
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # Replay SSE event by event so consumers still see a stream.
        parts = self._body.split(b"\n\n")
        for i, part in enumerate(parts):
            chunk = part + (b"\n\n" if i < len(parts) - 1 else b"")
            if chunk:
                yield chunk
        if self._truncated:
            raise httpx2.RemoteProtocolError(
                "peer closed connection (replayed from cassette)", request=self._request
            )


class _TeeStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.Response, on_done: Any) -> None:
        self._inner = inner
        self._on_done = on_done
        self._buf = bytearray()
        self._finished = False

    def _finish(self, truncated: bool) -> None:
        if not self._finished:
            self._finished = True
            self._on_done(bytes(self._buf), truncated)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner.aiter_raw():
                self._buf.extend(chunk)
                yield chunk
        except httpx2.TransportError:
            self._finish(True)
            raise
        self._finish(False)

    async def aclose(self) -> None:
        # Clients close error responses (e.g. a 429 before a retry) without reading them:
        # read the rest so the exchange is still recorded.
        if not self._finished:
            try:
                async for chunk in self._inner.aiter_raw():
                    self._buf.extend(chunk)
                self._finish(False)
            except (httpx2.TransportError, httpx2.StreamConsumed):
                self._finish(True)
        await self._inner.aclose()


class RecordingTransport(httpx2.AsyncBaseTransport):
    """Wraps an inner async transport: records exchanges into ``cassette`` or replays them.

    ``RecordingTransport("session.jsonl", mode="once", inner=httpx2.AsyncHTTPTransport())``
    """

    def __init__(
        self,
        cassette: Cassette | str | Path,
        *,
        mode: str = "once",
        inner: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.cassette = cassette if isinstance(cassette, Cassette) else Cassette(cassette)
        self.mode = mode
        self._inner = inner
        # "once" records only when there was no cassette when we started.
        self._may_record = mode in ("new_episodes", "all") or (mode == "once" and not self.cassette.exists)
        if mode == "all":
            self.cassette.reset()

    @property
    def inner(self) -> httpx2.AsyncBaseTransport:
        if self._inner is None:
            self._inner = httpx2.AsyncHTTPTransport()
        return self._inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        _remember_keys(request.headers)
        key = request_key(request.method, request.url.path, body, request.headers.get(FAULT_HEADER))
        if self.mode != "all":
            entry = self.cassette.find(key)
            if entry is not None:
                return self._replay(entry, request)
        if not self._may_record:
            raise CassetteMiss(
                f"no recorded exchange in {self.cassette.path} matches {_describe(request, body)} "
                f"(mode={self.mode!r}; record with mode='new_episodes' or 'all')"
            )
        response = await self.inner.handle_async_request(request)
        req_part = {
            "method": request.method,
            "path": request.url.path,
            "headers": _safe_headers(request.headers),
            "body": _json_or_text(body),
        }

        def done(data: bytes, truncated: bool) -> None:
            self.cassette.add(
                {
                    "key": key,
                    "request": req_part,
                    "response": {
                        "status": response.status_code,
                        "headers": _safe_headers(response.headers),
                        "body": data.decode("utf-8", "replace"),
                        "truncated": truncated,
                    },
                }
            )

        return httpx2.Response(
            response.status_code,
            headers=[(k, v) for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS],
            stream=_TeeStream(response, done),
            request=request,
            extensions=response.extensions,
        )

    @staticmethod
    def _replay(entry: dict[str, Any], request: httpx2.Request) -> httpx2.Response:
        resp = entry["response"]
        data = str(resp.get("body", "")).encode()
        return httpx2.Response(
            int(resp["status"]),
            headers=list(resp.get("headers", {}).items()),
            stream=_ReplayStream(data, bool(resp.get("truncated")), request),
            request=request,
        )

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body.decode("utf-8", "replace")
