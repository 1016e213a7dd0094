"""ck.batch pays for every row once (issue 23): re-runs under another index, retries, shared state files,
lost creates, jobs stopped before submitting, torn or foreign state files, odd labels, cached prefixes.

Requests are counted at the backend (``backend.http_log`` and its batches), never by the client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import claudekit as ck
from claudekit.offline import BatchSettings, Fault, OfflineBackend

from .conftest import EchoResponder, calls, messages_sent

pytestmark = pytest.mark.timeout(60)
FAST = 0.01
CREATE = ("POST", "/v1/messages/batches")


def frame(n: int, prefix: str = "k") -> pd.DataFrame:
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)]}, index=[f"{prefix}{i}" for i in range(n)])


def make_backend(**settings: Any) -> OfflineBackend:
    return OfflineBackend(responder=EchoResponder(), batches=BatchSettings(**settings))


def creates(backend: OfflineBackend) -> int:
    return sum(1 for m, p in backend.http_log if (m, p) == CREATE)


def submitted(backend: OfflineBackend) -> int:
    """Requests the backend received in batches (each one billed)."""
    return sum(len(b.custom_ids) for b in backend.batches._batches.values())


async def test_a_rerun_under_another_index_collects_the_batch_in_flight(tmp_path: Path):
    backend = make_backend(processing_seconds=30.0)
    state = tmp_path / "job.jsonl"
    df = frame(6)
    first = await ck.batch(df, "id={id}", offline=backend, state=state, progress=False)
    assert first.status == "in_progress"
    # The same rows read back from a CSV: another index, the same prompts.
    again = df.reset_index(drop=True)
    job = await ck.batch(again, "id={id}", offline=backend, state=state, progress=False, poll_interval=FAST)
    assert creates(backend) == 1
    backend.advance(30.0)
    out = await job
    assert out["claude_status"].tolist() == ["ok"] * 6
    assert out["claude_text"].tolist() == [f"answer for r{i}" for i in range(6)]
    third = await ck.batch(again, "id={id}", offline=backend, state=state, progress=False)
    assert third.batch_ids == [] and submitted(backend) == 6


def _fail_once(ids: set[str]) -> Any:
    failed: set[str] = set()

    def fault(custom_id: str, params: dict[str, Any]) -> Any:
        text = params["messages"][-1]["content"][0]["text"]
        if text in ids and text not in failed:
            failed.add(text)
            return "errored"
        return None

    return fault


async def test_a_retry_is_collected_by_a_resume_in_a_new_kernel(tmp_path: Path):
    backend = make_backend(processing_seconds=0.0, fault=_fail_once({"id=r3"}))
    state = tmp_path / "job.jsonl"
    job = await ck.batch(
        frame(5), "id={id}", offline=backend, state=state, progress=False, poll_interval=FAST
    )
    out = await job
    assert out["claude_status"].tolist().count("ok") == 4
    await job.retry()  # submitted; this kernel then goes away before waiting
    del job
    resumed = ck.BatchJob.resume(state, offline=backend, poll_interval=FAST, progress=False)
    out = await resumed
    assert out["claude_status"].tolist() == ["ok"] * 5 and out["claude_text"].iloc[3] == "answer for r3"
    assert submitted(backend) == 6


async def test_a_failed_retry_keeps_its_rows_and_a_retry_respects_the_split_limits(tmp_path: Path):
    backend = make_backend(processing_seconds=0.0, fault=_fail_once({"id=r1", "id=r2", "id=r4"}))
    job = await ck.batch(
        frame(5), "id={id}", offline=backend, progress=False, poll_interval=FAST, max_batch_requests=2
    )
    await job
    assert job.counts["errored"] == 3
    settings = backend.batches.settings
    backend.batches.settings = dataclasses.replace(settings, max_requests=0)  # every create refused
    with pytest.raises(ck.APIError):
        await job.retry()
    assert job.df["claude_status"].tolist().count("ok") == 2  # still errored, not stranded as pending
    assert "pending" not in job.df["claude_status"].tolist()
    backend.batches.settings = dataclasses.replace(settings, max_requests=2)  # the job's own limit
    await job.retry()
    out = await job
    assert out["claude_status"].tolist() == ["ok"] * 5
    sizes = sorted(len(b.custom_ids) for b in backend.batches._batches.values())
    assert sizes == [1, 1, 2, 2, 2] and submitted(backend) == 8


async def test_two_runs_sharing_a_state_file_send_each_row_once(tmp_path: Path):
    backend = make_backend(processing_seconds=0.0)
    state = tmp_path / "job.jsonl"
    df = frame(40)

    async def run() -> pd.DataFrame:
        job = await ck.batch(df, "id={id}", offline=backend, state=state, progress=False, poll_interval=FAST)
        return await job

    one, two = await asyncio.gather(run(), run())
    assert submitted(backend) == 40 and messages_sent(backend) == 0
    assert (
        one["claude_text"].tolist() == two["claude_text"].tolist() == [f"answer for r{i}" for i in range(40)]
    )


async def test_a_run_that_cannot_get_the_state_file_says_why_in_one_line(tmp_path: Path, monkeypatch: Any):
    monkeypatch.setenv("CLAUDEKIT_STATE_LOCK_WAIT", "0.2")
    backend = make_backend(processing_seconds=30.0)
    state = tmp_path / "job.jsonl"
    job = await ck.batch(
        frame(4), "id={id}", offline=backend, state=state, progress=False, poll_interval=FAST
    )
    waiting = asyncio.ensure_future(job.wait())  # holds the state file while it polls
    await asyncio.sleep(0.1)
    with pytest.raises(ck.ConfigError) as err:
        await ck.batch(frame(4), "id={id}", offline=backend, state=state, progress=False)
    assert "another run is using the state file" in str(err.value) and "\n" not in err.value.message
    backend.advance(30.0)
    await waiting
    assert submitted(backend) == 4


async def test_a_create_slower_than_the_timeout_makes_one_batch_which_the_job_finds(tmp_path: Path):
    backend = make_backend(processing_seconds=0.0, create_seconds=2.0)
    state = tmp_path / "job.jsonl"
    with backend.serve() as server:
        job = await ck.batch(
            frame(6),
            "id={id}",
            base_url=server.base_url,
            api_key="offline",
            state=state,
            progress=False,
            poll_interval=FAST,
            timeout=0.5,
        )
        out = await job
    assert creates(backend) == 1 and submitted(backend) == 6
    assert out["claude_status"].tolist() == ["ok"] * 6


async def test_a_resume_of_a_job_stopped_before_submitting_says_so_and_submits(tmp_path: Path):
    backend = make_backend(processing_seconds=0.0, max_requests=0)  # the create is refused
    state = tmp_path / "job.jsonl"
    with pytest.raises(ck.APIError):
        await ck.batch(frame(5), "id={id}", offline=backend, state=state, progress=False)
    assert submitted(backend) == 0
    backend.batches.settings = dataclasses.replace(backend.batches.settings, max_requests=100)
    job = ck.BatchJob.resume(state, offline=backend, poll_interval=FAST, progress=False)
    assert job.unsent == 5
    with pytest.warns(UserWarning, match=r"5 request\(s\) .* were never submitted"):
        out = await job
    assert out["claude_status"].tolist() == ["ok"] * 5 and submitted(backend) == 5


async def test_a_torn_last_line_does_not_swallow_the_next_fact(tmp_path: Path):
    backend = make_backend(processing_seconds=30.0)
    state = tmp_path / "job.jsonl"
    df = frame(5)
    await ck.batch(df, "id={id}", offline=backend, state=state, progress=False)
    with state.open("a") as fh:
        fh.write('{"t":"res","fp":"0123')  # a kill mid-write
    backend.advance(30.0)
    with pytest.warns(UserWarning, match="skipping an unreadable state line"):
        resumed = ck.BatchJob.resume(state, offline=backend, poll_interval=FAST, progress=False)
        await resumed  # its first fact must not land on the fragment
    with pytest.warns(UserWarning, match="skipping an unreadable state line"):
        last = await ck.batch(df, "id={id}", offline=backend, state=state, progress=False)
    assert last.batch_ids == [] and submitted(backend) == 5
    assert last.df["claude_status"].tolist() == ["ok"] * 5


async def test_a_state_path_holding_something_else_is_refused_untouched(tmp_path: Path):
    backend = make_backend(processing_seconds=0.0)
    state = tmp_path / "reviews.csv"
    state.write_text("id,text\n1,great\n")
    with pytest.raises(ck.ConfigError, match="is not a claudekit state file"):
        await ck.batch(frame(3), "id={id}", offline=backend, state=state, progress=False)
    assert state.read_text() == "id,text\n1,great\n" and submitted(backend) == 0


async def test_a_lone_surrogate_in_an_index_label_is_kept_and_resumed(tmp_path: Path):
    backend = make_backend(processing_seconds=0.0)
    state = tmp_path / "job.jsonl"
    # An object index: pandas' pyarrow-backed strings (pyarrow comes with dask) cannot hold a lone surrogate.
    df = pd.DataFrame({"id": ["r0", "r1"]}, index=pd.Index(["ok", "bad\ud800"], dtype=object))
    out = await (
        await ck.batch(df, "id={id}", offline=backend, state=state, progress=False, poll_interval=FAST)
    )
    assert out["claude_status"].tolist() == ["ok", "ok"]
    resumed = await ck.BatchJob.resume(state, offline=backend, progress=False)
    assert resumed.index.tolist() == ["ok", "bad\ud800"] and submitted(backend) == 2


async def test_a_batch_with_a_cached_system_prompt_and_examples_is_sent_like_map():
    backend = make_backend(processing_seconds=0.0)
    system = [{"type": "text", "text": "Label reviews. " * 200, "cache_control": {"type": "ephemeral"}}]
    examples = [("great phone", "positive")]
    live = await ck.map(
        frame(2), "id={id}", offline=backend, system=system, examples=examples, progress=False
    )
    job = await ck.batch(
        frame(2), "id={id}", offline=backend, system=system, examples=examples, progress=False
    )
    out = await job
    assert out["claude_status"].tolist() == live["claude_status"].tolist() == ["ok", "ok"]


async def test_resume_finds_the_server_in_the_state_file_and_never_the_key(tmp_path: Path):
    backend = make_backend(processing_seconds=0.0)
    state = tmp_path / "job.jsonl"
    secret = "sk-ant-api03-never-in-a-file-0123456789"
    with backend.serve() as server:
        await ck.batch(
            frame(3), "id={id}", base_url=server.base_url, api_key=secret, state=state, progress=False
        )
        out = await ck.BatchJob.resume(state, api_key=secret, poll_interval=FAST, progress=False)
    assert out["claude_status"].tolist() == ["ok"] * 3 and submitted(backend) == 3
    text = state.read_text()
    assert secret not in text and json.dumps(server.base_url) in text
    assert calls(backend, "GET", "/v1/messages/batches/") >= 1


async def test_retry_and_cancel_written_without_await_still_happen_in_a_running_loop():
    backend = make_backend(processing_seconds=0.0, fault=_fail_once({"id=r2"}))
    job = await ck.batch(frame(4), "id={id}", offline=backend, progress=False, poll_interval=FAST)
    await job
    assert job.counts["errored"] == 1
    job.retry()  # as the README lists it, in a notebook (where an event loop is running)
    out = await job
    assert out["claude_status"].tolist() == ["ok"] * 4 and submitted(backend) == 5

    slow = make_backend(processing_seconds=30.0)
    other = await ck.batch(frame(4), "id={id}", offline=slow, progress=False, poll_interval=FAST)
    other.cancel()
    slow.advance(1.0)
    out = await other
    assert set(out["claude_status"]) == {"canceled"}


async def test_a_failed_retry_never_awaited_is_said_in_one_line():
    backend = make_backend(processing_seconds=0.0, fault=_fail_once({"id=r1"}))
    job = await ck.batch(frame(3), "id={id}", offline=backend, progress=False, poll_interval=FAST)
    await job
    backend.batches.settings = dataclasses.replace(backend.batches.settings, max_requests=0)
    with pytest.warns(UserWarning, match=r"job\.retry\(\) failed: .*at most 0 requests"):
        job.retry()
        for _ in range(100):
            await asyncio.sleep(0.01)
    assert job.df["claude_status"].tolist().count("ok") == 2


async def test_a_create_the_service_refuses_with_529_is_sent_again_and_makes_one_batch(tmp_path: Path):
    backend = make_backend(
        processing_seconds=0.0, create_fault=lambda n: Fault.status(529) if n == 1 else None
    )
    out = await (
        await ck.batch(frame(4), "id={id}", offline=backend, state=tmp_path / "j.jsonl", poll_interval=FAST)
    )
    assert out["claude_status"].tolist() == ["ok"] * 4
    assert creates(backend) == 2 and len(backend.batches._batches) == 1 and submitted(backend) == 4
