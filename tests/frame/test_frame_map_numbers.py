"""ck.map's numbers and stops: latency without the pacer's wait, long cells sent whole, a stuck job ends."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import claudekit as ck
from claudekit.offline import Fault, OfflineBackend, OfflineRequest
from claudekit.usage import UsageLog

from .conftest import EchoResponder, messages_sent

pytestmark = pytest.mark.timeout(90)


async def test_latency_and_started_at_exclude_the_pacers_wait():
    echo = EchoResponder()
    first = {"left": 1}

    def refuse_first(request: OfflineRequest) -> Any:
        if first["left"]:
            first["left"] = 0
            return Fault.status(429, retry_after=1.0)  # the pacer holds every attempt ~1 s after this
        return echo(request)

    backend = OfflineBackend(responder=refuse_first)
    log = UsageLog()
    df = pd.DataFrame({"id": [f"r{i}" for i in range(4)]})
    out = await ck.map(df, "id={id}", offline=backend, usage_log=log, max_retries=0, concurrency=4)

    assert (out["claude_status"] == "ok").all()
    assert out.attrs["claudekit"]["waited_s"] >= 0.5  # the pacer did wait
    ok = log.df[log.df["status"] == "ok"]
    assert len(ok) == 4
    # The offline backend answers in milliseconds: a latency near 1 s would be the pacer's wait.
    assert ok["latency_s"].max() < 0.5, ok["latency_s"].tolist()
    refused_at = log.df[log.df["status"] != "ok"]["timestamp"].min()
    waits = (ok["timestamp"] - refused_at).dt.total_seconds()
    assert waits.min() >= 0.5, waits.tolist()  # started when it was sent, after the wait


async def test_a_25000_character_cell_is_sent_whole():
    seen: list[str] = []

    def record(request: OfflineRequest) -> Any:
        seen.append(request.last_user_text)
        return "fine"

    backend = OfflineBackend(responder=record)
    long = "".join(f"{i:05d} " for i in range(25_000 // 6 + 1))[:25_000]
    df = pd.DataFrame({"text": [long, "short"]})
    out = await ck.map(df, "Summarise: {text}", offline=backend, max_tokens=50)

    assert (out["claude_status"] == "ok").all()
    assert messages_sent(backend) == 2
    sent = next(s for s in seen if s.startswith("Summarise: 0"))
    assert sent == "Summarise: " + long  # every character, no "[… truncated" note


async def test_a_resumed_map_says_what_it_reused_and_what_this_run_spent(backend: OfflineBackend, tmp_path):
    import io

    from claudekit.frame import LineProgress, set_progress_factory

    df = pd.DataFrame({"id": [f"r{i}" for i in range(6)]})
    state = tmp_path / "job.jsonl"
    first = await ck.map(df, "id={id}", offline=backend, state=state, progress=False)
    paid = first["claude_cost_usd"].sum()
    assert paid > 0 and first.attrs["claudekit"]["cost_usd"] == pytest.approx(paid)

    lines = io.StringIO()
    set_progress_factory(lambda _setting: LineProgress(lines))
    try:
        second = await ck.map(df, "id={id}", offline=backend, state=state)
    finally:
        set_progress_factory(None)
    assert messages_sent(backend) == 6  # the second run sent nothing
    info = second.attrs["claudekit"]
    assert info["reused"] == 6 and info["cost_usd"] == 0
    assert info["reused_cost_usd"] == pytest.approx(paid)
    # Summing this-run costs over both runs counts every answer once.
    assert first.attrs["claudekit"]["cost_usd"] + info["cost_usd"] == pytest.approx(paid)
    line = lines.getvalue().strip()
    assert "6 reused" in line and "$0.0000 this run" in line, line
