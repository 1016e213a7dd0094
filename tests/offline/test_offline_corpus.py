"""Recorded real traffic against the offline backend (shared/fixtures/anthropic/sse, see its SOURCES.md).

Every recorded request was answered 200 by the service, so the offline backend must accept it; and the
recorded reply (thinking with the service's signatures, server tool blocks, redacted thinking) must be
continuable offline: request + recorded assistant turn + a next user turn is accepted too.

The service validated each request on the day it was recorded; the recordings carry no date, so each one
is replayed on a day its model was still served (the day before a retirement, or the collection date).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from claudekit._base import _models
from claudekit.offline import OfflineBackend

FIXTURES = Path(__file__).parents[2].parent / "shared" / "fixtures" / "anthropic" / "sse"
COLLECTED = dt.date(2026, 11, 22)  # SOURCES.md: "collected 2026-11-22"
# pydantic-ai records ?beta=true requests without their headers; these are the betas their features need.
BETAS = {
    "pydantic-ai__mcp_tool_use": "mcp-client-2025-04-04",
    "pydantic-ai__advisor_tool": "advisor-tool-2026-03-01",
}

pytestmark = pytest.mark.skipif(
    not (FIXTURES / "requests").is_dir(),
    reason=f"the shared recorded fixtures are not beside the checkout ({FIXTURES} is missing)",
)


def _names() -> list[str]:
    if not (FIXTURES / "requests").is_dir():
        return []
    found = (FIXTURES / "requests").glob("*.request.json")
    return sorted(p.name.removesuffix(".request.json") for p in found)


def _served_on(model: str) -> dt.date:
    spec = _models.lookup(model)
    if spec is None or spec.retires_on is None or spec.retires_on > COLLECTED:
        return COLLECTED
    return spec.retires_on - dt.timedelta(days=1)


def _post(backend: OfflineBackend, body: dict[str, Any], beta: str | None) -> httpx2.Response:
    headers = {"x-api-key": "k", **({"anthropic-beta": beta} if beta else {})}
    with httpx2.Client(transport=backend.transport(), base_url="http://offline.invalid") as http:
        return http.post("/v1/messages", json={**body, "stream": False}, headers=headers)


def _recorded_reply(name: str) -> dict[str, Any] | None:
    """The recorded stream as the SDK's beta stream accumulates it (None if the SDK cannot)."""
    raw = (FIXTURES / f"{name}.sse").read_bytes()
    transport = httpx2.MockTransport(
        lambda request: httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=raw)
    )
    client = anthropic.Anthropic(api_key="x", http_client=httpx2.Client(transport=transport), max_retries=0)
    try:
        with client.beta.messages.stream(model="m", max_tokens=1, messages=[]) as stream:
            final = stream.get_final_message()
    except Exception:  # the fixture's SDK outcome is recorded in EXPECTED.json; not this test's subject
        return None
    return final.model_dump(mode="json", exclude_none=True)


def _next_turn(content: list[dict[str, Any]]) -> dict[str, Any]:
    results = [
        {"type": "tool_result", "tool_use_id": b["id"], "content": "ok"}
        for b in content
        if b.get("type") == "tool_use"
    ]
    return {"role": "user", "content": results or "Thanks. And then?"}


_REPLY_FIELDS = {  # what a client sends back of each response block (the SDK's param types)
    "text": {"type", "text", "citations"},
    "thinking": {"type", "thinking", "signature"},
    "redacted_thinking": {"type", "data"},
    "tool_use": {"type", "id", "name", "input", "caller"},
    "server_tool_use": {"type", "id", "name", "input", "caller"},
}


def _as_param(block: dict[str, Any]) -> dict[str, Any]:
    keep = _REPLY_FIELDS.get(block["type"])
    return {k: v for k, v in block.items() if keep is None or k in keep}


@pytest.mark.parametrize("name", _names())
def test_recorded_request_is_accepted(name: str) -> None:
    body = json.loads((FIXTURES / "requests" / f"{name}.request.json").read_text())
    backend = OfflineBackend(today=_served_on(body["model"]))
    resp = _post(backend, body, BETAS.get(name))
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("name", _names())
def test_recorded_conversation_continues_offline(name: str) -> None:
    body = json.loads((FIXTURES / "requests" / f"{name}.request.json").read_text())
    reply = _recorded_reply(name)
    if reply is None or not reply.get("content") or reply.get("stop_reason") == "refusal":
        pytest.skip("the SDK does not accumulate this recording, or it ends in a refusal")
    content = [_as_param(b) for b in reply["content"]]
    messages = [*body["messages"], {"role": "assistant", "content": content}, _next_turn(content)]
    backend = OfflineBackend(today=_served_on(body["model"]))
    resp = _post(backend, {**body, "messages": messages}, BETAS.get(name))
    assert resp.status_code == 200, resp.text
