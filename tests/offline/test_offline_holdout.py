"""Shapes found only by the hold-out check (other projects' recorded traffic, see holdout/SOURCES.md).

Each request here is built in the shape of a recorded request the service answered 200 and the offline
backend refused before its rule was fixed. A recorded corpus, when one is extracted locally with
holdout/extract.py, is replayed too (CLAUDEKIT_HOLDOUT=path/to/corpus.jsonl); it is not committed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import httpx2
import pytest
from offline_helpers import WEATHER_TOOL, user

from claudekit.offline import OfflineBackend


def _post(
    today: str, body: dict[str, Any], beta: str | None = None, path: str = "/v1/messages"
) -> httpx2.Response:
    headers = {"x-api-key": "k", **({"anthropic-beta": beta} if beta else {})}
    with httpx2.Client(
        transport=OfflineBackend(today=today).transport(), base_url="http://offline.invalid"
    ) as http:
        return http.post(path, json=body, headers=headers)


# openinference's and openllmetry's cassettes (claude-2.1), agentops' and crewAI's (claude-3-sonnet-20240229):
# retired models are still models the service knew; before their retirement day they were served.
@pytest.mark.parametrize(
    ("model", "last_day"),
    [
        ("claude-2.1", "2025-07-20"),
        ("claude-2.0", "2025-07-20"),
        ("claude-3-sonnet-20240229", "2025-07-20"),
        ("claude-instant-1.2", "2024-11-05"),
    ],
)
def test_legacy_model_served_until_its_retirement(model: str, last_day: str) -> None:
    body = {"model": model, "max_tokens": 1024, "messages": [user("Tell me a joke about OpenTelemetry")]}
    assert _post(last_day, body).status_code == 200
    after = (dt.date.fromisoformat(last_day) + dt.timedelta(days=2)).isoformat()
    resp = _post(after, body)
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == f"model: {model}"


def test_legacy_model_keeps_its_output_limit() -> None:
    body = {"model": "claude-2.1", "max_tokens": 8192, "messages": [user("hi")]}
    resp = _post("2025-01-01", body)
    assert resp.status_code == 400
    assert "max_tokens" in resp.json()["error"]["message"]


# traceloop/openllmetry test_async_anthropic_beta_message_stream_manager_legacy.yaml: the 2024 tools beta
# sent with the beta messages stream; answered 200.
def test_tools_beta_of_2024_is_a_known_beta() -> None:
    body = {
        "model": "claude-3-5-haiku-20241022",
        "max_tokens": 1024,
        "tools": [WEATHER_TOOL],
        "messages": [user("What is the weather in Paris?")],
    }
    resp = _post("2025-06-01", body, beta="tools-2024-04-04", path="/v1/messages?beta=true")
    assert resp.status_code == 200, resp.text


def test_an_unknown_well_formed_beta_is_taken_and_a_malformed_one_refused() -> None:
    # The service takes a beta name it does not know (issue 24: Claude Code's and litellm's newer betas get
    # 200s); a value that is no beta name at all is still the documented 400.
    body = {"model": "claude-3-5-haiku-20241022", "max_tokens": 16, "messages": [user("hi")]}
    resp = _post("2025-06-01", body, beta="tools-2099-01-01", path="/v1/messages?beta=true")
    assert resp.status_code == 200, resp.text
    resp = _post("2025-06-01", body, beta="tools beta please", path="/v1/messages?beta=true")
    assert resp.status_code == 400
    assert "tools beta please" in resp.json()["error"]["message"]


def _corpus() -> list[dict[str, Any]]:
    path = os.environ.get("CLAUDEKIT_HOLDOUT")
    if not path or not Path(path).is_file():
        return []
    from holdout.replay import KNOWN_DIFFERENCES, unique

    lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [
        r
        for r in unique(lines)
        if r["status"] == 200
        and "/v1/complete" not in r["uri"]
        and (r["path"], r["index"]) not in KNOWN_DIFFERENCES
    ]


@pytest.mark.skipif(not _corpus(), reason="no hold-out corpus extracted (set CLAUDEKIT_HOLDOUT)")
@pytest.mark.parametrize("rec", _corpus(), ids=lambda r: f"{r['repo']}:{Path(r['path']).stem}:{r['index']}")
def test_holdout_recorded_request_is_accepted(rec: dict[str, Any]) -> None:
    from holdout.replay import replay

    resp = replay(rec)
    assert resp.status_code == 200, resp.text
