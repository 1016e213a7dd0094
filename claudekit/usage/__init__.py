"""Usage log, cost and prompt-cache analytics for claudekit.

Every API call claudekit makes is recorded as a :class:`UsageRecord` in the chat's :class:`UsageLog`, which
forwards it to the process-wide :func:`session_log`. ``log.df`` is a typed pandas DataFrame, ``log.summary()``
a per-model table, and the ``plot_*`` functions return matplotlib Figures.

Definitions:
  - hit rate of a call = cache_read / (input + cache_read + cache_creation); a log's hit rate is the same
    ratio over sums (not the mean of per-call rates).
  - cost = input·p_in + cache_write_5m·p_5m + cache_write_1h·p_1h + cache_read·p_read + output·p_out, each
    token counted once. When the response does not report the 5m/1h split, all cache creation is charged at
    the 5m rate. Cost without caching charges every prompt token at p_in.
  - prices come from ``prices.json`` shipped in this package (see its ``sources``); a model with no known
    price gives a missing cost and one :class:`UnknownPriceWarning`.

Layer: below ``_runner`` (a turn records its usage and checks budgets here), above ``_tooling``,
``_request`` and ``_base``; the store plugs into the session log through ``claudekit._seams``.
"""

from typing import TYPE_CHECKING, Any

from ._budget import check_budget, get_budget, set_budget, spent
from ._display import footer_html, footer_text
from ._estimate import Estimate, count_tokens_params, estimate_request, expected_cache_read
from ._log import COLUMNS, UsageLog, UsageLogWarning, session_log, summarize
from ._prices import ModelPrice, Prices, UnknownPriceWarning, get_prices, load_prices, set_prices
from ._record import MAX_TOKENS, MISS_REASON_TEXT, UsageRecord, cost_of
from ._tracker import PrefixTracker, canonical_hash

if TYPE_CHECKING:
    from ._plots import plot_cache_hit_rate, plot_cost, plot_input_tokens, usage_frame
    from ._stored import UsageFrame, history

# matplotlib (and pandas) load on first use, so that `import claudekit` stays light.
_LAZY = {name: "._plots" for name in ("plot_cache_hit_rate", "plot_cost", "plot_input_tokens", "usage_frame")}
_LAZY.update({"UsageFrame": "._stored", "history": "._stored"})


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'claudekit.usage' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)


__all__ = [
    "COLUMNS",
    "MAX_TOKENS",
    "MISS_REASON_TEXT",
    "Estimate",
    "ModelPrice",
    "PrefixTracker",
    "Prices",
    "UnknownPriceWarning",
    "UsageFrame",
    "UsageLog",
    "UsageLogWarning",
    "UsageRecord",
    "canonical_hash",
    "check_budget",
    "cost_of",
    "count_tokens_params",
    "estimate_request",
    "expected_cache_read",
    "footer_html",
    "footer_text",
    "get_budget",
    "get_prices",
    "history",
    "load_prices",
    "plot_cache_hit_rate",
    "plot_cost",
    "plot_input_tokens",
    "session_log",
    "set_budget",
    "set_prices",
    "spent",
    "summarize",
    "usage_frame",
]
