"""Which SDK client a chat uses: an injected one, the real API, or the offline backend.

The API key is handed to the SDK and never stored on claudekit objects, so it cannot leak through a
repr, a log line or a saved notebook.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anthropic
import httpx2

from .._base._errors import ConfigError, MissingAPIKeyError
from .._base._secrets import remember_client
from ._attempts import with_attempts

__all__ = ["Backend", "ClientHandle", "resolve_client"]

Backend = Literal["auto", "anthropic", "offline"]
_ENV_BACKEND = "CLAUDEKIT_BACKEND"
_announced = False
_shared_offline: Any = None


@dataclass
class ClientHandle:
    client: anthropic.AsyncAnthropic
    owned: bool
    backend: str
    offline: Any = None  # the OfflineBackend when backend == "offline"

    def __post_init__(self) -> None:
        # Every HTTP attempt of claudekit's calls is noted (the usage log's retried records).
        self.client = with_attempts(self.client)
        # The key in use is redacted wherever claudekit writes, whatever its shape (a gateway's key).
        remember_client(self.client)

    async def aclose(self) -> None:
        # Never close a client the caller built and owns.
        if self.owned:
            await self.client.close()


def _announce_offline() -> None:
    global _announced
    if _announced:
        return
    _announced = True
    print(
        "claudekit: no ANTHROPIC_API_KEY is set, so replies come from the offline backend (simulated, free). "
        "Set ANTHROPIC_API_KEY to use Claude.",
        file=sys.stderr,
    )


def resolve_client(
    *,
    client: anthropic.AsyncAnthropic | None,
    backend: str | None,
    api_key: str | None,
    base_url: str | None,
    max_retries: int,
    timeout: float | None,
    connect_timeout: float,
    offline: Any = None,
    cassette: str | os.PathLike[str] | None = None,
    cassette_mode: str | None = None,
) -> ClientHandle:
    backend, offline = _offline_choice(backend, offline)
    if cassette is not None:
        return _cassette_handle(
            cassette,
            cassette_mode,
            backend=backend,
            api_key=api_key,
            base_url=base_url,
            offline=offline,
            max_retries=max_retries,
            timeout=httpx2.Timeout(timeout, connect=connect_timeout),
        )
    if client is not None:
        if not isinstance(client, anthropic.AsyncAnthropic):
            raise ConfigError(
                f"client must be an anthropic.AsyncAnthropic, got {type(client).__name__}",
                hint="build one with anthropic.AsyncAnthropic(...) or leave client unset",
            )
        return ClientHandle(client, owned=False, backend="custom")
    chosen = backend or os.environ.get(_ENV_BACKEND) or "auto"
    if chosen not in ("auto", "anthropic", "offline"):
        raise ConfigError(f"unknown backend {chosen!r}", hint="use 'anthropic', 'offline' or leave it unset")
    key = api_key or os.environ.get("ANTHROPIC_API_KEY") or None
    timeouts = httpx2.Timeout(timeout, connect=connect_timeout)
    if chosen == "offline" or (chosen == "auto" and key is None and offline is None and base_url is None):
        if chosen == "auto":
            _announce_offline()
        return _offline_handle(offline, max_retries=max_retries, timeout=timeouts)
    if offline is not None:
        return _offline_handle(offline, max_retries=max_retries, timeout=timeouts)
    if key is None and base_url is None:
        raise MissingAPIKeyError("no Anthropic API key found")
    sdk = anthropic.AsyncAnthropic(
        api_key=key or "none", base_url=base_url, max_retries=max_retries, timeout=timeouts
    )
    return ClientHandle(sdk, owned=True, backend="anthropic")


def _offline_choice(backend: str | None, offline: Any) -> tuple[str | None, Any]:
    """``offline=True`` means the shared offline backend, ``False`` the real API; else a backend or None."""
    if offline is True:
        if backend not in (None, "offline"):
            raise ConfigError(f"offline=True contradicts backend={backend!r}", hint="pass one of the two")
        return "offline", None
    if offline is False:
        if backend == "offline":
            raise ConfigError("offline=False contradicts backend='offline'", hint="pass one of the two")
        return backend or "anthropic", None
    if offline is not None and not callable(getattr(offline, "async_transport", None)):
        raise ConfigError(
            f"offline must be an OfflineBackend, True or False, got {type(offline).__name__}",
            hint="build one with claudekit.offline.OfflineBackend(...), or pass offline=True",
        )
    return backend, offline


def _cassette_handle(
    path: str | os.PathLike[str],
    mode: str | None,
    *,
    backend: str | None,
    api_key: str | None,
    base_url: str | None,
    offline: Any,
    max_retries: int,
    timeout: httpx2.Timeout,
) -> ClientHandle:
    """Record exchanges into a cassette, or replay them with no key and no network.

    With a key (or an offline backend) the real exchanges are recorded (mode ``once`` by default);
    with neither, an existing cassette is replayed (mode ``none``) and a request it lacks is an error
    naming that request.
    """
    from .. import offline as offline_pkg

    key = api_key or os.environ.get("ANTHROPIC_API_KEY") or None
    use_offline = offline is not None or backend == "offline"
    inner: httpx2.AsyncBaseTransport | None
    if use_offline:
        global _shared_offline
        if offline is None:
            if _shared_offline is None:
                _shared_offline = offline_pkg.OfflineBackend()
            offline = _shared_offline
        inner = offline.async_transport()
        mode = mode or "once"
    elif key is not None:
        inner = httpx2.AsyncHTTPTransport()
        mode = mode or "once"
    else:
        if not os.path.exists(path):
            raise MissingAPIKeyError(
                f"no cassette at {os.fspath(path)!r} to replay, and no API key to record one"
            )
        inner = None
        mode = mode or "none"
        print(f"claudekit: no ANTHROPIC_API_KEY is set; replaying {os.fspath(path)!r}.", file=sys.stderr)
    transport = offline_pkg.RecordingTransport(Path(path), mode=mode, inner=inner)
    sdk = anthropic.AsyncAnthropic(
        api_key=key if key is not None and not use_offline else offline_pkg.OFFLINE_API_KEY,
        base_url=base_url,
        max_retries=max_retries,
        timeout=timeout,
        http_client=httpx2.AsyncClient(transport=transport, timeout=timeout),
    )
    return ClientHandle(sdk, owned=True, backend=f"cassette:{mode}", offline=offline)


def _offline_handle(offline: Any, *, max_retries: int, timeout: httpx2.Timeout) -> ClientHandle:
    from .. import offline as offline_pkg

    global _shared_offline
    if offline is None:
        # One backend per process, like one service: chats share its prompt cache and clock.
        if _shared_offline is None:
            _shared_offline = offline_pkg.OfflineBackend()
        offline = _shared_offline
    sdk = offline_pkg.make_async_client(offline, max_retries=max_retries, timeout=timeout)
    return ClientHandle(sdk, owned=True, backend="offline", offline=offline)
