"""The loopback HTTP server: stdlib ``http.server`` on a bounded pool of worker threads.

Hardened like a service front end, so a burst of clients or a bad one does not take it down: a listen backlog
of 1024 (socketserver's default of 5 resets a burst of 64 connections), at most ``workers`` connections served
at once (the rest wait, accepted, in the pool's queue), an idle timeout per read and a deadline for a whole
request (slowloris), and 400 / 408 / 413 for a bad, short or too-long ``Content-Length``.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any

from ._errors import error_body
from ._wire import Cut, Handler, Sleep, Stall

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["MAX_BODY_BYTES", "OfflineServer"]

MAX_BODY_BYTES = 32 * 2**20  # the Messages API's request size limit (32 MB): larger is 413
_WORKERS = 256  # idle keep-alive connections hold a worker until the idle timeout
_BACKLOG = 1024
_IDLE_TIMEOUT = 20.0  # seconds a connection may send nothing
_REQUEST_TIMEOUT = 60.0  # seconds for a whole request (line, headers, body) once it starts
# How often the serving thread looks for a close(): socketserver's default (0.5 s) made every close(),
# so every `with backend.serve():`, wait half a second.
_CLOSE_POLL_S = 0.05


class _RequestTimeout(TimeoutError):
    """The request's deadline passed while it was still being read."""


class _DeadlineReader(io.RawIOBase):
    """The socket's bytes, refused once the handler's deadline has passed (a slow sender is cut off even when
    every single read comes in under the idle timeout)."""

    def __init__(self, sock: socket.socket, handler: _Handler) -> None:
        self._sock = sock
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._handler.deadline - time.monotonic()
        if left <= 0:
            raise _RequestTimeout("request deadline passed")
        self._sock.settimeout(min(self._handler.idle_timeout, left))
        return self._sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "claudekit-offline"
    sys_version = ""
    handler: Handler
    verbose = False
    idle_timeout = _IDLE_TIMEOUT
    request_timeout = _REQUEST_TIMEOUT
    deadline = 0.0

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle plus delayed ACKs
        # add ~40 ms to every response and hold back stream events.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))

    def handle_one_request(self) -> None:
        # The idle wait for the next request counts against its deadline too.
        self.deadline = time.monotonic() + self.idle_timeout + self.request_timeout
        try:
            super().handle_one_request()
        except (TimeoutError, ConnectionError):
            self.close_connection = True

    def do_OPTIONS(self) -> None:
        self._serve()

    def _error(self, status: int, error_type: str, message: str) -> None:
        """Answer a request that never reached the backend, and close the connection."""
        data = json.dumps(error_body(error_type, message, "req_offline_transport")).encode()
        self.close_connection = True
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            pass

    def _read_body(self) -> bytes | None:
        """The body, or ``None`` after answering a bad ``Content-Length`` or a body that never arrives."""
        raw = (self.headers.get("content-length") or "0").strip()
        if not raw.isdigit():
            self._error(400, "invalid_request_error", f"Content-Length: {raw!r} is not a number of bytes")
            return None
        length = int(raw)
        if length > MAX_BODY_BYTES:
            self._error(
                413,
                "request_too_large",
                f"Request exceeds the maximum allowed number of bytes ({MAX_BODY_BYTES})",
            )
            return None
        try:
            body = self.rfile.read(length) if length else b""
        except (TimeoutError, _RequestTimeout):
            body = b""
        if len(body) < length:
            self._error(408, "timeout_error", f"the request body ended after {len(body)} of {length} bytes")
            return None
        return body

    def log_message(self, format: str, *args: Any) -> None:
        if self.verbose:
            super().log_message(format, *args)

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.handler(self.command, self.path, headers, body)
        actions = list(reply.actions)
        while actions and isinstance(actions[0], (Sleep, Stall)):
            first = actions.pop(0)
            assert isinstance(first, (Sleep, Stall))
            time.sleep(first.seconds)
        if actions and isinstance(actions[0], Cut):
            self._cut()
            return
        self.send_response(reply.status)
        for key, value in reply.headers:
            self.send_header(key, value)
        if reply.streaming:
            self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for action in actions:
                if isinstance(action, bytes):
                    if not action:
                        continue
                    if reply.streaming:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(action), action))
                    else:
                        self.wfile.write(action)
                    self.wfile.flush()
                elif isinstance(action, (Sleep, Stall)):
                    time.sleep(action.seconds)
                elif isinstance(action, Cut):
                    self._cut()
                    return
            if reply.streaming:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _cut(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_POST = _serve
    do_GET = _serve
    do_PUT = _serve
    do_DELETE = _serve


class _Server(HTTPServer):
    """Connections are served by a bounded pool of threads; accepted ones wait in its queue."""

    allow_reuse_address = True
    request_queue_size = _BACKLOG
    workers = _WORKERS

    def server_activate(self) -> None:
        super().server_activate()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="claudekit-offline")
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        self._pool.submit(self._work, request, client_address)

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        # Wake the workers blocked on keep-alive connections, so closing (and the interpreter's exit,
        # which joins the pool's threads) does not wait for their idle timeout.
        with self._open_lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._pool.shutdown(wait=False, cancel_futures=True)


class OfflineServer:
    """A running loopback server; use ``base_url`` as the SDK's ``base_url``. Close it or use ``with``."""

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        verbose: bool = False,
        workers: int = _WORKERS,
        idle_timeout: float = _IDLE_TIMEOUT,
        request_timeout: float = _REQUEST_TIMEOUT,
    ) -> None:
        settings = {
            "handler": staticmethod(handler),
            "verbose": verbose,
            "idle_timeout": idle_timeout,
            "request_timeout": request_timeout,
        }
        request_handler = type("Handler", (_Handler,), settings)
        server = type("Server", (_Server,), {"workers": workers})
        self._httpd = server((host, port), request_handler)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        # What it serves: an OfflineBackend (itself a Handler) or any other handler callable.
        self.backend = handler
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> OfflineServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(_CLOSE_POLL_S,), name="claudekit-offline", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> OfflineServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
