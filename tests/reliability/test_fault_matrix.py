"""Fault matrix over real loopback HTTP: every fault, at many points, on text, thinking and tool replies.

For each case: the outcome is the claudekit error the fault calls for (one readable line) or success
where the fault is survivable; the partial text, thinking and tool arguments on the reply equal what
the server had delivered (read from the server's own record of the bytes it wrote, with this
package's own SSE reader); ``chat.usage`` logs the call with the right status and no placeholder
counts; the history is valid, and the next prompt on the same chat is accepted by the backend's
validator. No tool runs unless its call arrived complete.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2
import pytest

import claudekit as ck
from claudekit.offline import Fault, OfflineBackend, OfflineServer, ToolCall, Turn

from ._support import FULL, RecordingBackend, Seen, count, is_partial_of, read_sse

MODEL = "claude-sonnet-4-6"
PROMPT = "Plan a short trip, please."
LONG_TEXT = (
    "Here is a plan. Day one: walk along the river, see the cathedral and eat crêpes. "
    "Day two: museums — the Louvre opens at nine, so go early; then Montmartre at sunset. "
    "Day three: a day trip to Versailles (book ahead!) and back for dinner. "
    "Budget about €120 a day. “Quotes”, emoji ✓ and a backslash \\ to keep the encoder honest."
)
THINKING = (
    "The user wants a short trip plan. Three days fits 'short'. Paris is a safe default; mention "
    "costs, opening hours and one day trip. Keep it concise and concrete."
)
ARGS_A: dict[str, Any] = {
    "city": 'Paris "Île-de-France" ✓',
    "days": 12345,
    "tags": ["a\\b", "ünïcode", "x" * 30],
    "nested": {"k": [1, 2.5, None, True], "s": "line\nbreak"},
}
ARGS_B: dict[str, Any] = {"city": "Lyon", "days": 2, "tags": [], "nested": {}}

SHAPES: dict[str, Turn] = {
    "text": Turn(text=LONG_TEXT),
    "thinking": Turn(thinking=THINKING, text=LONG_TEXT),
    "tool": Turn(
        text="Let me look that up.", tool_calls=[ToolCall("lookup", ARGS_A), ToolCall("lookup", ARGS_B)]
    ),
    "thinking_tool": Turn(thinking=THINKING, text="Checking.", tool_calls=[ToolCall("lookup", ARGS_A)]),
}
FULL_ARGS = {"tool": [ARGS_A, ARGS_B], "thinking_tool": [ARGS_A]}

RUNS: list[tuple[str, dict[str, Any]]] = []  # (case id, arguments) of every tool execution
_current: contextvars.ContextVar[str] = contextvars.ContextVar("case", default="?")


@ck.tool
def lookup(city: str, days: int, tags: list[str], nested: dict[str, Any]) -> str:
    """Look up travel facts.

    Args:
        city: The city.
        days: Trip length.
        tags: Interests.
        nested: Anything else.
    """
    RUNS.append((_current.get(), {"city": city, "days": days, "tags": tags, "nested": nested}))
    return f"{city}: fine weather"


# -- the cases ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    shape: str
    fault: Fault
    fault_times: int | None = None  # None: every attempt; n: only the first n attempts
    retries: int = 0
    read_timeout: float = 20.0


def _request_body(shape: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 8192,
        "stream": True,
        "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
        "tools": [lookup.to_param()],
    }
    if "thinking" in shape:
        body["thinking"] = {"type": "enabled", "budget_tokens": 2048}
    return body


def _reference(shape: str) -> bytes:
    """The unfaulted body for a shape, straight from an in-process backend (for choosing cut offsets)."""
    backend = OfflineBackend(lambda _req: SHAPES[shape], signing_key=b"ref")
    reply = backend.handle(
        "POST", "/v1/messages", {"x-api-key": "k"}, json.dumps(_request_body(shape)).encode()
    )
    return reply.body


def _cut_offsets(body: bytes, n: int) -> list[int]:
    ends = [i + 2 for i in range(len(body)) if body[i : i + 2] == b"\n\n"]
    even = [round(k * len(body) / (n - 1)) for k in range(n)] if n > 1 else [0]
    picked = set(even)
    # Event boundaries and one byte short of them: the edges where a decoder can go wrong.
    step = max(1, len(ends) // max(1, n // 2))
    for e in ends[::step]:
        picked.update({e, e - 1})
    picked.update({0, len(body)})
    return sorted(p for p in picked if 0 <= p <= len(body))


def _cases() -> list[Case]:
    out: list[Case] = []
    n_cuts = 22 if FULL else 5
    for shape in SHAPES:
        ref = _reference(shape)
        n_events = ref.count(b"\n\n")
        for off in _cut_offsets(ref, n_cuts):
            out.append(Case(f"{shape}-cut{off}", shape, Fault.cut(after_bytes=off)))
        statuses: list[tuple[int, int | None]] = [(429, None), (429, 1), (500, None), (529, None)]
        if FULL:
            statuses += [(500, 1), (529, 2), (503, None), (529, 1)]
        for code, times in statuses:
            label = "always" if times is None else f"x{times}"
            out.append(
                Case(
                    f"{shape}-http{code}-{label}",
                    shape,
                    Fault.status(code, retry_after=0.01),
                    fault_times=times,
                    retries=2,
                )
            )
        ev_points = [3, n_events // 2, n_events - 3] if FULL else [n_events // 2]
        for i, at in enumerate(ev_points):
            etype = ("overloaded_error", "api_error", "rate_limit_error")[i % 3]
            out.append(
                Case(
                    f"{shape}-error_event{at}-{etype}",
                    shape,
                    Fault.error_event(after_events=at, error_type=etype),
                )
            )
        mal_points = [2, 4, n_events // 2, n_events - 2] if FULL else [2, n_events // 2]
        for at in mal_points:
            out.append(Case(f"{shape}-malformed{at}", shape, Fault.malformed_json(after_events=at)))
        stall_points = [0, 3, n_events - 1] if FULL else [n_events // 2]
        for at in stall_points:
            out.append(Case(f"{shape}-stall{at}", shape, Fault.stall(2.0, after_events=at), read_timeout=0.5))
        out.append(Case(f"{shape}-truncated_tool_json", shape, Fault.truncated_tool_json()))
        out.append(Case(f"{shape}-unknown_block", shape, Fault.unknown_block("mystery_block")))
    # A stall before the headers that the SDK's retry survives.
    out.append(
        Case("text-stall0-retried", "text", Fault.stall(2.0), fault_times=1, retries=1, read_timeout=0.5)
    )
    return out


CASES = {c.id: c for c in _cases()}
_attempts: dict[str, int] = {}
_lock = threading.Lock()


def respond(req: Any) -> Turn:
    case = CASES[req.headers["x-case"]]
    from ._support import purpose

    why = purpose(req.body)
    if why == "next":
        return Turn(text="Next answer.")
    if why == "tools":
        return Turn(text="Tools done.")
    with _lock:
        n = _attempts[case.id] = _attempts.get(case.id, 0) + 1
    fault = case.fault if case.fault_times is None or n <= case.fault_times else None
    return dataclasses.replace(SHAPES[case.shape], fault=fault)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[RecordingBackend, OfflineServer]]:
    backend = RecordingBackend(respond, signing_key=b"matrix")
    with backend.serve() as srv:
        yield backend, srv


# -- what each fault must lead to, from what the server delivered ------------------------------------

_BY_TYPE = {
    "overloaded_error": ck.OverloadedError,
    "api_error": ck.ServerError,
    "rate_limit_error": ck.RateLimitError,
}
_BY_STATUS = {429: ck.RateLimitError, 500: ck.ServerError, 503: ck.ServerError, 529: ck.OverloadedError}


def expected_error(case: Case, status: int, seen: Seen) -> type[ck.ClaudekitError] | None:
    kind = case.fault.kind
    if status != 200:
        return _BY_STATUS[status]
    if seen.error_type is not None:
        return _BY_TYPE[seen.error_type]
    if seen.malformed:
        return ck.MalformedStreamError
    if seen.stopped:
        return None  # everything arrived: whatever happened afterwards, the answer is complete
    if kind == "cut":
        return ck.NetworkError
    if kind == "stall":
        return ck.TimeoutError
    return None


def expected_status(err: type[ck.ClaudekitError] | None, status: int, seen: Seen) -> str:
    if err is None:
        return "ok"
    if issubclass(err, ck.APIError):
        if status != 200:
            return {429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
        assert seen.error_type is not None
        return seen.error_type
    # claudekit's own errors are logged in the API's style of error types.
    return {
        ck.NetworkError: "network_error",
        ck.TimeoutError: "timeout_error",
        ck.MalformedStreamError: "malformed_stream_error",
        ck.IncompleteStreamError: "incomplete_stream_error",
    }[err]


# -- the test ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", list(CASES))
async def test_fault(case_id: str, server: tuple[RecordingBackend, OfflineServer]) -> None:
    case = CASES[case_id]
    backend, srv = server
    client = anthropic.AsyncAnthropic(
        api_key="offline",
        base_url=srv.base_url,
        max_retries=case.retries,
        timeout=httpx2.Timeout(case.read_timeout, connect=5.0),
        default_headers={"x-case": case.id},
    )
    token = _current.set(case.id)
    settings: dict[str, Any] = {"thinking": 2048} if "thinking" in case.shape else {}
    chat = ck.Chat(client=client, tools=[lookup], render=False, **settings)
    deltas: dict[str, str] = {}
    error: ck.ClaudekitError | None = None
    rs = chat.stream(PROMPT)
    try:
        try:
            async for ev in rs:
                if isinstance(ev, ck.ToolCallDelta):
                    deltas[ev.id] = ev.arguments_json
        except ck.ClaudekitError as exc:
            error = exc
        reply = rs.reply

        attempts = backend.sent[(case.id, "main")]
        status, body = attempts[-1]
        seen = read_sse(body) if status == 200 else Seen()
        want = expected_error(case, status, seen)

        # 1. The outcome, as one readable line.
        if want is None:
            assert error is None, f"expected success, got {type(error).__name__}: {error}"
            count("matrix outcomes", "success")
        else:
            assert type(error) is want, f"expected {want.__name__}, got {type(error).__name__}: {error}"
            assert error is not None
            line = str(error)
            assert line and "\n" not in line and len(line) < 500, line
            assert error.reply is reply and reply.error is error
            count("matrix outcomes", want.__name__)
        count("matrix cases", "run")

        # 2. What arrived is on the reply.
        first = reply.steps[0].message if reply.steps else None
        got_text = "".join(b.text for b in first.content if b.type == "text") if first else ""
        got_thinking = (
            "\n\n".join(b.thinking for b in first.content if b.type == "thinking" and b.thinking)
            if first
            else ""
        )
        assert got_text == seen.text
        assert got_thinking == seen.thinking
        if error is not None:
            assert reply.text == seen.text and reply.thinking == seen.thinking
        calls = [c for c in reply.tool_calls if c.step == 0]
        tools_seen = seen.tools()
        assert [(c.id, c.name) for c in calls] == [(b.id, b.name) for b in tools_seen]
        full_args = FULL_ARGS.get(case.shape, [])
        for call, blk, full in zip(calls, tools_seen, full_args, strict=False):
            assert deltas.get(call.id, "") == blk.text  # the raw argument JSON, byte for byte
            try:
                complete = json.loads(blk.text) if blk.stopped else None
            except ValueError:
                complete = None
            if complete is not None:
                assert call.input == complete == full and call.error is None
            else:
                assert call.error, "an incomplete tool call must say why it cannot run"
                assert is_partial_of(call.input, full), (call.input, full)

        # 3. Tools: only complete calls ran, each exactly once, with exactly its arguments.
        ran = [args for cid, args in RUNS if cid == case.id]
        should_run = [c.input for c in calls if c.error is None] if error is None else []
        assert ran == should_run
        count("matrix tools", "executed", len(ran))
        count("matrix tools", "incomplete calls run", sum(1 for c in calls if c.error and c.input in ran))

        # 4. Usage: the call is logged with the right status and no placeholder output count.
        # Responses the SDK retried come first, one record each, with no tokens (they are not billed).
        records = [r for r in chat.usage.records if r.step == 0]
        retried = [r for r in records if r.status.endswith(" (retried)")]
        final = [r for r in records if not r.status.endswith(" (retried)")]
        assert len(final) == 1, "the call must be in the usage log, once"
        assert records[: len(retried)] == retried
        assert all(r.input_tokens is None and r.cost_usd is None for r in retried)
        if case.fault.kind == "status":  # every attempt got a response
            assert len(retried) == _attempts[case.id] - 1
        count("matrix usage", "retried responses logged", len(retried))
        rec = final[0]
        assert rec.status == expected_status(want, status, seen)
        if error is not None:
            assert chat.usage.records[-1].status == rec.status
            assert rec.input_tokens == (seen.input_tokens if seen.started else None)
            assert rec.output_tokens == seen.final_output_tokens  # None unless message_delta arrived

        # 5. The history is valid, keeps exactly the text that arrived, and the next turn is accepted.
        assert chat.history.problems() == []
        if error is not None:
            if seen.text:
                last = chat.history[-1]
                assert last["role"] == "assistant"
                assert "".join(b.get("text", "") for b in last["content"] if b["type"] == "text") == seen.text
                assert not any(b["type"] == "tool_use" for b in last["content"])
            else:
                assert len(chat.history) == 0, "nothing arrived: the prompt is taken back"
        nxt = await chat("next")
        assert nxt.text == "Next answer."
        assert chat.history.problems() == []
        assert chat.usage.records[-1].status == "ok"
        count("matrix histories", "valid")
    finally:
        _current.reset(token)
        await client.close()
