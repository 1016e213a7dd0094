"""The progress of ``claudekit.map`` / ``batch`` on a Dask DataFrame, driven from the workers' reports.

On the session's 2-worker LocalCluster and counting server: the driver's snapshot reaches done == total
with the result's cost, once per compute; a script prints one final line; a real kernel shows the widget
and its summary in the cell that computes (not in the cell that made the Client, whose context the
client's event thread carries); a worker killed mid-job does not count its rows twice. The folding of
reports (attempts, state files, partial computes) is checked first without a cluster.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")

from dask_support import Server, frame, run_map, wait_for  # noqa: E402

from claudekit.frame import Snapshot, set_progress_factory  # noqa: E402
from claudekit.frame import _progress as progress_seam  # noqa: E402
from claudekit.frame._dask_progress import DaskProgress  # noqa: E402
from tests.notebook.kernel import started_kernel  # noqa: E402

pytestmark = pytest.mark.timeout(120)
WIDGET = "application/vnd.jupyter.widget-view+json"


@dataclass
class Shown:
    """A display the driver made: every snapshot it was given, and the final one."""

    setting: Any
    updates: list[Snapshot] = field(default_factory=list)
    final: Snapshot | None = None

    def update(self, snapshot: Snapshot) -> None:
        self.updates.append(replace(snapshot))

    def finish(self, snapshot: Snapshot, error: BaseException | None) -> None:
        assert error is None
        self.final = replace(snapshot)


@pytest.fixture
def shown() -> Iterator[list[Shown]]:
    """Every display made through the progress seam while the test runs (the notebook's factory after)."""
    before = progress_seam._factory
    made: list[Shown] = []

    def factory(setting: Any) -> Shown:
        made.append(Shown(setting))
        return made[-1]

    set_progress_factory(factory)
    try:
        yield made
    finally:
        set_progress_factory(before)


def _report(p: int, a: str, total: int, **counts: Any) -> dict[str, Any]:
    if counts:
        counts = dict(dict(done=0, ok=0, errors=0, skipped=0, cost=0.0, reused=0, reused_cost=0.0), **counts)
    return dict(p=p, a=a, total=total, **counts)


def test_a_rerun_attempt_replaces_the_rows_of_the_one_before_and_keeps_what_it_paid(
    shown: list[Shown],
) -> None:
    # Without a state file the rerun sends its 10 rows again: counted once, paid twice (5 + 10 rows).
    job = DaskProgress("map", 2, True)
    job.receive(_report(0, "a1", 10))
    job.receive(_report(0, "a1", 10, done=5, ok=5, cost=0.5))
    job.receive(_report(1, "b1", 4))
    job.receive(_report(1, "b1", 4, done=4, ok=4, cost=0.4, end=True))
    job.receive(_report(0, "a2", 10))  # the worker died: Dask runs partition 0 again
    assert job.snapshot().done == 9  # the first attempt's rows until the rerun reports its own
    job.receive(_report(0, "a1", 10, done=6, ok=6, cost=0.6))  # late, from the attempt given up on
    job.receive(_report(0, "a2", 10, done=10, ok=10, cost=1.0, end=True))
    (display,) = shown
    assert display.final is not None and not job.open
    assert (display.final.total, display.final.done, display.final.ok) == (14, 14, 14)
    assert display.final.cost_usd == pytest.approx(0.5 + 1.0 + 0.4)
    assert max(s.done for s in display.updates) <= 14
    # With a state file the rerun reuses the 6 rows recorded (reported or not): paid once, not "reused".
    job = DaskProgress("map", 1, True)
    job.receive(_report(0, "c1", 10, done=2, ok=2, cost=0.2, reused=2, reused_cost=0.2))  # 2 from before
    job.receive(_report(0, "c1", 10, done=5, ok=5, cost=0.3, reused=2, reused_cost=0.2))
    job.receive(_report(0, "c2", 10, done=10, ok=10, cost=0.4, reused=6, reused_cost=0.6, end=True))
    final = shown[-1].final
    assert final is not None and (final.done, final.reused) == (10, 2)
    assert final.cost_usd == pytest.approx(0.4 + 0.4) and final.reused_cost_usd == pytest.approx(0.2)


def test_a_compute_of_some_partitions_or_a_failed_one_ends_its_display(shown: list[Shown]) -> None:
    checks: list[Callable[[], None]] = []
    busy = [True]
    job = DaskProgress("map", 3, True, busy=lambda: busy[0], later=lambda _s, check: checks.append(check))
    job.receive(_report(0, "a", 5))
    job.receive(_report(0, "a", 5, done=5, ok=5, end=True))  # head(): partition 0 only
    assert shown[0].final is None and shown[0].updates[-1].note == "1 of 3 partitions started"
    checks.pop(0)()  # the client still waits for a result: checked again later
    assert shown[0].final is None and len(checks) == 1
    busy[0] = False
    checks.pop(0)()
    assert shown[0].final is not None and shown[0].final.note == "1 of 3 partitions computed"
    job.receive(_report(0, "a", 5, done=5, ok=5, end=True))  # a late report of that compute: ignored
    assert len(shown) == 1
    job.receive(_report(1, "b", 5))  # the next compute: a display of its own
    job.receive(_report(1, "b", 5, done=1, ok=1, end=True, failed="ValueError"))
    assert len(shown) == 2 and shown[1].final is not None
    assert shown[1].final.note == "stopped: partition 1 failed (ValueError)"


def _held(client: Any) -> set[str]:
    """The keys whose results the scheduler holds."""

    def held(dask_scheduler: Any) -> list[str]:
        return [str(k) for k, ts in dask_scheduler.tasks.items() if ts.state == "memory"]

    return set(client.run_on_scheduler(held))


def test_the_driver_snapshot_reaches_done_equals_total_once_per_compute(
    client: Any, server: Server, shown: list[Shown]
) -> None:
    out = run_map(frame(24, 3), server.url, progress=True)
    assert shown == []  # lazy: nothing shown before a compute
    before = _held(client)
    got = out.compute()
    cost = float(got["claude_cost_usd"].sum())
    (first,) = shown
    assert first.final is not None, "the summary is there when compute returns"
    assert (first.final.done, first.final.total, first.final.ok) == (24, 24, 24)
    assert first.final.cost_usd == pytest.approx(cost, rel=1e-9) and cost > 0
    assert all(s.done <= s.total <= 24 for s in first.updates)
    # A second compute of the same lazy frame (once the scheduler let go of the first one's results, which it
    # would hand back without running anything): a progress of its own.
    wait_for(lambda: _held(client) <= before, timeout=10)
    again = out.compute()
    assert len(shown) == 2 and shown[1].final is not None and shown[1].final.done == 24
    assert shown[1].final.cost_usd == pytest.approx(float(again["claude_cost_usd"].sum()), rel=1e-9)
    wait_for(lambda: _held(client) <= before, timeout=10)
    assert len(out.head()) == 5  # partition 0 only: ended once the client waits for nothing more
    wait_for(lambda: len(shown) == 3 and shown[2].final is not None)
    assert shown[2].final is not None and shown[2].final.note == "1 of 3 partitions computed"
    assert (shown[2].final.done, shown[2].final.total) == (8, 8)
    run_map(frame(6, 2), server.url, progress=False).compute()
    assert len(shown) == 3  # progress=False: nothing made, nothing reported


def test_batch_on_dask_shows_its_progress_too(client: Any, server: Server, shown: list[Shown]) -> None:
    import asyncio

    import claudekit as ck

    out = asyncio.run(
        ck.batch(frame(8, 2), "row={key} say {n}", base_url=server.url, api_key="offline", max_tokens=32,
                 poll_interval=0.1)
    )
    got = out.compute()
    (display,) = shown
    assert display.final is not None and display.final.kind == "batch"
    assert (display.final.done, display.final.total, display.final.ok) == (8, 8, 8)
    assert display.final.cost_usd == pytest.approx(float(got["claude_cost_usd"].sum()), rel=1e-9)


def test_off_a_terminal_one_final_summary_line_is_printed(
    client: Any, server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLAUDEKIT_RENDER", "text")  # as a script sees it (the tests render nothing)
    got = run_map(frame(12, 3), server.url, progress=True).compute()
    err = capsys.readouterr().err  # written on the client's event thread, to this process's stderr
    lines = [line for line in err.splitlines() if line.startswith("claudekit")]
    assert len(lines) == 1, err  # stderr is not a terminal: the final line only
    cost = f"{got['claude_cost_usd'].sum():.4f}"
    assert re.fullmatch(rf"claudekit map · 12/12 rows · 12 ok · \${re.escape(cost)} · [\d.]+ s", lines[0])


def test_a_kernel_shows_the_widget_and_summary_in_the_cell_that_computes(client: Any, server: Server) -> None:
    setup = (
        "import dask.dataframe as dd, pandas as pd\n"
        "from distributed import Client\n"
        "import claudekit as ck\n"
        f"client = Client({client.scheduler.address!r})\n"  # the client's event thread starts here
        "pdf = pd.DataFrame({'key': [f'k{i}' for i in range(24)], 'n': range(24)})"
    )
    with started_kernel(setup) as kernel:
        kernel.ok(
            f"out = await ck.map(dd.from_pandas(pdf, npartitions=3), 'row={{key}} say {{n}}', "
            f"base_url={server.url!r}, api_key='offline', max_tokens=32)"
        )
        seen: list[dict[str, Any]] = []
        before = _held(client)
        for _ in range(2):  # each compute shows its own progress in its own cell
            wait_for(lambda: _held(client) <= before, timeout=10)  # (see the test above)
            seen.clear()
            run = kernel.execute(
                "got = out.compute()\nf\"{got['claude_cost_usd'].sum():.4f}\"",
                on_message=lambda m: seen.append(m) if m["msg_type"] == "display_data" else None,
                every_message=True,
            )
            assert run.status == "ok", run.errors
            cost = run.results[-1]["text/plain"].strip("'")
            live, final = run.displays[0], run.displays[-1]
            assert WIDGET in live and live["text/plain"] == ""
            assert final["text/plain"].startswith(f"claudekit map · 24/24 rows · 24 ok · ${cost} · ")
            assert [m for m in seen if m["parent_header"].get("msg_id") != run.msg_id] == []


def _pacer_address(client: Any, url: str) -> str:
    import hashlib

    mark = hashlib.sha256(url.encode()).hexdigest()[:8]
    names = [n for n in client.list_datasets() if mark in n]
    assert names, client.list_datasets()
    return str(client.get_dataset(names[0]).result()._address)


def test_a_worker_killed_mid_job_does_not_count_rows_twice(
    client: Any, limited: Server, shown: list[Shown]
) -> None:
    rows = 80
    out = run_map(frame(rows, 4), limited.url, progress=True, concurrency=4)
    pacer = _pacer_address(client, limited.url)
    victim = next(addr for addr in client.scheduler_info()["workers"] if addr != pacer)
    pid = client.run(os.getpid, workers=[victim])[victim]
    future = client.compute(out)
    wait_for(lambda: sum(1 for _, s, _ in limited.lines() if s == 200) >= 25, timeout=30)
    os.kill(pid, signal.SIGKILL)
    try:
        got = future.result(timeout=90)
    finally:
        client.wait_for_workers(2, timeout=60)
    answers = sum(1 for _, s, _ in limited.lines() if s == 200)
    cost = float(got["claude_cost_usd"].sum())
    wait_for(lambda: bool(shown) and shown[-1].final is not None)
    (display,) = shown  # the rerun is part of the same compute: one display
    final = display.final
    assert final is not None
    print(f"\nkilled a worker: {answers} answers at the server for {rows} rows; shown {final.done}/"
          f"{final.total}, ${final.cost_usd:.6f} spent (${cost:.6f} in the result), "
          f"{len(display.updates)} updates")
    assert (got["claude_status"] == "ok").all() and answers > rows  # the killed rows went again
    assert (final.done, final.total, final.ok) == (rows, rows, rows)
    assert all(s.done <= s.total <= rows for s in display.updates)
    assert final.cost_usd > cost  # what the killed attempt paid for is in the cost too
