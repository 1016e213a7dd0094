"""Budgets: a call whose worst case would pass one is refused before it is sent.

Calls in flight hold a reservation of their worst case until their usage record is in the log, so
concurrent calls (five chats at once, a ``ck.map`` job's rows) cannot together pass a budget that each
alone fits: what is checked is spent + reserved + this call's worst case.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Any

from .._base._errors import BudgetExceededError, ConfigError
from ._estimate import Estimate
from ._log import UsageLog, session_log

__all__ = ["Reservation", "check_budget", "get_budget", "reserve_budget", "reserved", "set_budget", "spent"]

_lock = threading.Lock()
_session_budget: float | None = None
#: Per log: (id of its record list, records counted, their cost), so that spent() only adds new ones.
_sums: weakref.WeakKeyDictionary[UsageLog, tuple[int, int, float]] = weakref.WeakKeyDictionary()
#: Worst cases of the calls in flight, per budget: "session", or the id of a chat's usage log.
_reserved: dict[object, float] = {}


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
    # Summed incrementally: a 100k-row ck.map asks before every row, and the log only grows.
    with source._lock:
        records = source._records
        key, counted, total = _sums.get(source, (0, 0, 0.0))
        if key != id(records) or counted > len(records):  # cleared since: start over
            counted, total = 0, 0.0
        total += math.fsum(r.cost_usd for r in records[counted:] if r.cost_usd is not None)
        _sums[source] = (id(records), len(records), total)
    return total


def reserved(scope: str = "session", log: UsageLog | None = None) -> float:
    """The worst cases reserved by calls in flight against the session budget (or a chat's, by its log)."""
    with _lock:
        return _reserved.get("session" if scope == "session" else ("chat", id(log)), 0.0)


class Reservation:
    """The worst case of one call in flight, held against its budgets until :meth:`release`."""

    __slots__ = ("_held",)

    def __init__(self, held: list[tuple[object, float]]) -> None:
        self._held = held

    def release(self) -> None:
        """Give the reservation back (once; later calls do nothing). Call it after the call's usage
        record is in the log, so that its real cost is counted before its worst case is dropped."""
        with _lock:
            held, self._held = self._held, []
            for key, amount in held:
                left = _reserved.get(key, 0.0) - amount
                if left > 1e-12:
                    _reserved[key] = left
                else:
                    _reserved.pop(key, None)


def check_budget(
    estimate: Estimate, *, chat_budget: float | None = None, chat_log: UsageLog | None = None
) -> None:
    """Raise :class:`~claudekit.BudgetExceededError` if the call ``estimate`` describes could pass the
    chat's budget or the session's (counting what calls in flight have reserved). A call of unknown
    price is refused when a budget is in force."""
    reserve_budget(estimate, chat_budget=chat_budget, chat_log=chat_log).release()


def reserve_budget(
    estimate: Any, *, chat_budget: float | None = None, chat_log: UsageLog | None = None
) -> Reservation:
    """:func:`check_budget`, then hold the call's worst case against each budget until it is released.

    ``estimate`` needs ``cost_max_usd`` (None: unknown price) and, for the refusal's text, ``model``."""
    budgets: list[tuple[str, object, float, float]] = []
    if chat_budget is not None:
        used = spent(chat_log) if chat_log is not None else 0.0
        budgets.append(("chat", ("chat", id(chat_log)), chat_budget, used))
    session = _session_budget
    if session is not None:
        budgets.append(("session", "session", session, spent()))
    worst = estimate.cost_max_usd
    with _lock:
        for scope, key, budget, used in budgets:
            held = _reserved.get(key, 0.0)
            if worst is None or used + held + worst > budget:
                raise _refusal(scope, budget, used, held, estimate)
        for _scope, key, _budget, _used in budgets:
            _reserved[key] = _reserved.get(key, 0.0) + float(worst or 0.0)
    return Reservation([(key, float(worst or 0.0)) for _s, key, _b, _u in budgets])


def _refusal(scope: str, budget: float, used: float, held: float, estimate: Any) -> BudgetExceededError:
    if estimate.cost_max_usd is None:
        return BudgetExceededError(
            scope=scope,
            budget_usd=budget,
            spent_usd=used,
            estimate=estimate,
            hint=f"no price is known for {getattr(estimate, 'model', 'this model')}, so the budget cannot "
            "be kept; add one with claudekit.usage.set_prices({...})",
        )
    if held <= 0:
        return BudgetExceededError(scope=scope, budget_usd=budget, spent_usd=used, estimate=estimate)
    left = max(0.0, budget - used - held)
    message = (
        f"refused before sending: this call could cost up to ${estimate.cost_max_usd:,.4f}, but only "
        f"${left:,.4f} of the {scope} budget of ${budget:,.4f} is free (${used:,.4f} spent, "
        f"${held:,.4f} held by calls still running)"
    )
    return BudgetExceededError(
        message, scope=scope, budget_usd=budget, spent_usd=used + held, estimate=estimate
    )
