"""``python -m claudekit.offline --port 8765``: serve the offline Messages API on loopback."""

from __future__ import annotations

import argparse
import sys

from ._backend import OfflineBackend
from ._batches import BatchSettings
from ._ratelimit import RateLimits
from ._server import OfflineServer

# --help is read in a terminal: plain words, not the docstring's reStructuredText.
_DESCRIPTION = (
    "Serve the offline Messages API on 127.0.0.1 (the Anthropic SDK, curl or any client: base_url "
    "http://127.0.0.1:PORT, any API key). Replies are simulated: no key, no network, no cost."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m claudekit.offline", description=_DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument(
        "--event-delay",
        type=float,
        default=0.01,
        help="seconds between stream events, so streaming is visible (default 0.01)",
    )
    parser.add_argument(
        "--today",
        default=None,
        help="the backend's date, YYYY-MM-DD (decides which models are retired; default: today)",
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        default=BatchSettings.processing_seconds,
        help="how long a message batch takes to process (default %(default)s)",
    )
    parser.add_argument(
        "--batch-create-seconds",
        type=float,
        default=0.0,
        help="delay each batch create's answer (the batch is made first) by this long (default 0)",
    )
    parser.add_argument(
        "--requests-per-minute",
        type=int,
        default=None,
        help="enforce this rate limit on /v1/messages, with 429 and retry-after (default: none)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=20.0,
        help="seconds a connection may send nothing before it is closed (default %(default)s)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=60.0,
        help="seconds a started request may take to arrive in full; slower is 408 (default %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    limits = RateLimits(requests_per_minute=args.requests_per_minute) if args.requests_per_minute else None
    backend = OfflineBackend(
        event_delay=args.event_delay,
        today=args.today,
        rate_limits=limits,
        batches=BatchSettings(
            processing_seconds=args.batch_seconds, create_seconds=args.batch_create_seconds
        ),
    )
    server = OfflineServer(
        backend,
        args.host,
        args.port,
        verbose=args.verbose,
        idle_timeout=args.idle_timeout,
        request_timeout=args.request_timeout,
    )
    print(f"claudekit offline Messages API on {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
