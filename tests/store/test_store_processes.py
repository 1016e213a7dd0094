"""Two processes write the same store at the same time: nothing is lost, nothing is duplicated."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._support import rows

ROOT = Path(__file__).resolve().parents[2]
N = 1000

WRITER = """
import os, sys, time
from pathlib import Path
go, who = Path(sys.argv[1]), sys.argv[2]
from claudekit import store
from claudekit.usage import session_log
from tests.store._support import record
log = session_log()
assert store.get_store().start(), "could not open the store"
(go.parent / ("ready-" + who)).touch()
deadline = time.monotonic() + 60
while not go.exists():  # start together
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.002)
for i in range({n}):
    log.append(record(i, chat_id=who))
    if i % 10 == 9:
        store.flush()  # many small transactions, interleaved with the other process's
assert store.flush(60), "not flushed"
print(store.get_store().dropped)
"""


def test_two_processes_writing_1000_records_each_keep_2000_rows(home: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "CLAUDEKIT_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("CLAUDEKIT_STORE", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER.format(n=N), str(go), who],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("proc-a", "proc-b")
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{who}").exists() for who in ("proc-a", "proc-b")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a writer did not start"
        time.sleep(0.01)
    go.touch()  # both have opened the store: they start at once
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "0", (out, err)  # nothing dropped
    db = home / "claudekit.db"
    assert rows(db, "SELECT count(*) FROM calls") == [(2 * N,)]
    for who in ("proc-a", "proc-b"):
        ids = [r[0] for r in rows(db, "SELECT request_id FROM calls WHERE chat_id = ? ORDER BY id", (who,))]
        assert ids == [f"req_{i:06d}" for i in range(N)]  # each process's records, all there, in order
    sessions = rows(db, "SELECT count(DISTINCT session) FROM calls")
    assert sessions == [(2,)]
    # The two really overlapped: their rows interleave in insertion order.
    order = [r[0] for r in rows(db, "SELECT chat_id FROM calls ORDER BY id")]
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches > 2, "the writers did not run concurrently; the test proves nothing"


def _child_writes(n: int) -> None:
    from claudekit import store
    from claudekit.usage import session_log

    from ._support import record

    for i in range(n):
        session_log().append(record(i, chat_id="forked"))
    assert store.flush(30)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_writes_with_a_writer_of_its_own(home: Path) -> None:
    import multiprocessing

    from claudekit import store
    from claudekit.usage import session_log

    from ._support import record

    session_log().append(record(0, chat_id="parent"))  # the parent's writer thread is running
    assert store.flush()
    child = multiprocessing.get_context("fork").Process(target=_child_writes, args=(50,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    session_log().append(record(1, chat_id="parent"))  # and the parent's still works
    assert store.flush()
    db = home / "claudekit.db"
    assert rows(db, "SELECT chat_id, count(*) FROM calls GROUP BY chat_id ORDER BY chat_id") == [
        ("forked", 50),
        ("parent", 2),
    ]
