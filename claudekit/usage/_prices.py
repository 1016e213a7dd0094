"""Per-model prices, shipped as data (``prices.json``) and overridable by the user.

All prices are USD per million tokens. A model with no known price yields a *missing* cost (``None``)
and one :class:`UnknownPriceWarning` per model name and process, never a guessed number.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "BATCH_MULTIPLIER",
    "CACHE_READ_MULTIPLIER",
    "CACHE_WRITE_1H_MULTIPLIER",
    "CACHE_WRITE_5M_MULTIPLIER",
    "ModelPrice",
    "Prices",
    "ServerToolPrices",
    "UnknownPriceWarning",
    "get_prices",
    "load_prices",
    "prices_in_force",
    "set_prices",
]

#: Anthropic's standard prompt-cache multipliers of the base input price. Used only to fill in cache prices
#: that a user-supplied override leaves out; the shipped table lists every price explicitly because some
#: models deviate (e.g. cheaper cache reads).
CACHE_WRITE_5M_MULTIPLIER = 1.25
CACHE_WRITE_1H_MULTIPLIER = 2.0
CACHE_READ_MULTIPLIER = 0.1
#: The Message Batches API charges this fraction of the standard price for every token class; the
#: prompt-cache prices (writes and reads) stack with it (batch-processing guide, "Pricing").
BATCH_MULTIPLIER = 0.5

_PER_TOKEN = 1e-6
_DATE_SUFFIX = re.compile(r"-\d{8}$")
_CONTEXT_SUFFIX = re.compile(r"\[[^\]]*\]$")  # e.g. "claude-sonnet-5-5[1m]"


class UnknownPriceWarning(UserWarning):
    """No price is known for a model; its cost is reported as missing."""


@dataclass(frozen=True, slots=True)
class Rates:
    """Prices of the five token categories, USD per million tokens."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Prices of one model, USD per million tokens.

    ``long_prompt`` (optional) holds a second band: when the prompt of one request
    (input + cache creation + cache read) exceeds ``long_prompt_threshold`` tokens, every token of that
    request, output included, is charged at those rates.
    """

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    long_prompt_threshold: int | None = None
    long_prompt: Rates | None = None

    def rates(self, prompt_tokens: int, multiplier: float = 1.0) -> Rates:
        """The rates that apply to a request whose prompt has ``prompt_tokens`` tokens, each scaled by
        ``multiplier`` (the batch discount, see :attr:`Prices.batch_multiplier`)."""
        if (
            self.long_prompt is not None
            and self.long_prompt_threshold is not None
            and prompt_tokens > self.long_prompt_threshold
        ):
            base = self.long_prompt
        else:
            base = Rates(self.input, self.output, self.cache_write_5m, self.cache_write_1h, self.cache_read)
        if multiplier == 1.0:
            return base
        return Rates(
            base.input * multiplier,
            base.output * multiplier,
            base.cache_write_5m * multiplier,
            base.cache_write_1h * multiplier,
            base.cache_read * multiplier,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ModelPrice:
        """Build from ``{"input": .., "output": .., ["cache_write_5m", "cache_write_1h", "cache_read"]}``.

        Missing cache prices are derived from ``input`` with the standard multipliers
        (5m write 1.25x, 1h write 2x, read 0.1x).
        """
        base = _rates_from_mapping(data)
        threshold: int | None = None
        long_rates: Rates | None = None
        lp = data.get("long_prompt")
        if lp is not None:
            if not isinstance(lp, Mapping) or "threshold_tokens" not in lp:
                raise ValueError("long_prompt needs a mapping with threshold_tokens and rates")
            threshold = int(lp["threshold_tokens"])
            long_rates = _rates_from_mapping(lp)
        return cls(
            base.input,
            base.output,
            base.cache_write_5m,
            base.cache_write_1h,
            base.cache_read,
            threshold,
            long_rates,
        )


def _price_value(data: Mapping[str, Any], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"price {key!r} must be a number, got {value!r}")
    value = float(value)
    if not value >= 0.0 or value == float("inf"):
        raise ValueError(f"price {key!r} must be a finite non-negative number, got {value!r}")
    return value


def _rates_from_mapping(data: Mapping[str, Any]) -> Rates:
    for key in ("input", "output"):
        if key not in data:
            raise ValueError(f"a price needs {key!r} (USD per million tokens)")
    inp = _price_value(data, "input")
    out = _price_value(data, "output")
    w5 = _price_value(data, "cache_write_5m") if "cache_write_5m" in data else inp * CACHE_WRITE_5M_MULTIPLIER
    w1 = _price_value(data, "cache_write_1h") if "cache_write_1h" in data else inp * CACHE_WRITE_1H_MULTIPLIER
    rd = _price_value(data, "cache_read") if "cache_read" in data else inp * CACHE_READ_MULTIPLIER
    return Rates(inp, out, w5, w1, rd)


@dataclass(frozen=True, slots=True)
class ServerToolPrices:
    """What the service's own tools cost beside tokens (``prices.json`` ``server_tools``), in USD."""

    web_search_per_1000: float = 10.0
    web_fetch_per_1000: float = 0.0
    code_execution_per_hour: float = 0.05
    code_execution_min_minutes: float = 5.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ServerToolPrices:
        names = ("web_search_per_1000", "web_fetch_per_1000", "code_execution_per_hour")
        values = {n: _price_value(data, n) for n in (*names, "code_execution_min_minutes") if n in data}
        return cls(**values)

    def fee(self, web_search: int | None, web_fetch: int | None, code_execution: int | None) -> float:
        """The tools' fee for one call's counts (None: not reported, nothing charged)."""
        per_run = self.code_execution_per_hour * self.code_execution_min_minutes / 60
        return (
            (web_search or 0) * self.web_search_per_1000 / 1000
            + (web_fetch or 0) * self.web_fetch_per_1000 / 1000
            + (code_execution or 0) * per_run
        )


@dataclass(frozen=True, slots=True)
class Prices:
    """A price table: model id -> :class:`ModelPrice`, with aliases and provenance.

    ``batch_multiplier``: the fraction of every price charged for a Message Batches request (a usage
    record whose ``service_tier`` is ``"batch"``).
    """

    models: Mapping[str, ModelPrice]
    aliases: Mapping[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    retrieved: str | None = None
    batch_multiplier: float = BATCH_MULTIPLIER
    server_tools: ServerToolPrices = field(default_factory=ServerToolPrices)

    def lookup(self, model: str | None) -> ModelPrice | None:
        """The price of ``model``, resolving aliases, a ``-YYYYMMDD`` suffix and a ``[1m]`` suffix."""
        if not model:
            return None
        candidates = [model]
        stripped = _CONTEXT_SUFFIX.sub("", model)
        candidates.append(stripped)
        candidates.append(_DATE_SUFFIX.sub("", stripped))
        for name in candidates:
            name = self.aliases.get(name, name)
            price = self.models.get(name)
            if price is not None:
                return price
        return None

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.lookup(model) is not None

    def merged(self, overrides: Mapping[str, ModelPrice | Mapping[str, Any]]) -> Prices:
        """A copy with ``overrides`` added or replacing existing models."""
        models = dict(self.models)
        for name, value in overrides.items():
            models[name] = value if isinstance(value, ModelPrice) else ModelPrice.from_mapping(value)
        return replace(self, models=models)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prices:
        """Build from the ``prices.json`` layout (``{"models": {...}, "aliases": {...}}``)
        or from a bare ``{model: {...}}`` mapping."""
        raw_models = data.get("models", data)
        if not isinstance(raw_models, Mapping):
            raise ValueError("price table 'models' must be a mapping")
        models = {str(k): ModelPrice.from_mapping(v) for k, v in raw_models.items()}
        aliases = {str(k): str(v) for k, v in dict(data.get("aliases", {}) or {}).items()}
        sources = tuple(str(s) for s in data.get("sources", ()) or ())
        retrieved = data.get("retrieved")
        batch = _price_value(data, "batch_multiplier") if "batch_multiplier" in data else BATCH_MULTIPLIER
        return cls(
            models=models,
            aliases=aliases,
            sources=sources,
            retrieved=str(retrieved) if retrieved is not None else None,
            batch_multiplier=batch,
            server_tools=ServerToolPrices.from_mapping(data.get("server_tools") or {}),
        )


def load_prices(path: str | Path | None = None) -> Prices:
    """Read a price table: the one shipped in the package (``path=None``) or a JSON file of that layout."""
    if path is None:
        text = resources.files("claudekit.usage").joinpath("prices.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return Prices.from_dict(json.loads(text))


_lock = threading.Lock()
_current: Prices | None = None
_warned: set[str] = set()


#: A table in force for one context only (a Dask partition runs under its driver's table: see
#: :func:`prices_in_force`), ahead of this process's own.
_scoped: ContextVar[Prices | None] = ContextVar("claudekit_prices", default=None)


def get_prices() -> Prices:
    """The price table in force (shipped table unless :func:`set_prices` changed it)."""
    global _current
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    with _lock:
        if _current is None:
            _current = load_prices()
        return _current


def set_prices(
    prices: Prices | Mapping[str, ModelPrice | Mapping[str, Any]] | None = None,
    *,
    replace_all: bool = False,
) -> Prices:
    """Override prices for records created from now on; returns the table in force.

    - ``set_prices({"claude-opus-5": {"input": 5, "output": 25}})`` adds or replaces those models on top of
      the current table (cache prices left out are derived with the standard multipliers).
    - ``set_prices(prices_obj)`` or ``replace_all=True`` replaces the whole table.
    - ``set_prices(None)`` restores the shipped table.
    """
    global _current
    new = (
        load_prices()
        if prices is None
        else prices
        if isinstance(prices, Prices)
        else Prices.from_dict(prices)
        if replace_all
        else get_prices().merged(prices)
    )
    with _lock:
        _current = new
        _warned.clear()
    return new


@contextlib.contextmanager
def prices_in_force(prices: Prices) -> Iterator[None]:
    """``prices`` for what runs in this context (and the tasks and threads it starts), whatever this
    process's table: a Dask worker prices a partition with the table of the kernel that made the job."""
    token = _scoped.set(prices)
    try:
        yield
    finally:
        _scoped.reset(token)


def warn_unknown(model: str | None) -> None:
    """Warn once per model name that its price is unknown."""
    key = model or "<no model>"
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(
        f"claudekit.usage: no price known for model {key!r}; its cost is reported as missing. "
        "Add one with claudekit.usage.set_prices({...}).",
        UnknownPriceWarning,
        stacklevel=3,
    )
