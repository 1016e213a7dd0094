"""What a request will cost, before it is sent: input tokens from the token-counting endpoint, a cost range.

The estimator sends ``client.messages.count_tokens`` (free, no message is created) with the parts of the
request that endpoint accepts, and prices the result with the table in force:

- ``cost_min_usd``: the expected cache reads at the read price, the rest of the prompt at the base input
  price, no output;
- ``cost_max_usd``: the worst case: every prompt token written to the cache when the request caches (at the
  write price of the longest TTL it asks for), else at the base input price, and every one of ``max_tokens``
  generated. Server-tool fees (web search…) are not included.

Both are ``None`` when the model has no known price.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import anthropic

from .._base._errors import from_sdk_error
from ._prices import Prices, get_prices, warn_unknown
from ._record import costs_for
from ._tracker import find_ttl

if TYPE_CHECKING:
    from ._log import UsageLog

__all__ = ["Estimate", "count_tokens_params", "estimate_request", "expected_cache_read"]

# SDK keyword arguments that are transport options, not part of the request body.
_TRANSPORT = frozenset({"self", "extra_headers", "extra_query", "extra_body", "timeout"})
# output_format is the SDK's pydantic convenience; the request already carries output_config.
_NOT_BODY = frozenset({"output_format"})


def _accepted_keys() -> frozenset[str]:
    """The body fields the installed SDK's ``messages.count_tokens`` accepts (read from its signature)."""
    from anthropic.resources.messages import AsyncMessages

    params = inspect.signature(AsyncMessages.count_tokens).parameters
    return frozenset(params) - _TRANSPORT - _NOT_BODY


_ACCEPTED = _accepted_keys()


@dataclass(frozen=True)
class Estimate:
    """Tokens and cost of one request, known before it is sent (see the module docstring)."""

    model: str
    input_tokens: int  # from the token-counting endpoint (offline: the backend's counter)
    max_output_tokens: int  # the request's max_tokens (upper bound)
    expected_cache_read_tokens: int  # from the chat's previous call; 0 when unknown
    cost_min_usd: float | None  # cache reads as expected, no output
    cost_max_usd: float | None  # worst case: every output token, no cache read
    method: str  # how input_tokens was obtained, e.g. "count_tokens"
    server_tools_max_usd: float = 0.0  # the server tools' part of cost_max_usd (each used max_uses times)

    def __str__(self) -> str:
        if self.cost_min_usd is None or self.cost_max_usd is None:
            cost = f"cost unknown (no price for {self.model})"
        else:
            cost = f"${self.cost_min_usd:,.4f} to ${self.cost_max_usd:,.4f}"
            if self.server_tools_max_usd:
                cost += f" (server tools up to ${self.server_tools_max_usd:,.4f})"
        cached = (
            f", {self.expected_cache_read_tokens:,} expected from the cache"
            if self.expected_cache_read_tokens
            else ""
        )
        return (
            f"{self.model}: {self.input_tokens:,} input tokens ({self.method}{cached}), "
            f"up to {self.max_output_tokens:,} output tokens; {cost}"
        )


def count_tokens_params(request: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a ``messages.create`` request (as ``build_request`` returns it) that ``count_tokens``
    accepts: the prompt (model, system, tools, messages, thinking, tool_choice, output_config,
    cache_control); ``max_tokens``, sampling, metadata, diagnostics and other ``extra_body`` fields go."""
    params = {k: v for k, v in request.items() if k in _ACCEPTED}
    extra = request.get("extra_body")
    if isinstance(extra, Mapping):
        params.update({k: v for k, v in extra.items() if k in _ACCEPTED and k not in params})
        if "mcp_servers" in extra:
            # The MCP connector (a beta): its toolsets count only beside their servers, under the beta.
            params["extra_body"] = {"mcp_servers": extra["mcp_servers"]}
            params["extra_headers"] = dict(request.get("extra_headers") or {})
    return params


def request_cache_ttl(value: Any) -> str | None:
    """The longest TTL among the request's cache_control markers, or None when it does not cache."""
    ttl = find_ttl(value)
    return None if ttl is None else ("1h" if ttl >= _TTL["1h"] else "5m")


_TTL = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1)}


def expected_cache_read(
    log: UsageLog | None,
    request: Mapping[str, Any],
    *,
    chat_id: str | None = None,
    now: datetime | None = None,
) -> int:
    """Cache reads to expect for ``request`` from the previous call in ``log`` (of ``chat_id`` if given):
    what that call read or wrote, when the request caches, uses the same model and the entry is still
    within its TTL; else 0."""
    ttl = request_cache_ttl(request)
    if log is None or ttl is None:
        return 0
    now = now or datetime.now(timezone.utc)
    for record in reversed(log.records):
        if chat_id is not None and record.chat_id != chat_id:
            continue
        if record.input_tokens is None:
            continue  # a retried or failed attempt: no tokens to go by
        fresh = now - (record.timestamp + timedelta(seconds=record.latency_s or 0.0)) <= _TTL[ttl]
        if not fresh or record.model != request.get("model"):
            return 0
        return (record.cache_read_input_tokens or 0) + (record.cache_creation_input_tokens or 0)
    return 0


def price_range(
    model: str,
    input_tokens: int,
    max_output_tokens: int,
    *,
    expected_cache_read_tokens: int = 0,
    cache_ttl: str | None = None,
    prices: Prices | None = None,
    multiplier: float = 1.0,
) -> tuple[float | None, float | None]:
    """(cost_min, cost_max) in USD for a prompt of ``input_tokens`` tokens (see the module docstring);
    ``multiplier`` scales every rate (the Message Batches price: ``Prices.batch_multiplier``)."""
    price = (prices or get_prices()).lookup(model)
    if price is None:
        warn_unknown(model)
        return None, None
    read = max(0, min(expected_cache_read_tokens, input_tokens))
    low, _ = costs_for(
        price,
        input_tokens=input_tokens - read,
        output_tokens=0,
        cache_creation_input_tokens=0,
        cache_read_input_tokens=read,
        multiplier=multiplier,
    )
    if cache_ttl is None:
        high, _ = costs_for(
            price,
            input_tokens=input_tokens,
            output_tokens=max_output_tokens,
            cache_creation_input_tokens=0,
            multiplier=multiplier,
        )
    else:
        high, _ = costs_for(
            price,
            input_tokens=0,
            output_tokens=max_output_tokens,
            cache_creation_input_tokens=input_tokens,
            cache_creation_1h_input_tokens=input_tokens if cache_ttl == "1h" else None,
            multiplier=multiplier,
        )
    return low, high


#: The server-tool calls a worst case assumes for a tool declared without ``max_uses``.
UNCAPPED_SERVER_USES = 10


def server_tools_worst_case(request: Mapping[str, Any], prices: Prices | None = None) -> float:
    """The most the request's server tools could add (USD): each tool used ``max_uses`` times, or
    :data:`UNCAPPED_SERVER_USES` times when uncapped (the service sets no documented limit)."""
    fees = (prices or get_prices()).server_tools
    uses = {"web_search": 0, "web_fetch": 0, "code_execution": 0}
    for tool in request.get("tools") or []:
        kind = str(tool.get("type") or "") if isinstance(tool, Mapping) else ""
        for family in uses:
            if kind.startswith(family + "_"):
                uses[family] += int(tool.get("max_uses") or UNCAPPED_SERVER_USES)
    return fees.fee(uses["web_search"], uses["web_fetch"], uses["code_execution"])


async def estimate_request(
    client: anthropic.AsyncAnthropic,
    request: Mapping[str, Any],
    *,
    expected_cache_read_tokens: int = 0,
) -> Estimate:
    """Count the tokens of ``request`` (exactly what ``build_request`` returns) with the SDK's
    ``messages.count_tokens`` and price it. Sends no message. A failed count raises claudekit's error for
    it (e.g. :class:`~claudekit.BadRequestError` for an invalid request)."""
    model = str(request["model"])
    try:
        counted = await client.messages.count_tokens(**count_tokens_params(request))
    except anthropic.APIError as exc:
        raise from_sdk_error(exc) from exc
    input_tokens = int(counted.input_tokens)
    max_output = int(request.get("max_tokens") or 0)
    read = max(0, min(int(expected_cache_read_tokens), input_tokens))
    low, high = price_range(
        model, input_tokens, max_output, expected_cache_read_tokens=read, cache_ttl=request_cache_ttl(request)
    )
    tools_max = server_tools_worst_case(request)
    if high is not None:
        high += tools_max
    return Estimate(
        model=model,
        input_tokens=input_tokens,
        max_output_tokens=max_output,
        expected_cache_read_tokens=read,
        cost_min_usd=low,
        cost_max_usd=high,
        method="count_tokens",
        server_tools_max_usd=tools_max,
    )
