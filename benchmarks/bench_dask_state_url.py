"""``state=`` as an fsspec URL on Dask: how many objects a job writes, and how many rows a killed worker
sends again, against the local path (one appended file a partition).

    python benchmarks/bench_dask_state_url.py [--rows 2000] [--kills 5]

One LocalCluster of 2 worker processes and the counting offline server in its own process
(``tests/dask/counting_server.py``). A ``file://`` URL takes the object-store layout (a directory of
immutable chunks a partition, never an append), so its object count is what an S3 or GCS bucket gets.

1. Objects: ``--rows`` rows in 4 partitions, default concurrency (16), an instant responder; then 600 rows
   against a limit of 1,200 requests a minute (chunks are then cut by the 1-second timer, not by size).
   Printed: objects written per 1,000 rows, and the wall time against no state and a local path.
2. Kills: 120 rows, 4 partitions, concurrency 4, limit 1,200 a minute; the worker without the pacer is
   killed (SIGKILL) after 40 answers, ``--kills`` times for the URL and for a local path. Printed: rows
   answered twice (counted at the server) per run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import distributed
import pandas as pd

import claudekit as ck

SERVER = Path(__file__).resolve().parents[1] / "tests" / "dask" / "counting_server.py"


def _server(counts: Path, rpm: int) -> tuple[subprocess.Popen[str], str]:
    counts.touch()
    args = [sys.executable, str(SERVER), str(counts)] + ([str(rpm)] if rpm else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _map(rows: int, url: str, **kw: Any) -> Any:
    pdf = pd.DataFrame({"key": [f"k{i}" for i in range(rows)], "n": range(rows)})
    df = dd.from_pandas(pdf, npartitions=4)
    return asyncio.run(
        ck.map(df, "row={key} say {n}", base_url=url, api_key="offline", max_tokens=32, progress=False, **kw)
    )


def _objects(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


def _answers(counts: Path) -> Counter[str]:
    return Counter(line.split()[2] for line in counts.read_text().splitlines() if line.split()[1] == "200")


def objects(rows: int, tmp: Path) -> None:
    proc, url = _server(tmp / "instant.txt", 0)
    try:
        _map(8, url).compute()  # imports and first requests on every worker
        took = {}
        for name, state in [("none", None), ("path", tmp / "p"), ("url", (tmp / "u").as_uri())]:
            started = time.perf_counter()
            out = _map(rows, url, state=state).compute()
            took[name] = time.perf_counter() - started
            assert (out["claude_status"] == "ok").all()
        n = _objects(tmp / "u")
        print(f"{rows} rows, instant responder, concurrency 16: {n} objects ({1000 * n / rows:.0f} per 1,000 "
              f"rows); {took['none']:.2f} s without state, {took['path']:.2f} s local path, "
              f"{took['url']:.2f} s file:// URL")
    finally:
        proc.kill()
        proc.wait()
    proc, url = _server(tmp / "limited.txt", 1200)
    try:
        out = _map(600, url, state=(tmp / "ul").as_uri(), concurrency=8).compute()
        assert (out["claude_status"] == "ok").all()
        n = _objects(tmp / "ul")
        print(f"600 rows, limit 1,200/min, concurrency 8: {n} objects ({1000 * n / 600:.0f} per 1,000 rows)")
    finally:
        proc.kill()
        proc.wait()


def kill(client: Any, state: Any, tmp: Path, run: int) -> tuple[int, int]:
    counts = tmp / f"kill{run}.txt"
    proc, url = _server(counts, 1200)
    try:
        out = _map(120, url, state=state, concurrency=4)
        pacer = next(n for n in client.list_datasets() if str(n).startswith("claudekit-pacer-"))
        holder = str(client.get_dataset(pacer).result()._address)
        victim = next(a for a in client.scheduler_info()["workers"] if a != holder)
        pid = client.run(os.getpid, workers=[victim])[victim]
        future = client.compute(out)
        while sum(_answers(counts).values()) < 40:
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        at = sum(_answers(counts).values())
        got = future.result(timeout=120)
        assert (got["claude_status"] == "ok").all() and len(_answers(counts)) == 120
        _two_workers(client)
        return at, sum(n - 1 for n in _answers(counts).values())
    finally:
        proc.kill()
        proc.wait()


def _two_workers(client: Any) -> None:
    """Wait for the nanny's new worker (the next run needs both)."""
    end = time.monotonic() + 60
    while len(client.scheduler_info()["workers"]) < 2:
        if time.monotonic() > end:
            raise TimeoutError(f"workers: {list(client.scheduler_info()['workers'])}")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    # A killed worker's nanny is closed for good when its name is missing 15 s after a removal (the
    # default), even while its new worker is starting: kills a few seconds apart would lose a worker.
    dask.config.set({"distributed.deploy.lost-worker-timeout": "1h"})
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
    )
    client = distributed.Client(cluster)
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            objects(args.rows, tmp)
            for name in ("url", "path"):
                runs = []
                for i in range(args.kills):
                    # A pacer per server (each run's server is new): only this run's is looked up.
                    for n in client.list_datasets():
                        client.unpublish_dataset(n)
                    state = (tmp / f"k-{name}-{i}").as_uri() if name == "url" else tmp / f"k-{name}-{i}"
                    runs.append(kill(client, state, tmp, len(runs) + 100 * (name == "path")))
                    print(f"  {name} run {i}: {runs[-1]}", flush=True)
                print(f"killed mid-job, state as a {name}: (answers at the kill, rows sent twice) {runs}")
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
