"""Replay extracted hold-out requests (extract.py's JSON lines) against the offline backend; print figures.

python tests/offline/holdout/replay.py IN.jsonl [--show]
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import sys
from typing import Any
from urllib.parse import urlsplit

import httpx2

from claudekit._base import _models
from claudekit.offline import OfflineBackend

COLLECTED = dt.date(2026, 12, 2)
_OI = (
    "python/instrumentation/openinference-instrumentation-anthropic/"
    "tests/openinference/anthropic/cassettes/test_instrumentor/"
)
# Recorded 200s the offline backend still refuses, on purpose (docs/offline.md, "Known differences"):
KNOWN_DIFFERENCES = {
    # A JPEG sent as image/png to claude-3-5-sonnet-20240620 in August 2025, answered 200; the service
    # refuses that mismatch with a 400 in later real traffic, which the offline rule follows.
    (_OI + "test_anthropic_instrumentation_image_input_messages.yaml", 0),
    (_OI + "test_anthropic_instrumentation_image_input_messages_with_stream.yaml", 0),
    # The Files API (POST /v1/files) is not served offline.
    ("lib/crewai/tests/cassettes/TestCrewMultimodalFileUpload.test_image_upload_anthropic.yaml", 0),
}


def served_on(model: Any) -> dt.date:
    spec = _models.lookup(model) if isinstance(model, str) else None
    if spec is None or spec.retires_on is None or spec.retires_on > COLLECTED:
        return COLLECTED
    return spec.retires_on - dt.timedelta(days=1)


def unique(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for rec in lines:
        key = json.dumps([urlsplit(rec["uri"]).path, rec["beta"], rec["body"], rec["status"]], sort_keys=True)
        seen.setdefault(key, rec)
    return list(seen.values())


def replay(rec: dict[str, Any]) -> httpx2.Response:
    body = rec["body"] if isinstance(rec["body"], dict) else {}
    backend = OfflineBackend(today=served_on(body.get("model")))
    url = urlsplit(rec["uri"])
    target = url.path + (f"?{url.query}" if url.query else "")
    headers = {"x-api-key": "k", **({"anthropic-beta": rec["beta"]} if rec["beta"] else {})}
    with httpx2.Client(transport=backend.transport(), base_url="http://offline.invalid") as http:
        if (rec.get("method") or "POST").upper() == "GET":
            return http.get(target, headers=headers)
        if "/v1/messages" in url.path and "count_tokens" not in url.path and "batches" not in url.path:
            body = {**body, "stream": False}
        return http.post(target, json=body, headers=headers)


def main(path: str, show: bool) -> None:
    with open(path) as f:
        recs = unique([json.loads(line) for line in f])
    recs = [r for r in recs if r["status"] is not None and "/v1/complete" not in r["uri"]]
    strict: collections.Counter[str] = collections.Counter()
    lenient: list[tuple[dict[str, Any], str]] = []
    by_repo: collections.Counter[str] = collections.Counter()
    n200 = n400 = 0
    for rec in recs:
        by_repo[rec["repo"]] += 1
        resp = replay(rec)
        if rec["status"] == 200:
            n200 += 1
            if resp.status_code != 200:
                msg = resp.json().get("error", {}).get("message", resp.text)[:160]
                strict[msg] += 1
                if show:
                    print("STRICT", rec["repo"], rec["path"], rec["index"], resp.status_code, msg)
        elif rec["status"] == 400:
            n400 += 1
            if resp.status_code < 400:
                lenient.append((rec, (rec.get("error") or "")[:300]))
            elif show:
                print(
                    "400 both",
                    rec["repo"],
                    rec["path"],
                    "| offline:",
                    resp.text[:150],
                    "| real:",
                    (rec.get("error") or "")[:200],
                )
    print("by repo:", dict(by_repo))
    print(f"recorded 200: {n200}; refused offline: {sum(strict.values())}")
    for msg, n in strict.most_common():
        print(f"  {n:4d}  {msg}")
    print(f"recorded 400: {n400}; accepted offline: {len(lenient)}")
    for rec, err in lenient:
        print("  ", rec["repo"], rec["path"], err)
    others = collections.Counter(r["status"] for r in recs if r["status"] not in (200, 400))
    print("other statuses (not counted):", dict(others))


if __name__ == "__main__":
    main(sys.argv[1], "--show" in sys.argv)
