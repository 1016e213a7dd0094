"""Fault injection: HTTP errors, stream errors, cuts, stalls and malformed streams.

A fault comes from a :class:`~claudekit.offline.Script` entry, from a ``Turn(fault=…)``
or from the request header ``x-claudekit-fault`` (``Fault.to_header()`` /
``Fault.parse()``), so it works the same in process and over the loopback server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._errors import ERROR_TYPES

__all__ = ["FAULT_HEADER", "Fault"]

FAULT_HEADER = "x-claudekit-fault"

_KINDS = (
    "status",
    "error_event",
    "cut",
    "stall",
    "truncated_tool_json",
    "malformed_json",
    "unknown_block",
)


@dataclass(frozen=True)
class Fault:
    """One injected failure. Build with the class methods, e.g. ``Fault.status(429, retry_after=0)``."""

    kind: str
    status_code: int = 0
    retry_after: float | None = None
    error_type: str | None = None
    message: str | None = None
    should_retry: bool | None = None
    after_events: int = 0
    after_bytes: int = 0
    seconds: float = 0.0
    block_type: str = "mystery_block"
    extra: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(_KINDS)}")

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: float | None = None,
        error_type: str | None = None,
        message: str | None = None,
        should_retry: bool | None = None,
    ) -> Fault:
        """An HTTP error response (429 rate_limit_error, 500 api_error, 529 overloaded_error, …)."""
        return cls(
            "status",
            status_code=code,
            retry_after=retry_after,
            error_type=error_type,
            message=message,
            should_retry=should_retry,
        )

    @classmethod
    def error_event(
        cls, *, after_events: int = 3, error_type: str = "overloaded_error", message: str | None = None
    ) -> Fault:
        """An ``event: error`` after ``after_events`` events of a 200 stream, then the stream ends."""
        return cls("error_event", after_events=after_events, error_type=error_type, message=message)

    @classmethod
    def cut(cls, *, after_bytes: int) -> Fault:
        """Close the connection after ``after_bytes`` bytes of the body."""
        return cls("cut", after_bytes=after_bytes)

    @classmethod
    def stall(cls, seconds: float, *, after_events: int = 0) -> Fault:
        """Send nothing for ``seconds`` after ``after_events`` events (before the headers when 0)."""
        return cls("stall", seconds=seconds, after_events=after_events)

    @classmethod
    def truncated_tool_json(cls) -> Fault:
        """Tool arguments stop mid-JSON, but the stream ends normally."""
        return cls("truncated_tool_json")

    @classmethod
    def malformed_json(cls, *, after_events: int = 2) -> Fault:
        """Replace the data of event number ``after_events`` with invalid JSON."""
        return cls("malformed_json", after_events=after_events)

    @classmethod
    def unknown_block(cls, block_type: str = "mystery_block") -> Fault:
        """Insert a content block of a type no client knows before the real content."""
        return cls("unknown_block", block_type=block_type)

    # -- derived ------------------------------------------------------------------------------
    @property
    def resolved_error_type(self) -> str:
        if self.error_type:
            return self.error_type
        return ERROR_TYPES.get(
            self.status_code, "api_error" if self.status_code >= 500 else "invalid_request_error"
        )

    @property
    def resolved_message(self) -> str:
        if self.message:
            return self.message
        return {
            "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit "
            "(offline fault).",
            "overloaded_error": "Overloaded",
            "api_error": "Internal server error",
        }.get(self.resolved_error_type, f"Injected {self.resolved_error_type} (offline fault)")

    # -- header form --------------------------------------------------------------------------
    def to_header(self) -> str:
        """``kind:key=value,…`` — the value for the ``x-claudekit-fault`` request header."""
        params: dict[str, Any] = {}
        if self.kind == "status":
            params["code"] = self.status_code
            if self.retry_after is not None:
                params["retry_after"] = self.retry_after
            if self.should_retry is not None:
                params["should_retry"] = str(self.should_retry).lower()
        if self.kind in ("error_event", "malformed_json") or (self.kind == "stall" and self.after_events):
            params["after_events"] = self.after_events
        if self.kind in ("status", "error_event") and self.error_type:
            params["error_type"] = self.error_type
        if self.kind == "cut":
            params["after_bytes"] = self.after_bytes
        if self.kind == "stall":
            params["seconds"] = self.seconds
        if self.kind == "unknown_block":
            params["block_type"] = self.block_type
        if not params:
            return self.kind
        return self.kind + ":" + ",".join(f"{k}={v}" for k, v in params.items())

    @classmethod
    def parse(cls, header: str) -> Fault:
        """Inverse of :meth:`to_header`; raises ``ValueError`` on anything else."""
        kind, _, rest = header.strip().partition(":")
        kv: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = part.partition("=")
            if not eq:
                raise ValueError(f"bad fault parameter {part!r} in {header!r}")
            kv[key.strip()] = value.strip()

        def num(key: str, default: float) -> float:
            return float(kv[key]) if key in kv else default

        kind = kind.strip()
        if kind == "status":
            sr = kv.get("should_retry")
            return cls.status(
                int(num("code", 500)),
                retry_after=float(kv["retry_after"]) if "retry_after" in kv else None,
                error_type=kv.get("error_type"),
                should_retry=None if sr is None else sr == "true",
            )
        if kind == "error_event":
            return cls.error_event(
                after_events=int(num("after_events", 3)), error_type=kv.get("error_type", "overloaded_error")
            )
        if kind == "cut":
            return cls.cut(after_bytes=int(num("after_bytes", 0)))
        if kind == "stall":
            return cls.stall(num("seconds", 1.0), after_events=int(num("after_events", 0)))
        if kind == "truncated_tool_json":
            return cls.truncated_tool_json()
        if kind == "malformed_json":
            return cls.malformed_json(after_events=int(num("after_events", 2)))
        if kind == "unknown_block":
            return cls.unknown_block(kv.get("block_type", "mystery_block"))
        raise ValueError(f"unknown fault kind {kind!r} in {header!r}")
