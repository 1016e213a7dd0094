"""Budgets: a call whose worst case would pass one is refused before it is sent."""

from __future__ import annotations

import math
import threading

from .._base._errors import BudgetExceededError, ConfigError
from ._estimate import Estimate
from ._log import UsageLog, session_log

__all__ = ["check_budget", "get_budget", "set_budget", "spent"]

_lock = threading.Lock()
_session_budget: float | None = None


def _valid(usd: float | None, what: str) -> float | None:
    if usd is None:
        return None
    if isinstance(usd, bool) or not isinstance(usd, int | float) or not math.isfinite(usd) or usd < 0:
        raise ConfigError(f"{what} must be a non-negative amount in USD (or None for no budget), got {usd!r}")
    return float(usd)


def set_budget(usd: float | None) -> None:
    """A budget for everything this kernel sends from now on (``None`` removes it).

    Before each API call, its worst case (:class:`Estimate` ``cost_max_usd``) is added to what the session
    has spent (the session log's known costs); a call that would pass the budget raises
    :class:`~claudekit.BudgetExceededError` and is not sent."""
    global _session_budget
    value = _valid(usd, "the session budget")
    with _lock:
        _session_budget = value


def get_budget() -> float | None:
    """The session budget in force, or None."""
    return _session_budget


def spent(log: UsageLog | None = None) -> float:
    """The known cost of the calls in ``log`` (default: the session log); unpriced calls count 0."""
    source = log if log is not None else session_log()
    return math.fsum(r.cost_usd for r in source.records if r.cost_usd is not None)


def check_budget(
    estimate: Estimate, *, chat_budget: float | None = None, chat_log: UsageLog | None = None
) -> None:
    """Raise :class:`~claudekit.BudgetExceededError` if the call ``estimate`` describes could pass the
    chat's budget or the session's. A call of unknown price is refused when a budget is in force."""
    budgets: list[tuple[str, float, float]] = []
    if chat_budget is not None:
        budgets.append(("chat", chat_budget, spent(chat_log) if chat_log is not None else 0.0))
    session = _session_budget
    if session is not None:
        budgets.append(("session", session, spent()))
    worst = estimate.cost_max_usd
    for scope, budget, used in budgets:
        if worst is None:
            raise BudgetExceededError(
                scope=scope,
                budget_usd=budget,
                spent_usd=used,
                estimate=estimate,
                hint=f"no price is known for {estimate.model}, so the budget cannot be kept; "
                "add one with claudekit.usage.set_prices({...})",
            )
        if used + worst > budget:
            raise BudgetExceededError(scope=scope, budget_usd=budget, spent_usd=used, estimate=estimate)
