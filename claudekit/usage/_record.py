"""One usage record per HTTP call that produced a response (or failed trying)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any

from ._prices import ModelPrice, Prices, get_prices, warn_unknown

__all__ = ["MAX_TOKENS", "MISS_REASON_TEXT", "UsageRecord", "cost_of", "costs_for"]

#: Token counts above this are treated as a broken backend, not as usage.
MAX_TOKENS = 1_000_000_000

#: Human text for the server's ``diagnostics.cache_miss_reason.type``.
MISS_REASON_TEXT: dict[str, str] = {
    "model_changed": "model changed",
    "system_changed": "system prompt changed",
    "tools_changed": "tools changed",
    "messages_changed": "an earlier message changed",
    "previous_message_not_found": "previous request unknown to the API",
    "unavailable": "no diagnosis (e.g. thinking or tool_choice changed)",
}

TOKEN_FIELDS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "thinking_tokens",
    "server_tool_uses",
    "web_search_requests",
    "web_fetch_requests",
    "code_execution_requests",
    "cache_missed_input_tokens",
)
#: Server tools whose calls run code in the service's container (priced by time, see ``prices.json``).
_CODE_TOOLS = frozenset({"code_execution", "bash_code_execution", "text_editor_code_execution"})


_MISSING = object()


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    # Attributes first: the ABC check isinstance(obj, Mapping) is slow for SDK models (most calls).
    value = getattr(obj, name, _MISSING)
    if value is _MISSING:
        return obj.get(name) if isinstance(obj, Mapping) else None
    return value


def _check_count(name: str, value: Any) -> int | None:
    """Validate a token/count value from a backend: ``None`` stays missing; others must be sane ints."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer token count, got {value!r}")
    count: int
    if isinstance(value, int):
        count = value
    elif isinstance(value, float):
        if math.isnan(value):
            return None
        if not value.is_integer():
            raise ValueError(f"{name} must be an integer token count, got {value!r}")
        count = int(value)
    elif isinstance(value, str | bytes):
        raise ValueError(f"{name} must be an integer token count, got {value!r}")
    else:
        try:  # numpy integers and similar
            count = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an integer token count, got {value!r}") from None
    if count < 0:
        raise ValueError(f"{name} is negative ({count}); refusing a corrupt usage report")
    if count > MAX_TOKENS:
        raise ValueError(
            f"{name} is absurdly large ({count:,} > {MAX_TOKENS:,}); refusing a corrupt usage report"
        )
    return count


def _check_seconds(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool | str | bytes):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if math.isnan(seconds):
        return None
    if seconds < 0 or math.isinf(seconds):
        raise ValueError(f"{name} must be a finite non-negative number of seconds, got {value!r}")
    return seconds


def _utc(at: datetime) -> datetime:
    if not isinstance(at, datetime):
        raise TypeError(f"timestamp must be a datetime, got {type(at).__name__}")
    if at.tzinfo is None:
        return at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc)


def _tier_prompt(input_tokens: int | None, cache_creation: int | None, cache_read: int | None) -> int:
    return (input_tokens or 0) + (cache_creation or 0) + (cache_read or 0)


def costs_for(
    price: ModelPrice | None,
    *,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_creation_input_tokens: int | None,
    cache_creation_5m_input_tokens: int | None = None,
    cache_creation_1h_input_tokens: int | None = None,
    cache_read_input_tokens: int | None = None,
    multiplier: float = 1.0,
) -> tuple[float | None, float | None]:
    """(cost, cost without caching) in USD, or ``(None, None)`` when price or input/output counts are missing.

    ``multiplier`` scales every rate (0.5 for a Message Batches call; cache prices stack with it).

    - Cache creation is counted once. When the 5m/1h split is reported, each part is charged at its rate and
      any remainder of ``cache_creation_input_tokens`` not covered by the split at the 5m rate; when no split
      is reported, all of it is charged at the 5m rate.
    - Missing cache counts (``None``) mean "not reported" and cost nothing; missing ``input_tokens`` or
      ``output_tokens`` make the cost missing.
    - Without caching, every prompt token (uncached + written + read) would have been charged as base input.
    """
    if price is None or input_tokens is None or output_tokens is None:
        return None, None
    creation = cache_creation_input_tokens
    w5 = cache_creation_5m_input_tokens
    w1 = cache_creation_1h_input_tokens
    if creation is None and (w5 is not None or w1 is not None):
        creation = (w5 or 0) + (w1 or 0)
    creation = creation or 0
    read = cache_read_input_tokens or 0
    # The total is authoritative and is charged exactly once: the reported 1h part at the 1h rate, the rest
    # (the 5m part, or everything when no split is reported) at the 5m rate.
    w1_tokens = min(w1 or 0, creation)
    w5_tokens = creation - w1_tokens
    rates = price.rates(input_tokens + creation + read, multiplier)
    cost = (
        input_tokens * rates.input
        + w5_tokens * rates.cache_write_5m
        + w1_tokens * rates.cache_write_1h
        + read * rates.cache_read
        + output_tokens * rates.output
    ) * 1e-6
    no_cache = ((input_tokens + creation + read) * rates.input + output_tokens * rates.output) * 1e-6
    return cost, no_cache


def miss_reason_text(server: str | None, client: str | None) -> str | None:
    """Best human explanation of a cache miss from the server's diagnosis type and/or the client's text."""
    parts: list[str] = []
    if server is not None:
        parts.append(MISS_REASON_TEXT.get(server, server.replace("_", " ")))
    if client and not (parts and client.startswith(parts[0])):
        parts.append(client)
    return "; ".join(parts) if parts else None


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """Usage of one HTTP call. Token fields are ``None`` when the response did not report them (never 0).

    Field meanings:
      - ``input_tokens``: uncached input tokens (as the API reports them).
      - ``cache_creation_input_tokens``: tokens written to the cache; ``cache_creation_5m/1h_input_tokens``
        the TTL split when reported.
      - ``cache_read_input_tokens``: tokens read from the cache.
      - ``thinking_tokens``: ``usage.output_tokens_details.thinking_tokens`` (part of ``output_tokens``).
      - ``server_tool_uses``: total server tool requests (web search + web fetch + ...), as reported;
        ``web_search_requests`` / ``web_fetch_requests`` the reported split (``usage.server_tool_use``), and
        ``code_execution_requests`` the code-execution calls in the response (the service reports no count).
        Their fees (``prices.json`` ``server_tools``) are part of ``cost_usd``.
      - ``cost_usd`` / ``cost_no_cache_usd``: cost and the cost had nothing been cached; ``None`` when the
        model's price or the usage is unknown.
      - ``cache_miss_reason``: the server's ``diagnostics.cache_miss_reason.type``;
        ``client_miss_reason``: claudekit's own explanation from :class:`PrefixTracker`.
      - ``service_tier``: as the response reports it; ``"batch"`` marks a Message Batches call, priced
        at the table's ``batch_multiplier`` (:attr:`is_batch`).
    """

    timestamp: datetime
    chat_id: str
    turn: int
    step: int
    model: str
    status: str = "ok"
    request_id: str | None = None
    message_id: str | None = None
    stop_reason: str | None = None
    input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_creation_5m_input_tokens: int | None = None
    cache_creation_1h_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens: int | None = None
    thinking_tokens: int | None = None
    server_tool_uses: int | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    cost_usd: float | None = None
    cost_no_cache_usd: float | None = None
    cache_miss_reason: str | None = None
    cache_missed_input_tokens: int | None = None
    client_miss_reason: str | None = None
    service_tier: str | None = None
    web_search_requests: int | None = None
    web_fetch_requests: int | None = None
    code_execution_requests: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "timestamp", _utc(self.timestamp))
        for name in TOKEN_FIELDS:
            object.__setattr__(self, name, _check_count(name, getattr(self, name)))
        for name in ("turn", "step"):
            index = _check_count(name, getattr(self, name))
            if index is None:
                raise ValueError(f"{name} is required")
            object.__setattr__(self, name, index)
        for name in ("latency_s", "ttft_s"):
            object.__setattr__(self, name, _check_seconds(name, getattr(self, name)))
        for name in ("cost_usd", "cost_no_cache_usd"):
            value = getattr(self, name)
            if value is not None:
                value = float(value)
                if math.isnan(value):
                    value = None
                elif value < 0 or math.isinf(value):
                    raise ValueError(f"{name} must be a finite non-negative amount, got {value!r}")
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_message(
        cls,
        message: Any | None,
        *,
        usage: Any | None = None,
        chat_id: str,
        turn: int,
        step: int,
        model: str,
        request_id: str | None,
        status: str,
        latency_s: float | None,
        ttft_s: float | None,
        started_at: datetime,
        cache_miss_reason: object | None = None,
        client_miss_reason: str | None = None,
        prices: Prices | None = None,
    ) -> UsageRecord:
        """Build a record from an ``anthropic.types.Message`` (complete, a partial stream snapshot, or None).

        ``usage`` (an SDK ``Usage`` / ``MessageDeltaUsage`` or a plain dict) overrides ``message.usage``;
        a field it lacks is recorded as missing. Pass ``usage={"input_tokens": n}`` when a stream ended
        without a usage-bearing ``message_delta``, so that ``output_tokens`` is NA instead of a stale count.
        ``cache_miss_reason`` (SDK object, dict, type string or None) falls back to
        ``message.diagnostics.cache_miss_reason``.
        The model used for pricing is ``message.model`` when present, else ``model``.
        Cost is computed with ``prices`` (default: the table in force, see :func:`set_prices`).
        """
        u = usage if usage is not None else _get(message, "usage")
        if cache_miss_reason is None:
            cache_miss_reason = _get(_get(message, "diagnostics"), "cache_miss_reason")
        miss_type = _get(cache_miss_reason, "type")
        if miss_type is None and isinstance(cache_miss_reason, str):
            miss_type = cache_miss_reason

        used_model = _get(message, "model") or model
        stop = _get(message, "stop_reason")
        record = cls(
            timestamp=started_at,
            chat_id=chat_id,
            turn=turn,
            step=step,
            model=str(used_model),
            status=status,
            request_id=request_id,
            message_id=_get(message, "id"),
            stop_reason=str(stop) if stop is not None else None,
            **_token_counts(u),
            code_execution_requests=code_runs(message),
            latency_s=latency_s,
            ttft_s=ttft_s,
            cache_miss_reason=str(miss_type) if miss_type is not None else None,
            cache_missed_input_tokens=_get(cache_miss_reason, "cache_missed_input_tokens"),
            client_miss_reason=client_miss_reason,
        )
        # Priced in place: nobody else holds this record yet, and a copy would validate every field again.
        record._set_costs(prices)
        return record

    def priced(self, prices: Prices | None = None) -> UsageRecord:
        """A copy with ``cost_usd`` / ``cost_no_cache_usd`` computed from ``prices`` (default: in force).

        Warns once per unknown model, and only when there is usage to price."""
        cost, no_cache = self._costs(prices)
        return replace(self, cost_usd=cost, cost_no_cache_usd=no_cache)

    def _set_costs(self, prices: Prices | None) -> None:
        cost, no_cache = self._costs(prices)
        object.__setattr__(self, "cost_usd", cost)
        object.__setattr__(self, "cost_no_cache_usd", no_cache)

    def _costs(self, prices: Prices | None) -> tuple[float | None, float | None]:
        table = prices if prices is not None else get_prices()
        price = table.lookup(self.model)
        if price is None and self.input_tokens is not None and self.output_tokens is not None:
            warn_unknown(self.model)
        cost, no_cache = costs_for(
            price,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens,
            cache_creation_5m_input_tokens=self.cache_creation_5m_input_tokens,
            cache_creation_1h_input_tokens=self.cache_creation_1h_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens,
            multiplier=table.batch_multiplier if self.is_batch else 1.0,
        )
        fee = table.server_tools.fee(
            self.web_search_requests, self.web_fetch_requests, self.code_execution_requests
        )
        if fee and cost is not None and no_cache is not None:
            cost, no_cache = cost + fee, no_cache + fee  # caching changes nothing of the tools' fees
        return cost, no_cache

    @property
    def is_batch(self) -> bool:
        """A Message Batches call (``service_tier == "batch"``): every token at the batch price."""
        return self.service_tier == "batch"

    # ------------------------------------------------------------------ derived values
    @property
    def prompt_tokens(self) -> int | None:
        """input + cache creation + cache read; ``None`` when ``input_tokens`` is missing."""
        if self.input_tokens is None:
            return None
        return _tier_prompt(self.input_tokens, self.cache_creation_input_tokens, self.cache_read_input_tokens)

    @property
    def hit_rate(self) -> float | None:
        """cache_read / (input + cache_read + cache_creation); ``None`` if unknown or the prompt is empty."""
        total = self.prompt_tokens
        if not total:
            return None
        return (self.cache_read_input_tokens or 0) / total

    @property
    def savings_usd(self) -> float | None:
        """cost without caching minus cost (negative when cache writes were not yet repaid)."""
        if self.cost_usd is None or self.cost_no_cache_usd is None:
            return None
        return self.cost_no_cache_usd - self.cost_usd

    @property
    def miss_reason(self) -> str | None:
        """Best human explanation of a cache miss: the server's diagnosis and/or the client's."""
        return miss_reason_text(self.cache_miss_reason, self.client_miss_reason)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (timestamp as ISO 8601 UTC)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["timestamp"] = self.timestamp.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageRecord:
        """Inverse of :meth:`to_dict`; unknown keys are ignored, values are validated."""
        known = _FIELD_SET.get(cls)
        if known is None:
            known = _FIELD_SET[cls] = frozenset(f.name for f in fields(cls))
        kwargs = {k: v for k, v in data.items() if k in known}
        ts = kwargs.get("timestamp")
        if isinstance(ts, str):
            kwargs["timestamp"] = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        for key in ("chat_id", "model", "status"):
            if not isinstance(kwargs.get(key), str):
                raise ValueError(f"{key} must be a string")
        return cls(**kwargs)


_FIELD_SET: dict[type, frozenset[str]] = {}


def _model_fields(obj: Any) -> dict[str, Any]:
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        result = dump()
        if isinstance(result, dict):
            return result
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def cost_of(record_or_usage: Any, model: str | None = None, *, prices: Prices | None = None) -> float | None:
    """Cost in USD of a :class:`UsageRecord`, an SDK ``Usage`` or a usage dict, priced as ``model``.

    ``model`` defaults to the record's model; a batch call (``service_tier`` ``"batch"``) is priced at the
    table's ``batch_multiplier``. Returns ``None`` (and warns once) for an unknown model,
    and ``None`` when input or output tokens are missing.
    """
    table = prices if prices is not None else get_prices()
    batch = _get(record_or_usage, "service_tier") == "batch"
    if isinstance(record_or_usage, UsageRecord):
        rec = record_or_usage
        name = model or rec.model
        tokens = {
            "input_tokens": rec.input_tokens,
            "output_tokens": rec.output_tokens,
            "cache_creation_input_tokens": rec.cache_creation_input_tokens,
            "cache_creation_5m_input_tokens": rec.cache_creation_5m_input_tokens,
            "cache_creation_1h_input_tokens": rec.cache_creation_1h_input_tokens,
            "cache_read_input_tokens": rec.cache_read_input_tokens,
        }
    else:
        if model is None:
            raise TypeError("cost_of(usage, model): model is required for a usage object")
        name = model
        u = record_or_usage
        split = _get(u, "cache_creation")
        tokens = {
            "input_tokens": _check_count("input_tokens", _get(u, "input_tokens")),
            "output_tokens": _check_count("output_tokens", _get(u, "output_tokens")),
            "cache_creation_input_tokens": _check_count(
                "cache_creation_input_tokens", _get(u, "cache_creation_input_tokens")
            ),
            "cache_creation_5m_input_tokens": _check_count(
                "ephemeral_5m_input_tokens", _get(split, "ephemeral_5m_input_tokens")
            ),
            "cache_creation_1h_input_tokens": _check_count(
                "ephemeral_1h_input_tokens", _get(split, "ephemeral_1h_input_tokens")
            ),
            "cache_read_input_tokens": _check_count(
                "cache_read_input_tokens", _get(u, "cache_read_input_tokens")
            ),
        }
    price = table.lookup(name)
    if price is None:
        warn_unknown(name)
        return None
    cost = costs_for(price, **tokens, multiplier=table.batch_multiplier if batch else 1.0)[0]
    if isinstance(record_or_usage, UsageRecord):
        r = record_or_usage
        runs = (r.web_search_requests, r.web_fetch_requests, r.code_execution_requests)
    else:
        stu = _get(record_or_usage, "server_tool_use")
        runs = (_get(stu, "web_search_requests"), _get(stu, "web_fetch_requests"), None)
    return None if cost is None else cost + table.server_tools.fee(*runs)


def _token_counts(u: Any) -> dict[str, Any]:
    """A record's counts from the SDK's ``Usage`` (or a dict); what it lacks is missing (None)."""
    creation_split = _get(u, "cache_creation")
    return {
        "input_tokens": _get(u, "input_tokens"),
        "cache_creation_input_tokens": _get(u, "cache_creation_input_tokens"),
        "cache_creation_5m_input_tokens": _get(creation_split, "ephemeral_5m_input_tokens"),
        "cache_creation_1h_input_tokens": _get(creation_split, "ephemeral_1h_input_tokens"),
        "cache_read_input_tokens": _get(u, "cache_read_input_tokens"),
        "output_tokens": _get(u, "output_tokens"),
        "thinking_tokens": _get(_get(u, "output_tokens_details"), "thinking_tokens"),
        "server_tool_uses": _server_tool_uses(_get(u, "server_tool_use")),
        "web_search_requests": _get(_get(u, "server_tool_use"), "web_search_requests"),
        "web_fetch_requests": _get(_get(u, "server_tool_use"), "web_fetch_requests"),
        "service_tier": _get(u, "service_tier"),
    }


def code_runs(message: Any) -> int | None:
    """Code-execution calls among a response's blocks; None when there are none (most calls)."""
    content = _get(message, "content")
    if not isinstance(content, list):
        return None
    n = sum(1 for b in content if _get(b, "type") == "server_tool_use" and _get(b, "name") in _CODE_TOOLS)
    return n or None


def _server_tool_uses(stu: Any) -> int | None:
    """The server tool requests of a call (web search, code execution...), summed; None when not reported."""
    if stu is None:
        return None
    counts = stu if isinstance(stu, Mapping) else _model_fields(stu)
    total = 0
    for key, value in counts.items():
        if key.endswith("_requests") and value is not None:
            total += _check_count(f"server_tool_use.{key}", value) or 0
    return total
