"""The loopback server: sync SDK, curl --no-buffer, and ``python -m claudekit.offline``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import anthropic
import pytest
from offline_helpers import MODEL, WEATHER_TOOL, user

from claudekit.offline import OfflineBackend, OfflineServer, Script, Turn

BODY = {"model": MODEL, "max_tokens": 300, "stream": True, "messages": [user("Stream a reply about rivers")]}


def test_sync_sdk_client_against_loopback(server: OfflineServer) -> None:
    client = anthropic.Anthropic(api_key="offline", base_url=server.base_url)
    with client.messages.stream(
        model=MODEL,
        max_tokens=2048,
        tools=[WEATHER_TOOL],
        messages=[user("weather in Lima?")],
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[2].input == {"city": "Lima"}
    created = client.messages.create(model=MODEL, max_tokens=50, messages=[user("plain")])
    assert created.content[0].text.startswith("(offline) ")
    assert (
        client.messages.count_tokens(model=MODEL, messages=[user("plain")]).input_tokens
        == created.usage.input_tokens
    )


def test_curl_no_buffer_streams_incrementally() -> None:
    backend = OfflineBackend(
        responder=Script([Turn(text=" ".join(f"word{i}" for i in range(60)))]), event_delay=0.02
    )
    with backend.serve() as server:
        proc = subprocess.Popen(
            [
                "curl",
                "-sS",
                "--no-buffer",
                f"{server.base_url}/v1/messages",
                "-H",
                "x-api-key: offline",
                "-H",
                "content-type: application/json",
                "-d",
                json.dumps(BODY),
            ],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        started = time.monotonic()
        first = proc.stdout.readline()
        first_at = time.monotonic() - started
        rest = proc.stdout.read()
        total = time.monotonic() - started
        proc.wait(timeout=10)
    assert first == b"event: message_start\n"
    assert first_at < total / 2  # the first event arrived long before the stream ended
    assert b"event: message_stop" in rest and proc.returncode == 0


def test_curl_error_shape_and_request_id_header(server: OfflineServer) -> None:
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-i",
            f"{server.base_url}/v1/messages",
            "-H",
            "x-api-key: offline",
            "-H",
            "content-type: application/json",
            "-d",
            json.dumps({"model": MODEL, "messages": [user("x")]}),
        ],
        capture_output=True,
        check=True,
    ).stdout.decode()
    head, _, body = out.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400")
    assert "request-id: req_" in head.lower()
    err = json.loads(body)
    assert err["error"]["type"] == "invalid_request_error" and err["request_id"] in head


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_python_dash_m_server() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claudekit.offline",
            "--port",
            str(port),
            "--event-delay",
            "0",
            "--today",
            "2026-12-01",
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline().decode()
        assert f"http://127.0.0.1:{port}" in banner
        client = anthropic.Anthropic(api_key="offline", base_url=f"http://127.0.0.1:{port}", max_retries=0)
        msg = client.messages.create(model=MODEL, max_tokens=50, messages=[user("ping from a subprocess")])
        assert "ping from a subprocess" in msg.content[0].text
        # client.models.list() works against it too: newest first, retired models left out.
        ids = [m.id for m in client.models.list()]
        assert ids[0] == "claude-fable-5-2" and "claude-sonnet-4-6" in ids
        assert "claude-3-opus-20240229" not in ids
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_server_close_frees_port(backend: OfflineBackend) -> None:
    server = backend.serve()
    port = server.port
    server.close()
    with socket.socket() as s, pytest.raises(OSError):
        s.settimeout(0.5)
        s.connect(("127.0.0.1", port))
