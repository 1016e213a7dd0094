"""The cluster pacer's money rules by attempt, and the worker's link to a replaced pacer (no cluster: the
pacer is plain Python, and the link's actors are stand-ins that answer or hang as a lost one does)."""

from __future__ import annotations

from typing import Any

import pytest

from claudekit.frame import _dask
from claudekit.frame._cluster import LOST, ClusterBudget, ClusterPacer

P = "anthropic-ratelimit-"
LIMITS = {"headers": {f"{P}requests-limit": "600", f"{P}requests-remaining": "600"}, "at": 0.0}


def test_a_new_attempt_lets_the_old_ones_holds_go_but_keeps_what_it_may_have_sent_as_spent() -> None:
    pacer = ClusterPacer(clock=lambda: 0.0)
    pacer.grant(0, (0.0, 0.0), LIMITS)
    first, _ = pacer.begin("job", 3)
    tag = ("job", 3, first)
    for worst in (0.1, 0.3, 0.2):  # three rows held
        assert pacer.reserve("job", 10.0, worst, tag)[0]
    assert pacer.grant(2, (0.0, 0.0), None, tag)[0] == 2  # two of them may have gone out
    pacer.settle("job", 0.1, 0.05, tag)  # one answered and settled: it used one of the permits
    assert pacer.held("job") == pytest.approx(0.5)
    second, carried = pacer.begin("job", 3)  # the task runs again: its worker died
    assert second == first + 1 and carried == 0.0
    # One permit was not accounted for by a settle: the larger of the two rows held is counted as paid.
    assert pacer.held("job") == pytest.approx(0.0)
    assert pacer.spent("job") == pytest.approx(0.05 + 0.3)
    assert pacer.stats()["in_doubt_usd"] == pytest.approx(0.3)
    assert pacer.stats()["released_usd"] == pytest.approx(0.2)


def test_a_superseded_attempt_starts_nothing_but_what_it_settles_still_counts() -> None:
    pacer = ClusterPacer()
    old, _ = pacer.begin("job", 0)
    pacer.reserve("job", 1.0, 0.4, ("job", 0, old))
    new, _ = pacer.begin("job", 0)
    assert pacer.reserve("job", 1.0, 0.1, ("job", 0, old)) == (False, 0.0)
    pacer.settle("job", 0.4, 0.25, ("job", 0, old))  # its row's answer arrived after all
    assert pacer.spent("job") == pytest.approx(0.25) and pacer.held("job") == 0.0
    assert pacer.reserve("job", 1.0, 0.5, ("job", 0, new)) == (True, pytest.approx(0.25))
    pacer.give_back(5, (0.0, 0.0), ("job", 0, new))  # never below nothing sent
    assert pacer.parts[("job", 0)].attempt.sends == 0


def test_a_batch_hold_carried_over_covers_the_rerun_and_is_settled_with_the_real_cost() -> None:
    pacer = ClusterPacer()
    first, _ = pacer.begin("job", 1, carry=True)
    assert pacer.reserve_batch("job", 1.0, 0.6, ("job", 1, first))[0]
    assert not pacer.reserve_batch("job", 1.0, 0.6, ("job", 2, pacer.begin("job", 2)[0]))[0]  # 1.2 > 1
    second, carried = pacer.begin("job", 1, carry=True)  # rerun with its state file: same batch
    assert carried == pytest.approx(0.6)
    assert pacer.reserve_batch("job", 1.0, 0.2, ("job", 1, second))[0]  # covered: nothing held twice
    assert pacer.held("job") == pytest.approx(0.6)
    pacer.settle_batch("job", 0.15, ("job", 1, second))
    assert pacer.held("job") == pytest.approx(0.0) and pacer.spent("job") == pytest.approx(0.15)


def test_a_batch_rerun_without_its_state_file_counts_the_old_hold_as_spent() -> None:
    pacer = ClusterPacer()
    first, _ = pacer.begin("job", 0)
    assert pacer.reserve_batch("job", 1.0, 0.6, ("job", 0, first))[0]
    pacer.begin("job", 0)  # its batch may have been created (and charged): never dropped
    assert pacer.spent("job") == pytest.approx(0.6) and pacer.held("job") == 0.0


def test_a_lost_job_starts_nothing_more_and_says_why() -> None:
    pacer = ClusterPacer()
    pacer.lost("job")
    assert pacer.reserve("job", 1.0, 0.01)[0] is False
    assert pacer.reserve_batch("job", 1.0, 0.01, ("job", 0, pacer.begin("job", 0)[0]))[0] is False
    assert pacer.reserve("other", 1.0, 0.01)[0] is True  # another job's budget is known here

    def call(method: str, *args: Any) -> Any:
        return getattr(pacer, method)(*args)

    budget = ClusterBudget(1.0, "m", 10, None, 0)
    budget.call, budget.job = call, "job"
    assert not budget.allows(0.01)
    assert "max_cost_usd" in budget.refusal(0.01)  # this link was not replaced: the usual reason
    relinked: Any = call
    relinked.relinked = True
    assert budget.refusal(0.01) == LOST


class _Answer:
    def __init__(self, value: Any = None, hang: bool = False) -> None:
        self.value, self.hang = value, hang

    def result(self, timeout: float | None = None) -> Any:
        if self.hang:
            raise TimeoutError("no answer")
        return self.value


class _Actor:
    """A pacer actor stand-in: its ``ClusterPacer`` answers, or every call hangs (lost with its worker)."""

    def __init__(self, key: str, dead: bool = False) -> None:
        self._key, self.dead, self.pacer = key, dead, ClusterPacer()

    def __getattr__(self, method: str) -> Any:
        return lambda *args: _Answer(None, True) if self.dead else _Answer(getattr(self.pacer, method)(*args))


def test_a_link_to_a_lost_pacer_moves_to_its_replacement_and_marks_the_job_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import distributed

    old, new = _Actor("old", dead=True), _Actor("new")
    looked: list[str] = []
    monkeypatch.setattr(distributed, "get_client", lambda: "client")
    monkeypatch.setattr(_dask, "find_or_promote", lambda client, name: looked.append(name) or new)
    monkeypatch.setattr(_dask, "_REPLACED", {})
    link = _dask._Link(old, "claudekit-pacer-x", "job")
    assert link("begin", "job", 0) == (1, 0.0)  # answered by the replacement
    assert looked == ["claudekit-pacer-x"] and link.relinked
    assert "job" in new.pacer.lost_jobs
    again = _dask._Link(old, "claudekit-pacer-x", "job")  # the next partition on this worker
    assert again.pacer is new and again.relinked and looked == ["claudekit-pacer-x"]


def test_a_slow_pacer_that_is_still_the_published_one_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    import distributed

    slow, sent = _Actor("slow"), []
    late = _Answer("late", True)

    def stats(*args: Any) -> _Answer:
        sent.append(args)
        return late

    def answer_later(timeout: float | None = None) -> Any:
        late.hang = False  # the first wait timed out; the call answers while the link looks the pacer up
        return slow

    slow.__dict__["stats"] = stats
    monkeypatch.setattr(distributed, "get_client", lambda: "client")
    monkeypatch.setattr(_dask, "find_or_promote", lambda client, name: answer_later())
    monkeypatch.setattr(_dask, "_REPLACED", {})
    link = _dask._Link(slow, "p", "job")
    assert link("stats") == "late" and not link.relinked
    assert len(sent) == 1  # waited for, not sent again


def test_a_pacer_that_never_answers_but_stays_published_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import distributed

    import claudekit as ck

    stuck = _Actor("stuck")
    stuck.__dict__["stats"] = lambda *args: _Answer(None, True)
    monkeypatch.setattr(distributed, "get_client", lambda: "client")
    monkeypatch.setattr(_dask, "find_or_promote", lambda client, name: stuck)
    monkeypatch.setattr(_dask, "_REPLACED", {})
    monkeypatch.setattr(_dask, "_PATIENCE", 3)
    with pytest.raises(ck.ConfigError, match="did not answer") as err:
        _dask._Link(stuck, "p", "job")("stats")
    assert "\n" not in str(err.value.message)


def test_a_lost_pacer_without_a_standby_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import distributed

    import claudekit as ck

    monkeypatch.setattr(distributed, "get_client", lambda: "client")
    monkeypatch.setattr(_dask, "find_or_promote", lambda client, name: None)
    monkeypatch.setattr(_dask, "_REPLACED", {})
    with pytest.raises(ck.ConfigError, match="lost with its worker, and no standby") as err:
        _dask._Link(_Actor("old", dead=True), "p", "job")("stats")
    assert "\n" not in str(err.value.message)
