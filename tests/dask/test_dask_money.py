"""Money on Dask, on the session's 2-worker LocalCluster, counted at the server: a ``ck.batch`` budget held
across partitions (a partition that does not fit submits nothing), a killed worker's holds let go at the
pacer (and what it may have been charged for kept as spent), and a pacer killed mid-job (the jobs go on
with a new pacer; a job with a money budget starts no more rows, and every row is accounted for).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from dask_support import Server, frame, run_map, wait_for  # noqa: E402

import claudekit as ck  # noqa: E402
from claudekit.frame._cluster import LOST  # noqa: E402
from claudekit.frame._dask import _standby_name  # noqa: E402
from claudekit.frame._estimate import JobEstimate  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def _pacer(client: Any, url: str) -> Any:
    """The pacer the jobs against ``url`` use (one model in these tests)."""
    tag = hashlib.sha256(url.encode()).hexdigest()[:8]
    names = [n for n in client.list_datasets() if n.endswith(tag)]
    assert len(names) == 1, client.list_datasets()
    return client.get_dataset(names[0]).result()


def _new_job(before: dict[str, list[float]], after: dict[str, list[float]]) -> list[float]:
    """[limit, spent, held] of the one job that is new at the pacer."""
    new = [v for job, v in after.items() if job not in before]
    assert len(new) == 1, (before, after)
    return new[0]


def _creates(server: Server, since: int) -> list[int]:
    """The sizes of the batches created at the server since ``since``."""
    return [int(n) for _, status, key, n in server.full()[since:] if key == "batch" and status == 200]


def _batch(df: Any, url: str, **kw: Any) -> Any:
    async def run() -> Any:
        out = await ck.batch(
            df, "row={key} say {n}", base_url=url, api_key="offline", max_tokens=32, progress=False,
            poll_interval=0.1, **kw,
        )
        return out if isinstance(out, dd.DataFrame | JobEstimate) else await out

    return asyncio.run(run())


def test_a_batch_budget_holds_across_partitions_and_a_refused_one_submits_nothing(
    client: Any, server: Server, tmp_path: Path
) -> None:
    ddf, state = frame(16, 4), tmp_path / "state"
    part = ddf.get_partition(0).compute()
    worst = _batch(part, server.url, dry_run=True).batch_max_usd  # one partition's worst case
    limit = 1.5 * worst  # the first partition fits; the one running beside it while it holds cannot
    before, mark = _pacer_money(client, server.url), server.mark()
    got = _batch(ddf, server.url, max_cost_usd=limit, state=state).compute()
    creates = _creates(server, mark)
    limit_at, spent, held = _new_job(before, _pacer(client, server.url).money().result())
    status = Counter(got["claude_status"])
    cost = float(got["claude_cost_usd"].sum())
    print(f"\nmax_cost_usd={limit:.6f} (a partition's worst case {worst:.6f}): rows {dict(status)}, "
          f"creates {creates}, spent {cost:.6f} (pacer: spent {spent:.6f}, held {held})")
    assert set(status) <= {"ok", "skipped_budget"} and sum(status.values()) == 16
    assert status["ok"] >= 4 and status["skipped_budget"] >= 4
    # Per partition: all of it answered, or all refused, and a refused one created no batch.
    for number in range(4):
        rows = got.loc[ddf.get_partition(number).compute().index, "claude_status"]
        assert rows.nunique() == 1
    assert sorted(creates) == [4] * (status["ok"] // 4)
    skipped = got[got["claude_status"] == "skipped_budget"]
    assert skipped["claude_error"].str.startswith("not submitted: this partition's batch").all()
    assert not skipped["claude_error"].str.contains("\n").any()
    # Settled with the real cost: the pacer's spent is the answers' cost, nothing is held any more.
    assert limit_at == pytest.approx(limit)
    assert 0 < cost <= limit and spent == pytest.approx(cost) and held == pytest.approx(0, abs=1e-12)
    # Run again with room for all, the same state=: only the refused partitions submit a batch.
    again = server.mark()
    rerun = _batch(ddf, server.url, max_cost_usd=4 * worst, state=state).compute()
    assert (rerun["claude_status"] == "ok").all()
    assert sorted(_creates(server, again)) == [4] * (status["skipped_budget"] // 4)


def _pacer_money(client: Any, url: str) -> dict[str, list[float]]:
    try:
        return dict(_pacer(client, url).money().result())
    except AssertionError:  # no pacer yet for this server
        return {}


def _holder(client: Any, url: str) -> tuple[str, int]:
    address = str(_pacer(client, url)._address)
    return address, client.run(os.getpid, workers=[address])[address]


def _answered(server: Server) -> int:
    return sum(1 for _, status, _ in server.lines() if status == 200)


def test_a_killed_workers_holds_are_let_go_and_what_it_may_have_paid_stays_spent(
    client: Any, limited: Server, tmp_path: Path
) -> None:
    rows = 80
    client.wait_for_workers(2, timeout=30)  # (a worker killed by an earlier test is back)
    out = run_map(frame(rows, 4), limited.url, max_cost_usd=1.0, concurrency=4, state=tmp_path / "s")
    pacer_at, _ = _holder(client, limited.url)
    pacer = _pacer(client, limited.url)
    before, stats = pacer.money().result(), pacer.stats().result()
    victim = next(a for a in client.scheduler_info()["workers"] if a != pacer_at)
    pid = client.run(os.getpid, workers=[victim])[victim]
    future = client.compute(out)
    wait_for(lambda: _answered(limited) >= 20, timeout=30)
    os.kill(pid, signal.SIGKILL)
    got = future.result(timeout=90)
    _, spent, held = _new_job(before, pacer.money().result())
    after = pacer.stats().result()
    released = after["released_usd"] - stats["released_usd"]
    in_doubt = after["in_doubt_usd"] - stats["in_doubt_usd"]
    cost = dict(zip(got.index.map(lambda i: f"k{(i - 1000) // 3}"), got["claude_cost_usd"], strict=True))
    answers = Counter(key for _, status, key in limited.lines() if status == 200)
    paid = sum(cost[key] * n for key, n in answers.items())
    print(f"\nkilled a worker: held {held}, let go {released:.6f}, kept as spent (in doubt) {in_doubt:.6f}; "
          f"pacer spent {spent:.6f} >= paid at the server {paid:.6f} ({sum(answers.values())} answers)")
    client.wait_for_workers(2, timeout=30)
    assert (got["claude_status"] == "ok").all() and len(got) == rows
    assert held == pytest.approx(0, abs=1e-12)  # nothing held for ever by the dead attempt
    assert released + in_doubt > 0  # it held rows' worst cases when it died
    assert spent >= paid - 1e-12  # never under-counted: every answer the server gave is spent


def test_a_pacer_killed_mid_job_is_replaced_and_every_row_is_accounted_for(
    client: Any, limited: Server, tmp_path: Path
) -> None:
    rows = 40
    client.wait_for_workers(2, timeout=30)  # so that the pacer's standby is made on the other worker
    free = run_map(frame(rows, 2), limited.url, concurrency=4, state=tmp_path / "free")
    budgeted = run_map(frame(rows, 2), limited.url, concurrency=4, max_cost_usd=1.0, state=tmp_path / "b")
    holder, pid = _holder(client, limited.url)
    tag = hashlib.sha256(limited.url.encode()).hexdigest()[:8]
    name = next(n for n in client.list_datasets() if n.endswith(tag))
    assert str(client.get_dataset(_standby_name(name)).result()._address) != holder  # it survives the kill
    futures = client.compute([free, budgeted])
    wait_for(lambda: _answered(limited) >= 15, timeout=30)
    os.kill(pid, signal.SIGKILL)
    got_free, got_budgeted = (f.result(timeout=90) for f in futures)
    client.wait_for_workers(2, timeout=30)
    status = Counter(got_budgeted["claude_status"])
    answered = {key for _, s, key in limited.lines() if s == 200}
    print(f"\npacer killed after 15 answers: without a budget {dict(Counter(got_free['claude_status']))}; "
          f"with one {dict(status)}; new pacer on {_pacer(client, limited.url)._address} (was {holder})")
    assert (got_free["claude_status"] == "ok").all() and len(got_free) == rows  # went on without a budget
    assert set(status) <= {"ok", "skipped_budget"} and sum(status.values()) == rows
    assert status["skipped_budget"] > 0
    skipped = got_budgeted[got_budgeted["claude_status"] == "skipped_budget"]
    assert (skipped["claude_error"] == LOST).all()
    assert {f"k{i}" for i in range(rows)} <= answered  # every row of the free job answered at the server
    assert str(_pacer(client, limited.url)._address) != holder
