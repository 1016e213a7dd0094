"""``claudekit.map`` on a Dask DataFrame, on a real LocalCluster (2 worker processes) against the offline
server in a process of its own, which writes down every ``/v1/messages`` request by row key
(``counting_server.py``): results equal to the pandas path, the aggregate rate under an enforced limit,
a worker killed mid-job with ``state=`` (every row answered, none answered twice), usage records home on
the driver, and ``max_cost_usd`` holding across workers.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import pandas as pd  # noqa: E402
from dask_support import RPM, Server, frame, run_map, sustained, wait_for  # noqa: E402

import claudekit as ck  # noqa: E402
from claudekit.usage import UsageLog  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def test_the_dask_result_equals_the_pandas_path_and_is_lazy(client: Any, server: Server) -> None:
    ddf = frame(24, 3)
    before = server.mark()
    out = run_map(ddf, server.url)
    assert isinstance(out, dd.DataFrame)
    assert server.mark() == before  # lazy: nothing sent before compute
    got = out.compute()
    expected = run_map(ddf.compute(), server.url)  # the same rows, as the workers receive them
    pd.testing.assert_frame_equal(got, expected)
    assert list(out.dtypes.items()) == list(expected.dtypes.items())  # the meta says what compute gives
    assert (got["claude_status"] == "ok").all()


def test_the_structured_meta_matches_the_pandas_path(client: Any, server: Server) -> None:
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["a", "b"]}, "score": {"type": "integer"}},
        "required": ["label", "score"],
        "additionalProperties": False,
    }
    ddf = frame(6, 2)
    out = run_map(ddf, server.url, output_format=schema)
    expected = run_map(ddf.compute(), server.url, output_format=schema)
    pd.testing.assert_frame_equal(out.compute(), expected)
    assert list(out.dtypes.items()) == list(expected.dtypes.items())


def test_a_missing_column_fails_on_the_driver_before_any_partition_runs(client: Any, server: Server) -> None:
    before = server.mark()
    with pytest.raises(ck.ClaudekitError, match="nope"):
        asyncio.run(ck.map(frame(4, 2), "{nope}", base_url=server.url, api_key="offline"))
    assert server.mark() == before


def _batch(df: Any, url: str, **kw: Any) -> Any:
    """ck.batch with the worker's poll short (a base_url server is polled as the service would be)."""
    kw.setdefault("max_tokens", 32)
    kw.setdefault("progress", False)
    kw.setdefault("poll_interval", 0.1)

    async def run() -> Any:
        out = await ck.batch(df, "row={key} say {n}", base_url=url, api_key="offline", **kw)
        return out if isinstance(out, dd.DataFrame) else await out

    return asyncio.run(run())


def _batches(server: Server, since: int) -> list[int]:
    """The sizes of the batches created at the server since ``since`` (each a ``batch N`` line)."""
    return [int(left) for _, status, key, left in server.full()[since:] if key == "batch" and status == 200]


def test_batch_on_dask_equals_the_pandas_batch_and_a_rerun_submits_nothing(
    client: Any, server: Server, tmp_path: Path
) -> None:
    ddf, log = frame(24, 3), UsageLog()
    before = server.mark()
    out = _batch(ddf, server.url, state=tmp_path / "state", usage_log=log)
    assert isinstance(out, dd.DataFrame)
    assert server.mark() == before  # lazy: nothing submitted before compute
    got = out.compute()
    sizes = _batches(server, before)
    middle = server.mark()
    expected = _batch(ddf.compute(), server.url)  # the same rows, as the workers receive them
    pd.testing.assert_frame_equal(got, expected)
    assert list(out.dtypes.items()) == list(expected.dtypes.items())
    assert (got["claude_status"] == "ok").all()
    assert sorted(sizes) == [8, 8, 8]  # one batch per partition, built on its worker
    # Usage came home: one record per answered row, as many tokens as the result says.
    wait_for(lambda: len(log) >= 24)
    assert len(log) == 24
    assert sum(r.output_tokens or 0 for r in log) == int(got["claude_output_tokens"].sum())
    again = server.mark()
    rerun = out.compute()  # each partition's state file holds its batch: nothing is submitted again
    pd.testing.assert_frame_equal(rerun, got)
    assert _batches(server, again) == [] and server.mark() == again
    assert len(_batches(server, middle)) == 1  # (the pandas batch)
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [
        "part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl",
    ]


def test_a_worker_killed_while_its_batch_runs_with_state_submits_no_batch_again(
    client: Any, server: Server, tmp_path: Path
) -> None:
    ddf, state = frame(24, 3), tmp_path / "state"
    out = _batch(ddf, server.url, state=state)
    before = server.mark()
    future = client.compute(out)
    found: list[tuple[str, int]] = []
    wait_for(lambda: found.extend(_waiting_for_a_batch(client, state, out._name)) or bool(found), 30)
    assert found, "no partition was seen waiting for its batch"
    victim, number = found[0]
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    got = future.result(timeout=60)
    sizes = _batches(server, before)
    print(f"\nkilled the worker waiting for partition {number}'s batch: {len(sizes)} creates in all {sizes}")
    assert (got["claude_status"] == "ok").all() and len(got) == 24
    assert sorted(sizes) == [8, 8, 8]  # the rerun task re-attached to its partition's batch


def _waiting_for_a_batch(client: Any, state: Path, name: str) -> list[tuple[str, int]]:
    """(worker, partition) for a partition whose batch is submitted (its id in the partition's state
    file) and not collected, while its task runs on that worker."""
    import json

    running = {str(key): worker for worker, keys in client.processing().items() for key in keys}
    out = []
    for path in sorted(state.glob("part-*.jsonl")):
        kinds = {json.loads(line).get("t") for line in path.read_text().splitlines() if line.strip()}
        number = int(path.stem.split("-")[1])
        worker = running.get(str((name, number)))
        if "batch" in kinds and "collected" not in kinds and worker is not None:
            out.append((worker, number))
    return out


def test_batch_on_dask_splits_a_partition_by_the_limits(client: Any, server: Server) -> None:
    before = server.mark()
    got = _batch(frame(12, 2), server.url, max_batch_requests=4).compute()
    assert (got["claude_status"] == "ok").all() and len(got) == 12
    assert sorted(_batches(server, before)) == [2, 2, 4, 4]  # 6 rows a partition: 4 + 2, twice


def test_batch_on_dask_with_a_budget_no_partition_fits_submits_nothing(client: Any, server: Server) -> None:
    before = server.mark()
    got = _batch(frame(4, 2), server.url, max_cost_usd=1e-6).compute()
    assert (got["claude_status"] == "skipped_budget").all() and len(got) == 4
    assert got["claude_error"].str.startswith("not submitted: this partition's batch could cost").all()
    assert _batches(server, before) == [] and server.mark() == before  # no create, no message


def test_two_and_four_workers_share_one_rate_and_usage_comes_home(client: Any, limited: Server) -> None:
    log = UsageLog()
    rows = 120
    started = time.monotonic()
    out = run_map(frame(rows, 4), limited.url, usage_log=log, concurrency=8).compute()
    took = time.monotonic() - started
    lines = limited.lines()
    answered = sorted(at for at, status, _ in lines if status == 200)
    refused = sum(1 for _, status, _ in lines if status == 429)
    rate = sustained(limited.full())
    print(f"\n{rows} rows, 2 workers, limit {RPM}/min: {rate:.0f}/min sustained "
          f"({rate / RPM:.2f} of the limit), {refused} 429s of {len(lines)} calls, {took:.1f} s")
    assert (out["claude_status"] == "ok").all()
    assert len(answered) == rows
    assert rate >= 0.9 * RPM
    assert refused <= 0.05 * len(lines)
    # Every call the workers made is in the driver's log: one record per request the server received.
    wait_for(lambda: len(log) >= len(lines))
    assert len(log) == len(lines)
    assert sum(1 for r in log if r.status == "ok") == len(answered)
    assert sum(r.output_tokens or 0 for r in log) == int(out["claude_output_tokens"].sum())


def test_max_cost_usd_holds_across_workers(client: Any, server: Server) -> None:
    one = run_map(frame(1, 1).compute(), server.url)
    row_cost = float(one["claude_cost_usd"].iloc[0])
    limit = 6 * row_cost  # each of the 4 partitions alone could spend more than this
    before = server.mark()
    out = run_map(frame(40, 4), server.url, max_cost_usd=limit, concurrency=2).compute()
    spent = float(out["claude_cost_usd"].sum())
    status = Counter(out["claude_status"])
    print(f"\nmax_cost_usd={limit:.6f}: spent {spent:.6f}, rows {dict(status)}")
    assert 0 < spent <= limit
    assert status["skipped_budget"] > 0 and status["ok"] > 0
    assert status["ok"] + status["skipped_budget"] == 40
    assert len([1 for _, s, _ in server.lines(before) if s == 200]) == status["ok"]


def test_a_worker_killed_mid_job_with_state_sends_no_answered_row_again(
    client: Any, limited: Server, tmp_path: Path
) -> None:
    rows, concurrency = 120, 4
    ddf = frame(rows, 4)
    out = run_map(ddf, limited.url, state=tmp_path / "state", concurrency=concurrency)
    pacer = _pacer_address(client, limited.url)
    victim = next(addr for addr in client.scheduler_info()["workers"] if addr != pacer)
    pid = client.run(os.getpid, workers=[victim])[victim]
    future = client.compute(out)
    wait_for(lambda: sum(1 for _, s, _ in limited.lines() if s == 200) >= 40, timeout=30)
    os.kill(pid, signal.SIGKILL)
    killed_at = sum(1 for _, s, _ in limited.lines() if s == 200)
    got = future.result(timeout=90)
    answers = Counter(key for _, s, key in limited.lines() if s == 200)
    twice = {k: n for k, n in answers.items() if n > 1}
    files = sorted(p.name for p in (tmp_path / "state").iterdir())
    print(f"\nkilled a worker after {killed_at} answers: {len(answers)} rows answered, "
          f"{len(twice)} answered twice {twice}, state files {files}")
    assert (got["claude_status"] == "ok").all() and len(got) == rows
    assert set(answers) == {f"k{i}" for i in range(rows)}
    # Only a row in flight at the kill (sent, its answer not yet in the state file) may go twice.
    assert sum(n - 1 for n in twice.values()) <= concurrency
    assert len(files) == 4


def _pacer_address(client: Any, url: str) -> str:
    names = [n for n in client.list_datasets() if hashlib_of(url) in n]
    assert names, client.list_datasets()
    actor = client.get_dataset(names[0]).result()
    return str(actor._address)


def hashlib_of(url: str) -> str:
    import hashlib

    return hashlib.sha256(url.encode()).hexdigest()[:8]


def test_kernels_attached_to_one_scheduler_share_the_pacer(client: Any, server: Server) -> None:
    from claudekit.frame._dask import pacer_for

    name = "claudekit-pacer-test-" + re.sub(r"\W", "", server.url)
    first = asyncio.run(pacer_for(client, name))
    with distributed.Client(client.scheduler.address) as other:  # another kernel on the same scheduler
        second = asyncio.run(pacer_for(other, name))
        first.grant(1, (0.0, 0.0), {"headers": {}, "at": time.time()}).result()
        assert second.stats().result()["granted"] == first.stats().result()["granted"] == 1


def test_a_pacer_lost_with_its_worker_is_replaced_by_the_next_job(client: Any, server: Server) -> None:
    ddf = frame(8, 2)
    run_map(ddf, server.url).compute()
    holder = _pacer_address(client, server.url)
    pid = client.run(os.getpid, workers=[holder])[holder]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: holder not in client.scheduler_info()["workers"], timeout=20)
    out = run_map(ddf, server.url).compute()
    assert (out["claude_status"] == "ok").all()
    assert _pacer_address(client, server.url) != holder
