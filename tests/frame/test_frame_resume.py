"""Resume in a new process: submit (or run) in one Python process, pick up in another.

The loopback server keeps the batches (one backend behind it, like the service), so each step runs in
a fresh interpreter, as after a kernel restart; what was sent is counted at the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import claudekit as ck
from claudekit.offline import BatchSettings, Fault, OfflineBackend, OfflineRequest

from .conftest import EchoResponder, calls, messages_sent

pytestmark = pytest.mark.timeout(120)

PRELUDE = """
import asyncio, json, sys
import pandas as pd
import claudekit as ck
URL, STATE = sys.argv[1], sys.argv[2]
df = pd.DataFrame({"id": [f"r{i}" for i in range(8)]}, index=[f"k{7 - i}" for i in range(8)])
def show(out):
    print(json.dumps({"index": out.index.tolist(), "text": out["claude_text"].tolist(),
                      "status": out["claude_status"].tolist(), "columns": list(out.columns)}, default=str))
"""


def run(tmp_path: Path, body: str, url: str, state: Path) -> dict[str, Any]:
    script = tmp_path / "step.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDEKIT_", "PYTEST_"))}
    env["CLAUDEKIT_RENDER"] = "0"
    done = subprocess.run(
        [sys.executable, str(script), url, str(state)],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


async def test_a_batch_submitted_in_one_process_is_resumed_in_another_without_resubmitting(tmp_path: Path):
    backend = OfflineBackend(responder=EchoResponder(), batches=BatchSettings(processing_seconds=30.0))
    state = tmp_path / "job.jsonl"
    df = pd.DataFrame({"id": [f"r{i}" for i in range(8)]}, index=[f"k{7 - i}" for i in range(8)])
    with backend.serve() as server:
        # This process submits and goes away (no wait) ...
        job = await ck.batch(
            df, "id={id}", base_url=server.base_url, api_key="offline", state=state, progress=False
        )
        assert job.status == "in_progress" and calls(backend, "POST", "/v1/messages/batches") == 1
        del job
        backend.advance(30.0)  # the batch ends on the server while no client is running

        # ... and a fresh interpreter picks it up from the state file alone.
        resumed = run(
            tmp_path,
            """
            job = ck.BatchJob.resume(STATE, base_url=URL, api_key="offline", poll_interval=0.01,
                                     progress=False)
            show(asyncio.run(job.wait()))
            """,
            server.base_url,
            state,
        )
        assert calls(backend, "POST", "/v1/messages/batches") == 1  # nothing submitted again
        assert messages_sent(backend) == 0
        assert resumed["index"] == [f"k{7 - i}" for i in range(8)]
        assert resumed["text"] == [f"answer for r{i}" for i in range(8)]
        assert set(resumed["status"]) == {"ok"}

        # Every row is finished now: re-attaching sends nothing at all.
        before = len(backend.http_log)
        again = await ck.BatchJob.resume(
            state, df=df, base_url=server.base_url, api_key="offline", progress=False
        )
        assert len(backend.http_log) == before
        assert again["claude_text"].tolist() == resumed["text"] and again.columns[0] == "id"


async def test_a_live_map_resumed_in_a_new_process_sends_only_the_unfinished_rows(tmp_path: Path):
    echo = EchoResponder()
    refuse = {"on": True}

    def responder(request: OfflineRequest) -> Any:
        if refuse["on"] and "id=r5" in request.last_user_text:
            return Fault.status(400, error_type="invalid_request_error", message="not this one")
        return echo(request)

    backend = OfflineBackend(responder=responder)
    state = tmp_path / "map.jsonl"
    df = pd.DataFrame({"id": [f"r{i}" for i in range(8)]}, index=[f"k{7 - i}" for i in range(8)])
    with backend.serve() as server:
        first = await ck.map(
            df, "id={id}", base_url=server.base_url, api_key="offline", state=state, progress=False
        )
        assert first["claude_status"].tolist().count("ok") == 7 and messages_sent(backend) == 8
        refuse["on"] = False
        second = run(
            tmp_path,
            """
            out = ck.map(df, "id={id}", base_url=URL, api_key="offline", state=STATE, progress=False)
            show(asyncio.run(out))
            """,
            server.base_url,
            state,
        )
        assert messages_sent(backend) == 9  # one request, for the one row that had not succeeded
        assert second["status"] == ["ok"] * 8 and second["text"][5] == "answer for r5"
