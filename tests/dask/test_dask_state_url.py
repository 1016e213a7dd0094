"""``state=`` as an fsspec URL on Dask: each partition's state is a directory of immutable chunks (object
stores have no append), read back in full by a rerun task.

On the session's 2-worker LocalCluster and counting server (``conftest.py``): a ``file://`` URL with a
worker killed mid-job (every row answered; only rows in flight or in the last unwritten chunk go twice,
counted at the server), and ``ck.batch`` whose rerun submits nothing. In one process, on a filesystem
that refuses append mode: a rerun sends only the rows whose answers are in whole chunk lines (a lost
chunk and a torn line are sent again, nothing else). A bad URL is one line on the driver.
"""

from __future__ import annotations

import asyncio
import os
import signal
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
fsspec = pytest.importorskip("fsspec")

import pandas as pd  # noqa: E402
from dask_support import Server, frame, run_map, wait_for  # noqa: E402
from fsspec.implementations.memory import MemoryFileSystem  # noqa: E402

import claudekit as ck  # noqa: E402
from claudekit.frame._api import run_map as run_pandas_map  # noqa: E402
from claudekit.frame._state_url import ChunkedState  # noqa: E402
from claudekit.offline import OfflineBackend  # noqa: E402
from claudekit.usage import UsageLog  # noqa: E402

pytestmark = pytest.mark.timeout(120)


class NoAppend(MemoryFileSystem):
    """An object store's rules in one process: whole objects only (append mode refused), its own store."""

    protocol = ("noappend",)
    store: dict[str, Any] = {}  # noqa: RUF012 - fsspec's MemoryFileSystem keeps its store on the class
    pseudo_dirs = [""]  # noqa: RUF012
    modes: list[str] = []  # noqa: RUF012 - every mode a file was opened with

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        return super()._strip_protocol(str(path).removeprefix("noappend://"))

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        NoAppend.modes.append(mode)
        if "a" in mode:
            raise OSError(f"append is not supported here ({mode!r})")
        return super()._open(path, mode, *args, **kwargs)


fsspec.register_implementation("noappend", NoAppend, clobber=True)


def _pandas_map(rows: int, state: ChunkedState, backend: OfflineBackend) -> tuple[pd.DataFrame, int]:
    """The pandas path a Dask partition runs (``run_map``) with ``state``; (result, requests sent)."""
    df = pd.DataFrame({"key": [f"k{i}" for i in range(rows)]})
    log = UsageLog()
    job = dict(
        concurrency=4, max_cost_usd=None, dry_run=False, progress=False, state=state, examples=None,
        usage_log=log, name=None, give_up_after_s=300.0,
    )
    options = dict(client=None, backend=None, offline=backend, api_key=None, base_url=None)
    out = asyncio.run(run_pandas_map(df, "row={key}", options, job, {"max_tokens": 16}))
    return out, len(log)


def test_a_rerun_reads_every_chunk_and_skips_a_torn_line(tmp_path: Path) -> None:
    root = f"noappend://job-{tmp_path.name}/part-00000"
    fs = NoAppend()
    backend = OfflineBackend(event_delay=0)
    first = ChunkedState(root, flush_rows=4)
    out, sent = _pandas_map(10, first, backend)
    assert (out["claude_status"] == "ok").all() and sent == 10
    chunks = sorted(fs.ls(root.split("://")[1], detail=False))
    # A header chunk when the run opened, then one every 4 answers and the rest at the end: 1 + 3.
    assert first.objects == len(chunks) == 4
    assert not [m for m in NoAppend.modes if "a" in m]  # only whole objects were ever written
    # A kill before the last flush (its chunk never written), and the chunk before it cut mid-line.
    fs.rm(chunks[-1])
    torn = fs.cat_file(chunks[-2])
    assert torn.count(b"\n") == 5  # its header and 4 answers
    fs.pipe_file(chunks[-2], torn[: torn.rindex(b"\n", 0, -1) + 20])
    again = ChunkedState(root, flush_rows=4)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out2, resent = _pandas_map(10, again, backend)
    assert (out2["claude_status"] == "ok").all()
    assert out2.attrs["claudekit"]["reused"] == 7  # 4 + 3 whole lines; 2 lost with the chunk, 1 torn
    assert resent == 3
    assert [str(w.message) for w in seen if "unreadable state line" in str(w.message)]
    # The rerun is an attempt of its own (numbered past the first), in chunks of its own.
    names = [p.rsplit("/", 1)[-1] for p in fs.ls(root.split("://")[1], detail=False)]
    assert sorted({n.split("-")[0] for n in names}) == ["00000", "00001"]
    third = ChunkedState(root, flush_rows=4)
    out3, none = _pandas_map(10, third, backend)
    assert none == 0 and out3.attrs["claudekit"]["reused"] == 10
    pd.testing.assert_series_equal(out3["claude_text"], out2["claude_text"])


def test_a_url_for_a_pandas_frame_is_one_line() -> None:
    with pytest.raises(ck.ConfigError) as err:
        asyncio.run(ck.map(pd.DataFrame({"a": [1]}), "{a}", state="s3://bucket/job/", offline=True))
    assert "Dask" in str(err.value) and "\n" not in str(err.value)


def test_an_unknown_protocol_or_a_missing_package_is_one_line_on_the_driver(
    client: Any, server: Server
) -> None:
    before = server.mark()
    with pytest.raises(ck.ConfigError) as err:
        run_map(frame(4, 2), server.url, state="nope://bucket/job/")
    assert "nope" in str(err.value) and "\n" not in str(err.value)
    try:
        import s3fs  # noqa: F401
    except ImportError:
        with pytest.raises(ck.ConfigError) as missing:
            asyncio.run(ck.batch(frame(4, 2), "row={key}", base_url=server.url, state="s3://b/job/"))
        assert "pip install s3fs" in (missing.value.hint or "") and "\n" not in str(missing.value)
    assert server.mark() == before  # nothing was sent


def _answered(server: Server, since: int = 0) -> Counter[str]:
    return Counter(key for _, status, key in server.lines(since) if status == 200)


def test_a_file_url_state_survives_a_killed_worker(client: Any, limited: Server, tmp_path: Path) -> None:
    rows, concurrency = 120, 4
    url = (tmp_path / "state").as_uri()  # file:///…: the chunked (object-store) layout, on disk
    out = run_map(frame(rows, 4), limited.url, state=url, concurrency=concurrency)
    pacer = _pacer_worker(client, limited.url)
    victim = next(addr for addr in client.scheduler_info()["workers"] if addr != pacer)
    pid = client.run(os.getpid, workers=[victim])[victim]
    # (LocalCluster closes a worker's nanny for good when that worker name is missing 15 s after a
    # removal, even one whose new worker is only starting: this kill must not do that to a later one.)
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "1h"}):
        future = client.compute(out)
        wait_for(lambda: sum(_answered(limited).values()) >= 40, timeout=30)
        os.kill(pid, signal.SIGKILL)
        killed_at = sum(_answered(limited).values())
        got = future.result(timeout=90)
        _whole_again(client)
    answers = _answered(limited)
    again = sum(n - 1 for n in answers.values())
    parts = {p.name: sorted(c.name for c in p.iterdir()) for p in (tmp_path / "state").iterdir()}
    objects = sum(len(c) for c in parts.values())
    reran = [name for name, chunks in parts.items() if {c.split("-")[0] for c in chunks} != {"00000"}]
    print(f"\nkilled a worker after {killed_at} answers: {len(answers)} rows answered, {again} sent again; "
          f"{objects} objects for {rows} rows; partitions run again: {reran}")
    assert (got["claude_status"] == "ok").all() and len(got) == rows
    assert set(answers) == {f"k{i}" for i in range(rows)}
    assert reran, "the killed partition's rerun left no chunks of its own"
    # Sent again: rows in flight at the kill (≤ concurrency) and the answers of the last chunk not yet
    # written (< concurrency, a chunk being written every `concurrency` answers or every second).
    assert again <= 2 * concurrency - 1
    assert sorted(parts) == [f"part-{n:05d}" for n in range(4)]


def _whole_again(client: Any) -> None:
    """Two workers again for the next test: the nanny's new worker, or (if an earlier kill's
    lost-worker timer closed that nanny meanwhile) a new one in its place."""
    wait_for(lambda: len(client.scheduler_info()["workers"]) >= 2, timeout=20)
    if len(client.scheduler_info()["workers"]) < 2:
        client.cluster.scale(2)  # reopens every worker of the cluster's spec that has no nanny now
    client.wait_for_workers(2, timeout=60)


def _pacer_worker(client: Any, url: str) -> str:
    """The worker holding the pacer of the job against ``url`` (one pacer per model and server)."""
    import hashlib

    mark = hashlib.sha256(url.encode()).hexdigest()[:8]
    names = [n for n in client.list_datasets() if mark in str(n)]
    assert names, client.list_datasets()
    return str(client.get_dataset(names[0]).result()._address)


def _batch(df: Any, url: str, **kw: Any) -> Any:
    return asyncio.run(
        ck.batch(df, "row={key} say {n}", base_url=url, api_key="offline", max_tokens=32, progress=False,
                 poll_interval=0.1, **kw)
    )


def test_batch_with_a_url_state_reruns_without_submitting(
    client: Any, server: Server, tmp_path: Path
) -> None:
    url = (tmp_path / "bstate").as_uri()
    before = server.mark()
    got = _batch(frame(24, 3), server.url, state=url).compute()
    created = [line for line in server.full()[before:] if line[2] == "batch"]
    assert (got["claude_status"] == "ok").all() and len(created) == 3
    again = server.mark()
    # The same job again (a new graph: no result of the first compute left in the cluster can stand in
    # for it): each partition reads its chunks, finds its batch collected, and submits nothing.
    rerun = _batch(frame(24, 3), server.url, state=url).compute()
    pd.testing.assert_frame_equal(rerun, got)
    assert server.mark() == again
    parts = {p.name: sorted(c.name for c in p.iterdir()) for p in (tmp_path / "bstate").iterdir()}
    print(f"\nbatch state objects per partition, run and rerun: { {k: len(v) for k, v in parts.items()} }")
    assert sorted(parts) == ["part-00000", "part-00001", "part-00002"]
    assert all({c.split("-")[0] for c in chunks} == {"00000", "00001"} for chunks in parts.values())
