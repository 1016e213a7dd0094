"""Crash matrix for ``ck.batch``: kill -9 the client at each moment of a job, run the same cell again.

Each moment gets its own ``python -m claudekit.offline`` server process (real HTTP, the batches kept
there as the service keeps them) and a client process that runs a 30-row job in batches of 10 with a
state file. The client is killed (SIGKILL) at the moment; a second client runs the same call to the
end. What was sent is counted at the server (its batches list and each batch's results, through the
SDK): **rows lost** are rows without an answer at the end, **rows sent twice** are requests beyond one
per row across every batch the server made. Goal: 0 and 0 at every moment.

Moments: before a create (nothing sent yet), during a create (the server made the
batch and has not answered yet), after a create (answered, not yet recorded), mid-collection (half the
results recorded), mid-append (a result line half written; then also with ``BatchJob.resume`` before
the same call, so the resumed job's first fact meets the torn line).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import pytest

from ._support import note

pytestmark = pytest.mark.timeout(300)

ROWS = 30
MOMENTS = (
    "before-create",
    "during-create",
    "after-create",
    "mid-collection",
    "mid-append",
    "mid-append/resume",
)
_CREATE_SECONDS = {"during-create": 2.0}  # the server answers this create slowly: time to kill mid-way

CLIENT = """
import asyncio, json, sys, time
import pandas as pd
import claudekit as ck
from anthropic.resources.messages.batches import AsyncBatches
from claudekit.frame import _state

URL, STATE, MOMENT = sys.argv[1], sys.argv[2], sys.argv[3]
df = pd.DataFrame({"id": [f"r{i}" for i in range(ROWS)]}, index=[f"k{i}" for i in range(ROWS)])


def stop():
    print("AT", flush=True)
    time.sleep(600)  # the test kills this process here


# The crash points (the harness decides to stop there): the SDK's create, and the state file's lines.
create = AsyncBatches.create
write = _state.StateFile._line
results = [0]


async def create_hook(self, **kwargs):
    if MOMENT == "before-create":
        stop()
    if MOMENT == "during-create":
        print("AT", flush=True)  # the create goes out now; the test kills once the server has it
    batch = await create(self, **kwargs)
    if MOMENT == "after-create":
        stop()  # answered, not yet recorded
    return batch


def line(self, fact):
    if fact["t"] == "res":
        results[0] += 1
        if results[0] == HALF and MOMENT == "mid-collection":
            write(self, fact)
            stop()
        if results[0] == HALF and MOMENT == "mid-append":
            text = json.dumps(fact)
            self._fh.write(text[: len(text) // 2])
            self._fh.flush()
            stop()
    write(self, fact)


MOMENT = MOMENT.split("/")[0]
if MOMENT not in ("none", "resume"):
    AsyncBatches.create = create_hook
    _state.StateFile._line = line


async def main():
    if MOMENT == "resume":  # a new kernel: re-attach from the state file, then run the same cell again
        await ck.BatchJob.resume(STATE, base_url=URL, api_key="offline", poll_interval=0.05, progress=False)
    job = await ck.batch(df, "id={id}", base_url=URL, api_key="offline", state=STATE, progress=False,
                         poll_interval=0.05, max_batch_requests=10)
    out = await job
    print(json.dumps({"status": out["claude_status"].tolist()}), flush=True)


asyncio.run(main())
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDEKIT_", "PYTEST_"))}
    env["CLAUDEKIT_RENDER"] = "0"
    return env


def _server(create_seconds: float) -> tuple[subprocess.Popen[str], str]:
    args = ["--port", "0", "--batch-seconds", "0.3", "--batch-create-seconds", str(create_seconds)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "claudekit.offline", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    url = first.split(" on ")[1].split()[0]
    return proc, url


def _sent(url: str) -> Counter[str]:
    """Requests per row label across every batch the server made (each one billed)."""
    client = anthropic.Anthropic(base_url=url, api_key="offline", max_retries=0)
    per_row: Counter[str] = Counter()
    for batch in client.messages.batches.list(limit=100):
        deadline = time.monotonic() + 30
        while batch.processing_status != "ended" and time.monotonic() < deadline:
            time.sleep(0.1)
            batch = client.messages.batches.retrieve(batch.id)
        for item in client.messages.batches.results(batch.id):
            per_row[item.custom_id.rsplit("-", 1)[0]] += 1
    client.close()
    return per_row


def _wait_for_batches(url: str, n: int) -> None:
    client = anthropic.Anthropic(base_url=url, api_key="offline", max_retries=0)
    deadline = time.monotonic() + 20
    while len(client.messages.batches.list(limit=100).data) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    client.close()


def _crash_then_rerun(moment: str, tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "client.py"
    script.write_text(f"ROWS, HALF = {ROWS}, {ROWS // 2}\n" + CLIENT)
    state = tmp_path / "job.jsonl"
    server, url = _server(_CREATE_SECONDS.get(moment, 0.0))
    try:
        first = subprocess.Popen(
            [sys.executable, str(script), url, str(state), moment],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=tmp_path,
        )
        assert first.stdout is not None
        marker = first.stdout.readline()
        assert marker.strip() == "AT", (marker, first.stderr.read() if first.stderr else "")
        if moment == "during-create":
            _wait_for_batches(url, 1)  # made on the server, its answer still held back
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        again = subprocess.run(
            [sys.executable, str(script), url, str(state), "resume" if "/resume" in moment else "none"],
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(),
            cwd=tmp_path,
        )
        assert again.returncode == 0, again.stderr[-2000:]
        statuses = json.loads(again.stdout.strip().splitlines()[-1])["status"]
        per_row = _sent(url)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    return {
        "lost": sum(s != "ok" for s in statuses),
        "twice": sum(max(0, n - 1) for n in per_row.values()),
        "never_sent": sum(1 for i in range(ROWS) if per_row[f"k{i}"] == 0),
        "requests": sum(per_row.values()),
    }


def test_crash_matrix_batch(tmp_path: Path) -> None:
    places = [tmp_path / moment.replace("/", "-") for moment in MOMENTS]
    for place in places:
        place.mkdir()
    # Each moment has its own server, state file and processes, so three run side by side: most of
    # a moment is waiting (a process starting, a batch processing), and the suite stays short.
    with ThreadPoolExecutor(max_workers=3) as pool:
        rows = dict(zip(MOMENTS, pool.map(_crash_then_rerun, MOMENTS, places), strict=True))
    lines = [f"ck.batch crash matrix ({ROWS} rows, batches of 10, kill -9 then the same call again)"]
    lines.append(f"{'moment':<20}{'rows lost':>10}{'sent twice':>12}{'requests':>10}")
    for moment, r in rows.items():
        lines.append(f"{moment:<20}{r['lost']:>10}{r['twice']:>12}{r['requests']:>10}")
        note("crash matrix: ck.batch", moment, f"lost {r['lost']}, twice {r['twice']}")
    print("\n" + "\n".join(lines))
    assert all(r["lost"] == 0 and r["twice"] == 0 and r["never_sent"] == 0 for r in rows.values()), rows


def test_two_kernels_sharing_a_state_file_send_each_row_once(tmp_path: Path) -> None:
    script = tmp_path / "client.py"
    script.write_text(f"ROWS, HALF = {ROWS}, {ROWS // 2}\n" + CLIENT)
    state = tmp_path / "job.jsonl"
    server, url = _server(0.0)
    try:
        clients = [
            subprocess.Popen(
                [sys.executable, str(script), url, str(state), "none"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_env(),
                cwd=tmp_path,
            )
            for _ in range(2)
        ]
        outs = [c.communicate(timeout=120) for c in clients]
        per_row = _sent(url)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    for c, (out, err) in zip(clients, outs, strict=True):
        assert c.returncode == 0, err[-2000:]
        assert json.loads(out.strip().splitlines()[-1])["status"] == ["ok"] * ROWS
    print(f"\ntwo kernels, one state file: {sum(per_row.values())} requests for {ROWS} rows")
    assert sum(per_row.values()) == ROWS and max(per_row.values()) == 1
