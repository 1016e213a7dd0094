"""Real clients against ``python -m claudekit.offline`` in its own process (issue 24).

The installed anthropic SDK's threads (``tool_runner`` and ``thread()``), every beta real clients send, legacy
structured output, forced tool choice, a burst of concurrent clients, a browser preflight, Claude Code's first
request, and the server's answers to broken HTTP.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import jsonschema
import pytest
from anthropic import beta_tool
from offline_helpers import MODEL, WEATHER_TOOL, user

THREADS = "message-threads-2026-08-12"
# Issue 24 item 1: Claude Code's first request and the 7 litellm betas the backend refused.
CLIENT_BETAS = [
    "claude-code-20250219",
    "prompt-caching-scope-2026-01-05",
    "thinking-token-count-2026-05-13",
    "context-management-2025-06-27",
    "effort-2025-11-24",
    "afk-mode-2026-01-31",
    "dangerous-tool-use-2026-09-03",
    "per-turn-control-2026-07-01",
    "redact-thinking-2026-02-12",
    "tool-search-tool-2025-10-19",
    "web-search-2025-03-05",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "claudekit.offline", "--port", str(port), "--event-delay", "0"]
    cmd += ["--idle-timeout", "1", "--request-timeout", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        assert f":{port}" in proc.stdout.readline().decode()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client(base_url: str, **kw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="offline", base_url=base_url, max_retries=0, **kw)


def post(base_url: str, body: dict[str, Any], betas: list[str] | None = None) -> httpx2.Response:
    headers = {"x-api-key": "offline", "anthropic-version": "2023-06-01"}
    if betas:
        headers["anthropic-beta"] = ",".join(betas)
    return httpx2.post(f"{base_url}/v1/messages", json=body, headers=headers, timeout=10)


# -- message threads ---------------------------------------------------------------------------------


def test_tool_runner_with_threads_sends_only_what_is_new(base_url: str) -> None:
    sent: list[dict[str, Any]] = []

    def record(request: httpx2.Request) -> None:
        if request.url.path == "/v1/messages":
            sent.append(json.loads(request.content))

    http = httpx2.Client(event_hooks={"request": [record]})

    @beta_tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        return f"Sunny, 21C in {city}"

    runner = client(base_url, http_client=http).beta.messages.tool_runner(
        model=MODEL,
        max_tokens=500,
        system="You are a terse weather assistant.",
        tools=[get_weather],
        messages=[user("What is the weather in Lima?")],
    )
    replies = list(runner)
    assert [b.type for b in replies[0].content] == ["text", "tool_use"]
    assert "Sunny, 21C in Lima" in replies[-1].content[0].text  # answered from the tool's result
    first, second = sent
    assert first["thread"] == {"type": "create"} and "tools" in first and "system" in first
    assert second["thread"] == {"type": "continue", "previous_message_id": replies[0].id}
    assert "tools" not in second and "system" not in second
    assert [b["type"] for b in second["messages"][0]["content"]] == ["tool_result"]
    # The server answered the continue as the whole conversation: more input than the delta alone.
    assert replies[1].usage.input_tokens > replies[0].usage.input_tokens


def test_thread_helper_keeps_system_and_history(base_url: str) -> None:
    c = client(base_url)
    system = "Answer like a pirate. " * 20
    thread = c.beta.messages.thread(model=MODEL, max_tokens=300, system=system)
    one = thread.send(user("Where is the treasure?"))
    two = thread.send(user("And the map?"))
    unthreaded = c.messages.create(model=MODEL, max_tokens=300, messages=[user("And the map?")])
    # 337 → 9 in the issue: the continue lost system and history. Now it carries both.
    assert two.usage.input_tokens > one.usage.input_tokens > unthreaded.usage.input_tokens
    assert "And the map?" in two.content[0].text


def test_thread_errors_have_the_service_codes(base_url: str) -> None:
    created = post(base_url, {**_body("hi"), "thread": {"type": "create"}}, [THREADS])
    assert created.status_code == 200, created.text
    cont = {**_body("again"), "thread": {"type": "continue", "previous_message_id": created.json()["id"]}}
    cont["messages"] = [user("again")]
    assert post(base_url, cont, [THREADS]).status_code == 200
    again = post(base_url, cont, [THREADS])
    assert again.status_code == 400
    assert again.json()["error"]["details"] == {"error_code": "thread_already_continued"}
    lost = {**cont, "thread": {"type": "continue", "previous_message_id": "msg_01nowhere"}}
    gone = post(base_url, lost, [THREADS])
    assert gone.status_code == 404 and gone.json()["error"]["details"]["error_code"] == "thread_not_found"
    with_tools = {**cont, "tools": [WEATHER_TOOL]}
    assert post(base_url, with_tools, [THREADS]).status_code == 400
    no_beta = post(base_url, {**_body("hi"), "thread": {"type": "create"}})
    assert no_beta.status_code == 400 and "thread" in no_beta.json()["error"]["message"]


def _body(text: str, **kw: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 200, "messages": [user(text)], **kw}


# -- what real clients send ------------------------------------------------------------------------


def test_every_beta_real_clients_send_is_taken(base_url: str) -> None:
    resp = post(base_url, _body("hello"), CLIENT_BETAS)
    assert resp.status_code == 200, resp.text
    bad = post(base_url, _body("hello"), ["not a beta"])
    assert bad.status_code == 400 and "`not a beta`" in bad.json()["error"]["message"]


ORDER_SCHEMA: dict[str, Any] = {
    "$defs": {
        "Item": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
            "required": ["name", "qty"],
            "additionalProperties": False,
        }
    },
    "type": "object",
    "properties": {
        "customer": {"type": "string"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
    },
    "required": ["customer", "items"],
    "additionalProperties": False,
}


def test_legacy_output_format_is_answered_with_schema_valid_json(base_url: str) -> None:
    # litellm's response_format=Model: the beta top-level output_format, a schema with $defs/$ref.
    body = _body('Order for customer "Ada": 2 apples')
    body["output_format"] = {"type": "json_schema", "schema": ORDER_SCHEMA}
    resp = post(base_url, body, ["structured-outputs-2025-11-13"])
    assert resp.status_code == 200, resp.text
    value = json.loads(resp.json()["content"][0]["text"])
    jsonschema.validate(value, ORDER_SCHEMA)
    assert value["customer"] == "Ada" and value["items"]


@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "get_weather"}])
def test_forced_tool_choice_writes_no_text_first(base_url: str, choice: dict[str, Any]) -> None:
    msg = client(base_url).messages.create(
        model=MODEL,
        max_tokens=300,
        tools=[WEATHER_TOOL],
        tool_choice=choice,
        messages=[user("weather in Rome")],
    )
    assert [b.type for b in msg.content] == ["tool_use"]
    assert msg.content[0].input == {"city": "Rome"}


def test_64_concurrent_requests_without_retries_are_all_answered(base_url: str) -> None:
    start = threading.Barrier(64)

    def one(i: int) -> str:
        with client(base_url) as c:
            start.wait()  # one burst, as a notebook's ck.map or a test suite sends it
            return (
                c.messages.create(model=MODEL, max_tokens=100, messages=[user(f"ping {i}")]).content[0].text
            )

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        texts = list(pool.map(one, range(64)))
    assert all(f"ping {i}" in text for i, text in enumerate(texts))
    # On Linux a full accept queue drops SYNs (the client retries after a second) where macOS resets: the
    # burst above passes either way here, so check the queue itself (socketserver's default is 5).
    port = base_url.rsplit(":", 1)[1]
    listing = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True)
    backlog = int(listing.stdout.split()[2])
    assert backlog >= 64, listing.stdout


def test_browser_preflight_and_cors(base_url: str) -> None:
    origin = "http://localhost:5173"
    asked = "anthropic-dangerous-direct-browser-access,anthropic-version,content-type,x-api-key"
    pre = httpx2.request(
        "OPTIONS",
        f"{base_url}/v1/messages",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": asked,
        },
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == origin
    assert "anthropic-dangerous-direct-browser-access" in pre.headers["access-control-allow-headers"]
    assert "POST" in pre.headers["access-control-allow-methods"]
    browser = client(
        base_url, default_headers={"origin": origin, "anthropic-dangerous-direct-browser-access": "true"}
    )
    raw = browser.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=[user("hi")])
    assert raw.headers["access-control-allow-origin"] == origin


# -- Claude Code's first request ---------------------------------------------------------------------


def _agent_tool(name: str, description: str, props: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "properties": props, "required": list(props)}
    return {"name": name, "description": description, "input_schema": schema}


AGENT_TOOLS = [
    _agent_tool(
        "Agent",
        "Launch a new agent to handle complex, multi-step tasks. Say what the agent should do and "
        "hello to the user when done; use it to search, read and answer questions.",
        {"description": {"type": "string"}, "prompt": {"type": "string"}},
    ),
    _agent_tool(
        "Bash", "Executes a given bash command. Say what it does first.", {"command": {"type": "string"}}
    ),
    _agent_tool("Read", "Reads a file from the local filesystem.", {"file_path": {"type": "string"}}),
    _agent_tool(
        "CronCreate",
        "Schedule a prompt to run on a cron schedule; say hello daily.",
        {"cron": {"type": "string"}},
    ),
    _agent_tool("TodoWrite", "Create and manage a structured task list.", {"todos": {"type": "string"}}),
    _agent_tool(
        "WebSearch", "Search the web for what to buy, news, hello world.", {"query": {"type": "string"}}
    ),
]


def test_claude_code_say_hello_is_answered_within_three_requests(base_url: str) -> None:
    reminder = (
        "<system-reminder>As you answer the user's questions, you can use the Agent, Bash, Read and "
        "WebSearch tools. Use TodoWrite to track tasks. What car to buy?</system-reminder>"
    )
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [{"type": "text", "text": reminder}, {"type": "text", "text": "Say hello"}],
        }
    ]
    c = client(base_url)
    system = [
        {"type": "text", "text": "You are Claude Code. Use the tools (Agent, Bash, Read) to help the user."}
    ]
    for requests in range(1, 4):  # noqa: B007 (read after the loop)
        msg = c.beta.messages.create(
            model=MODEL,
            max_tokens=1000,
            system=system,
            tools=AGENT_TOOLS,
            messages=messages,
            betas=CLIENT_BETAS[:5],
        )
        if msg.stop_reason != "tool_use":
            break
        messages.append(
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]}
        )
        results = [
            {"type": "tool_result", "tool_use_id": b.id, "content": "done"}
            for b in msg.content
            if b.type == "tool_use"
        ]
        messages.append({"role": "user", "content": results})
    assert msg.stop_reason == "end_turn" and requests <= 3
    assert "Say hello" in msg.content[0].text


# -- broken HTTP ------------------------------------------------------------------------------------


def _raw(base_url: str, data: bytes, wait: float = 5.0) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def _request(length: str, body: bytes = b"") -> bytes:
    head = (
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: offline\r\ncontent-type: application/json\r\n"
        f"content-length: {length}\r\n\r\n"
    )
    return head.encode() + body


@pytest.mark.parametrize(
    ("length", "body", "status"),
    [("abc", b"{}", b"400"), ("-5", b"{}", b"400"), ("999999999999", b"{}", b"413"), ("100", b"{}", b"408")],
)
def test_bad_content_length_gets_an_answer(base_url: str, length: str, body: bytes, status: bytes) -> None:
    answer = _raw(base_url, _request(length, body))
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert b'"type": "error"' in answer


def test_deeply_nested_json_is_a_400(base_url: str) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    answer = _raw(base_url, _request(str(len(deep)), deep))
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


def test_idle_and_slowloris_connections_are_closed(base_url: str) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    assert _raw(base_url, b"", wait=10) == b""  # idle: closed after --idle-timeout 1
    assert time.monotonic() - started < 5
    with socket.create_connection((host, int(port)), timeout=10) as s:
        started = time.monotonic()
        closed = False
        for byte in b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n" * 10:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.2)  # each byte well inside the idle timeout
            if time.monotonic() - started > 6:
                break
        if not closed:
            s.settimeout(2)
            try:
                closed = s.recv(1024) == b""
            except (TimeoutError, ConnectionResetError):
                closed = False
    assert closed and time.monotonic() - started < 6  # cut at the request deadline (1 + 2 s)


def test_text_completions_says_it_was_removed(base_url: str) -> None:
    resp = httpx2.post(
        f"{base_url}/v1/complete",
        headers={"x-api-key": "offline"},
        json={"model": MODEL, "prompt": "\n\nHuman: hi\n\nAssistant:", "max_tokens_to_sample": 5},
    )
    assert resp.status_code == 404 and "removed" in resp.json()["error"]["message"]
    assert "/v1/messages" in resp.json()["error"]["message"]
