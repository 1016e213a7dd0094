"""The offline server in a process of its own, writing one line per ``POST /v1/messages`` it answers:
``<unix time> <status> <row key> <requests remaining>`` (the key is the ``row=KEY`` word of the prompt),
so a test counts at the server what was sent, answered and refused, row by row. Each ``POST
/v1/messages/batches`` (a batch create) is a line too: ``<unix time> <status> batch <requests in it>``;
a batch takes 1 s to process (a worker can be killed while its batch runs).

    python tests/dask/counting_server.py COUNT_FILE [REQUESTS_PER_MINUTE]

prints the base URL on its first line. A rate limit starts with every bucket empty at the first request
(the steady state of an organisation that used its minute already), so the measured rate is the limit's,
not a burst's.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from claudekit.offline import BatchSettings, OfflineBackend, OfflineServer, RateLimits

_KEY = re.compile(rb"row=(\w+)")


class Counting:
    def __init__(self, rpm: int, path: str) -> None:
        self.rpm = rpm
        self.backend: OfflineBackend | None = None
        self.out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the server's life
        self.lock = threading.Lock()

    def __call__(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Any:
        with self.lock:
            if self.backend is None:  # made at the first request: the rate limit starts empty then
                limits = RateLimits(requests_per_minute=self.rpm, start_full=False) if self.rpm else None
                self.backend = OfflineBackend(
                    event_delay=0, rate_limits=limits, batches=BatchSettings(processing_seconds=1.0)
                )
        reply = self.backend(method, path, headers, body)
        where = path.split("?")[0].rstrip("/")
        if method == "POST" and where == "/v1/messages/batches":
            with self.lock:
                size = len(json.loads(body).get("requests", []))
                self.out.write(f"{time.time():.6f} {reply.status} batch {size}\n")
                self.out.flush()
        if method == "POST" and where == "/v1/messages":
            key = _KEY.search(body)
            word = key.group(1).decode() if key else "-"
            left = dict(reply.headers).get("anthropic-ratelimit-requests-remaining", "-")
            with self.lock:
                self.out.write(f"{time.time():.6f} {reply.status} {word} {left}\n")
                self.out.flush()
        return reply


def main() -> None:
    path = sys.argv[1]
    rpm = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    server = OfflineServer(Counting(rpm, path), port=0)
    print(server.base_url, flush=True)
    server.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
