"""claudekit.offline — an offline Messages API backend, plus record and replay.

It speaks the wire protocol only (no Jupyter, nothing of the core: of claudekit it imports only
``claudekit._base``, for the model catalog ``claudekit/models.json``, which is data)::

    from claudekit.offline import OfflineBackend, Script, Turn, ToolCall, make_async_client

    backend = OfflineBackend(responder=Script([Turn(text="hi")]))
    client = make_async_client(backend)          # anthropic.AsyncAnthropic, in process
    with backend.serve() as server:              # or over loopback HTTP
        ...  # anthropic.Anthropic(base_url=server.base_url, api_key="offline")

Inside, ``_wire`` (Call, Reply, Route) is the leaf every part speaks; the transports, the server and the batch
store take a handler callable (the backend is one), never the backend itself, so none imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._backend import OfflineBackend
from ._batches import BatchSettings
from ._cache import CacheUsage, min_cacheable_tokens
from ._cache import build_prompt as _build_prompt
from ._cassette import Cassette, CassetteMiss, RecordingTransport
from ._errors import ApiError
from ._faults import FAULT_HEADER, Fault
from ._ratelimit import RateLimits
from ._responders import DefaultResponder, OfflineRequest, Script, ToolCall, Turn
from ._server import OfflineServer
from ._tokens import count_text
from ._transport import OfflineAsyncTransport, OfflineTransport
from ._validation import KNOWN_MODELS, RULES
from ._wire import Call, Route

__all__ = [
    "FAULT_HEADER",
    "KNOWN_MODELS",
    "OFFLINE_API_KEY",
    "OFFLINE_BASE_URL",
    "RULES",
    "ApiError",
    "BatchSettings",
    "CacheUsage",
    "Call",
    "Cassette",
    "CassetteMiss",
    "DefaultResponder",
    "Fault",
    "OfflineAsyncTransport",
    "OfflineBackend",
    "OfflineRequest",
    "OfflineServer",
    "OfflineTransport",
    "RateLimits",
    "RecordingTransport",
    "Route",
    "Script",
    "ToolCall",
    "Turn",
    "count_text",
    "count_tokens",
    "make_async_client",
    "make_client",
    "min_cacheable_tokens",
]

OFFLINE_API_KEY = "offline"
OFFLINE_BASE_URL = "http://offline.claudekit.invalid"


def count_tokens(request: Mapping[str, Any] | None = None, /, **params: Any) -> int:
    """Input tokens of a Messages request, with the backend's counter (no validation, no cache).

    ``count_tokens({"model": …, "messages": […]})`` or ``count_tokens(messages=[…], system=…)``.
    """
    body = {**(request or {}), **params}
    return _build_prompt(body).total


def make_async_client(backend: OfflineBackend | None = None, **kwargs: Any) -> Any:
    """An ``anthropic.AsyncAnthropic`` wired to ``backend`` in process (dummy key, ``.invalid`` base URL).

    Extra keyword arguments go to ``AsyncAnthropic`` (``max_retries``, ``timeout``, …).
    """
    import anthropic
    import httpx2

    backend = backend or OfflineBackend()
    kwargs.setdefault("api_key", OFFLINE_API_KEY)
    kwargs.setdefault("base_url", OFFLINE_BASE_URL)
    return anthropic.AsyncAnthropic(
        http_client=httpx2.AsyncClient(transport=backend.async_transport()), **kwargs
    )


def make_client(backend: OfflineBackend | None = None, **kwargs: Any) -> Any:
    """The synchronous twin of :func:`make_async_client` (``anthropic.Anthropic``)."""
    import anthropic
    import httpx2

    backend = backend or OfflineBackend()
    kwargs.setdefault("api_key", OFFLINE_API_KEY)
    kwargs.setdefault("base_url", OFFLINE_BASE_URL)
    return anthropic.Anthropic(http_client=httpx2.Client(transport=backend.transport()), **kwargs)
