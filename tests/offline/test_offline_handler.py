"""Transports and the server take a handler callable, as httpx's ``MockTransport(handler)`` does.

Issue 22: none of them imports the backend; a backend is one such handler.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import anthropic
import httpx2
from offline_helpers import MODEL, user

from claudekit.offline import (
    OfflineAsyncTransport,
    OfflineBackend,
    OfflineServer,
    OfflineTransport,
    Script,
    Turn,
)
from claudekit.offline._wire import Reply, json_reply


def teapot(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
    """A plain function, no backend behind it: every request is a 418 naming what was asked."""
    return json_reply(418, {"method": method, "path": path, "body": body.decode()}, "req_teapot")


def test_sync_transport_answers_with_a_plain_function() -> None:
    with httpx2.Client(transport=OfflineTransport(teapot), base_url="http://offline") as client:
        response = client.post("/v1/anything?x=1", content=b"hello")
    assert response.status_code == 418
    assert response.json() == {"method": "POST", "path": "/v1/anything?x=1", "body": "hello"}


async def test_async_transport_answers_with_a_plain_function() -> None:
    transport = OfflineAsyncTransport(teapot)
    async with httpx2.AsyncClient(transport=transport, base_url="http://offline") as client:
        response = await client.get("/v1/pot")
    assert (response.status_code, response.headers["request-id"]) == (418, "req_teapot")


def test_server_serves_a_plain_function_over_http() -> None:
    # A function stored on the request-handler class must not be bound to it as a method.
    with OfflineServer(teapot).start() as server:
        response = httpx2.put(server.base_url + "/tea", content=b"earl grey")
    assert response.status_code == 418
    assert json.loads(response.content) == {"method": "PUT", "path": "/tea", "body": "earl grey"}


def test_a_backend_is_a_handler_and_the_server_still_takes_one() -> None:
    backend = OfflineBackend(Script([Turn(text="served")]))
    with OfflineServer(backend).start() as server:
        client = anthropic.Anthropic(api_key="offline", base_url=server.base_url)
        reply = client.messages.create(model=MODEL, max_tokens=20, messages=[user("hi")])
    assert reply.content[0].type == "text" and reply.content[0].text == "served"
    assert server.backend is backend
    assert backend.http_log[-1] == ("POST", "/v1/messages")
