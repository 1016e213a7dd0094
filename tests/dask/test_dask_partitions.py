"""A partition computed on its own keeps its own state; the workers price with the driver's table; a slow
pacer's call is waited for, never sent twice. On the shared LocalCluster and counting server."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

from dask_support import Server, frame, run_map

from claudekit.frame import _dask
from claudekit.usage import UsageLog, set_prices

pytestmark = pytest.mark.timeout(120)


def _answered(server: Server, since: int) -> Counter[str]:
    return Counter(key for _, status, key in server.lines(since) if status == 200)


def test_one_partition_computed_alone_keeps_its_own_state(
    client: Any, server: Server, tmp_path: Path
) -> None:
    ddf, state = frame(12, 3), tmp_path / "state"
    out = run_map(ddf, server.url, state=state)
    before = server.mark()
    third = out.partitions[2].compute()  # Dask numbers it 0 in this compute
    assert sorted(p.name for p in state.iterdir()) == ["part-00002.jsonl"]
    assert list(third.index) == list(ddf.partitions[2].compute().index)
    middle = server.mark()
    whole = out.compute()
    assert (whole["claude_status"] == "ok").all() and len(whole) == 12
    # The whole frame sent only the 8 rows of partitions 0 and 1: partition 2's answers were in its state.
    assert set(_answered(server, middle)) == {f"k{i}" for i in range(8)}
    assert sum(_answered(server, before).values()) == 12


def test_the_workers_price_with_the_drivers_table(client: Any, server: Server) -> None:
    ddf, log = frame(6, 2), UsageLog()
    shipped = run_map(ddf.compute(), server.url)["claude_cost_usd"]
    set_prices({"claude-sonnet-4-6": {"input": 300.0, "output": 1500.0}})
    try:
        here = run_map(ddf.compute(), server.url)["claude_cost_usd"]
        there = run_map(ddf, server.url, usage_log=log).compute()["claude_cost_usd"]
    finally:
        set_prices(None)
    assert (here > 50 * shipped).all()  # the override is in force on the driver
    assert list(there) == list(here)  # and on the workers: the same cost for the same row
    assert sum(r.cost_usd or 0 for r in log) == pytest.approx(float(there.sum()))


class _SlowFuture:
    """An actor call that answers only after the first wait timed out."""

    def __init__(self, answer: Any) -> None:
        self.answer, self.waits = answer, 0

    def result(self, timeout: float | None = None) -> Any:
        self.waits += 1
        if self.waits == 1:
            raise TimeoutError
        return self.answer


class _SlowPacer:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self._key = "slow-pacer"

    def reserve(self, *args: Any) -> _SlowFuture:
        self.sent.append(args)
        return _SlowFuture((True, 0.0))


def test_a_slow_pacer_call_is_waited_for_not_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    pacer = _SlowPacer()
    link = _dask._Link(pacer, "claudekit-pacer-test", "job")
    monkeypatch.setattr(link, "_relink", lambda old: old)  # still published and answering: slow, not lost
    assert link("reserve", "job", 1.0, 0.25, None) == (True, 0.0)
    assert pacer.sent == [("job", 1.0, 0.25, None)]  # one reserve: a second would hold the money twice
