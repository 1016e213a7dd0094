"""What the Dask tests share: the counting offline server in a process of its own, and small helpers.

The fixtures (one 2-worker LocalCluster and one server for the whole session) are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

import claudekit as ck

SERVER = Path(__file__).with_name("counting_server.py")
RPM = 1200  # 20 requests a second, shared by every worker


@dataclass
class Server:
    url: str
    counts: Path
    proc: subprocess.Popen[str]

    def lines(self, since: int = 0) -> list[tuple[float, int, str]]:
        return [(at, status, key) for at, status, key, _ in self.full()[since:]]

    def full(self) -> list[tuple[float, int, str, str]]:
        out = []
        for line in self.counts.read_text().splitlines():
            at, status, key, left = line.split()
            out.append((float(at), int(status), key, left))
        return out

    def mark(self) -> int:
        return len(self.full())


def start_server(tmp_path: Path, rpm: int = 0) -> Iterator[Server]:
    counts = tmp_path / "counts.txt"
    counts.touch()
    args = [sys.executable, str(SERVER), str(counts)] + ([str(rpm)] if rpm else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield Server(url, counts, proc)
    finally:
        proc.kill()
        proc.wait()


def frame(rows: int, partitions: int) -> Any:
    pdf = pd.DataFrame(
        {"key": [f"k{i}" for i in range(rows)], "n": range(rows)},
        index=pd.Index([1000 + 3 * i for i in range(rows)], name="rowid"),
    )
    import dask.dataframe as dd

    return dd.from_pandas(pdf, npartitions=partitions)


def run_map(df: Any, url: str, **kw: Any) -> Any:
    kw.setdefault("max_tokens", 32)
    kw.setdefault("progress", False)
    return asyncio.run(ck.map(df, "row={key} say {n}", base_url=url, api_key="offline", **kw))


def sustained(full: list[tuple[float, int, str, str]]) -> float:
    """Answers per minute over the second half of the job. Above the limit only by what the server's
    bucket saved up while the job started (the server refuses the rest: the 429s are counted apart);
    below 0.9 of it only if the pacer holds the workers back while the service would take more."""
    answers = [at for at, status, _, _ in full if status == 200]
    half = answers[len(answers) // 2 :]
    return (len(half) - 1) / (half[-1] - half[0]) * 60.0


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        time.sleep(0.02)
