"""The loopback HTTP server (stdlib ``http.server`` with one thread per connection)."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from ._backend import Cut, Sleep, Stall

if TYPE_CHECKING:
    from types import TracebackType

    from ._backend import OfflineBackend

__all__ = ["OfflineServer"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "claudekit-offline"
    sys_version = ""
    backend: OfflineBackend
    verbose = False

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle plus delayed ACKs
        # add ~40 ms to every response and hold back stream events.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        if self.verbose:
            super().log_message(format, *args)

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.backend.handle(self.command, self.path, headers, body)
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class OfflineServer:
    """A running loopback server; use ``base_url`` as the SDK's ``base_url``. Close it or use ``with``."""

    def __init__(
        self, backend: OfflineBackend, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False
    ) -> None:
        handler = type("Handler", (_Handler,), {"backend": backend, "verbose": verbose})
        self._httpd = _Server((host, port), handler)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self.backend = backend
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> OfflineServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="claudekit-offline", daemon=True
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
