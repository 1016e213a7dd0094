"""``claudekit.map`` on Dask: the aggregate rate under one limit with 2 and 4 workers, and the overhead per
row against the pandas path, side by side in one run.

    python benchmarks/bench_dask.py [--rows 600] [--rpm 1200] [--overhead-rows 2000]

1. Rate: a LocalCluster of N worker processes (N = 2, then 4) against the offline server in its own
   process, limited to ``--rpm`` requests a minute (every bucket empty at the first request). Printed:
   the sustained rate (answers a minute from the moment the server's bucket was first empty to the end)
   as a share of the limit, the 429s as a share of the calls, and failed rows. The rate must not grow
   with the workers: they share one pacer.
2. Overhead: the same server without a limit (an instant responder); seconds per row for the pandas path
   in this process and for the Dask path on 2 workers (wall time, cluster already started), and the ratio.
3. Progress: ``--progress-rows`` rows on 2 workers, instant responder, computed with the driver's progress
   on (a line to a buffer) and off, alternately, ``--repeat`` times each: median wall times, and the
   workers' reports per row; then the same rows against the limit (a paced job, which reports longest).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import distributed
import pandas as pd

import claudekit as ck

SERVER = Path(__file__).resolve().parents[1] / "tests" / "dask" / "counting_server.py"


def _server(counts: Path, rpm: int) -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, str(SERVER), str(counts)] + ([str(rpm)] if rpm else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _frame(rows: int, partitions: int) -> Any:
    pdf = pd.DataFrame({"key": [f"k{i}" for i in range(rows)], "n": range(rows)})
    return dd.from_pandas(pdf, npartitions=partitions)


def _map(df: Any, url: str, **kw: Any) -> Any:
    kw.setdefault("progress", False)
    return asyncio.run(ck.map(df, "row={key} say {n}", base_url=url, api_key="offline", max_tokens=32, **kw))


def _cluster(workers: int) -> tuple[Any, Any]:
    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
    )
    return cluster, distributed.Client(cluster)


def _rate(workers: int, rows: int, rpm: int, tmp: Path) -> dict[str, float]:
    cluster, client = _cluster(workers)
    try:
        warm, url = _server(tmp / f"warm{workers}.txt", 0)
        _map(_frame(2 * workers, workers), url).compute()  # imports and first requests on every worker
        warm.kill()
        counts = tmp / f"rate{workers}.txt"
        proc, url = _server(counts, rpm)
        try:
            out = _map(_frame(rows, 2 * workers), url, concurrency=8).compute()
        finally:
            proc.kill()
    finally:
        client.close()
        cluster.close()
    lines = [line.split() for line in counts.read_text().splitlines()]
    answers = [(float(at), int(left)) for at, status, _, left in lines if status == "200"]
    drained = next((i for i, (_, left) in enumerate(answers) if left <= 2), 0)
    steady = [at for at, _ in answers[drained:]]
    rate = (len(steady) - 1) / (steady[-1] - steady[0]) * 60.0 if len(steady) > 1 else float("nan")
    refused = sum(1 for line in lines if line[1] == "429")
    failed = int((out["claude_status"] != "ok").sum())
    return {"rate": rate, "share": rate / rpm, "refused": refused / max(1, len(lines)), "failed": failed}


def _overhead(rows: int, tmp: Path) -> tuple[float, float]:
    proc, url = _server(tmp / "overhead.txt", 0)
    cluster, client = _cluster(2)
    try:
        _map(_frame(8, 2), url).compute()  # warm the workers
        pdf = _frame(rows, 4).compute()
        started = time.perf_counter()
        _map(pdf, url, concurrency=16)
        pandas_s = (time.perf_counter() - started) / rows
        started = time.perf_counter()
        _map(_frame(rows, 4), url, concurrency=16).compute()
        dask_s = (time.perf_counter() - started) / rows
    finally:
        client.close()
        cluster.close()
        proc.kill()
    return pandas_s, dask_s


def _progress(rows: int, repeat: int, rpm: int, tmp: Path) -> dict[str, float]:
    from claudekit.frame import LineProgress, set_progress_factory
    from claudekit.frame._dask_progress import DaskProgress

    reports = [0]
    receive = DaskProgress.receive

    def counted(self: DaskProgress, msg: dict[str, Any]) -> None:
        reports[0] += 1
        receive(self, msg)

    DaskProgress.receive = counted  # type: ignore[method-assign]
    set_progress_factory(lambda _setting: LineProgress(io.StringIO()))
    proc, url = _server(tmp / "progress.txt", 0)
    cluster, client = _cluster(2)
    times: dict[bool, list[float]] = {True: [], False: []}
    try:
        _map(_frame(8, 2), url).compute()  # warm the workers
        for _ in range(repeat):
            for shown in (True, False):
                out = _map(_frame(rows, 4), url, concurrency=16, progress=shown)
                started = time.perf_counter()
                out.compute()
                times[shown].append(time.perf_counter() - started)
        quick = reports[0] / (rows * repeat)
        limited, url = _server(tmp / "progress-paced.txt", rpm)
        reports[0] = 0
        started = time.perf_counter()
        _map(_frame(rows, 4), url, concurrency=8, progress=True).compute()
        paced_s = time.perf_counter() - started
        limited.kill()
    finally:
        client.close()
        cluster.close()
        proc.kill()
    on, off = statistics.median(times[True]), statistics.median(times[False])
    return {"on": on, "off": off, "quick": quick, "paced": reports[0] / rows, "paced_s": paced_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--overhead-rows", type=int, default=2000)
    parser.add_argument("--progress-rows", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=("rate", "overhead", "progress"), default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "progress"):
            p = _progress(args.progress_rows, args.repeat, args.rpm, Path(tmp))
            n, r = args.progress_rows, args.repeat
            print(f"progress: {n} rows, 2 workers, instant responder, median of {r}:")
            print(f"  wall time with progress {p['on']:.3f} s, without {p['off']:.3f} s "
                  f"({p['on'] / p['off'] - 1:+.1%}); {p['quick']:.3f} reports a row")
            print(f"  paced at {args.rpm}/min: {p['paced']:.3f} reports a row ({p['paced_s']:.1f} s)")
        if args.only == "progress":
            return
        results = {n: _rate(n, args.rows, args.rpm, Path(tmp)) for n in (2, 4)}
        pandas_s, dask_s = _overhead(args.overhead_rows, Path(tmp))
    print(f"rate: {args.rows} rows, limit {args.rpm}/min (goal: >= 0.9 of it, 429s <= 5%, 0 failed)")
    for n, r in results.items():
        print(
            f"  {n} workers: {r['rate']:7.0f}/min = {r['share']:.2f} of the limit, "
            f"429s {r['refused']:.1%} of calls, {r['failed']} failed rows"
        )
    print(f"overhead per row, instant responder, {args.overhead_rows} rows (goal: dask <= 2x pandas)")
    print(f"  pandas path: {pandas_s * 1e3:.2f} ms   dask, 2 workers: {dask_s * 1e3:.2f} ms   "
          f"ratio {dask_s / pandas_s:.2f}x")


if __name__ == "__main__":
    main()
