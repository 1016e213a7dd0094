"""Fuzzing the stream path with hypothesis, through the SDK's real SSE parser.

Valid event sequences (any mix of text with citations, thinking with signatures, redacted thinking,
tool_use with split JSON, server_tool_use with a web_search_tool_result, pings anywhere, usage
updates) must give a final message equal to the SDK's own ``get_final_message()`` on the same bytes.
Invalid ones (events reordered, dropped or duplicated, wrong delta types, broken JSON) must give a
claudekit error made on purpose — never an exception from deep inside passed off as one.

Examples: 150 by default; ``CLAUDEKIT_FUZZ_EXAMPLES=10000`` (or ``CLAUDEKIT_RELIABILITY=full``) for
the dedicated run.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import claudekit as ck

from ._support import count, size

EXAMPLES = int(os.environ.get("CLAUDEKIT_FUZZ_EXAMPLES") or size(150, 10_000))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 1000,  # the default run is reproducible; the long run explores
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
    database=None,
)

# -- strategies: valid streams ---------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
_chunks = st.lists(_text, max_size=4)
_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), _text)
_json = st.recursive(
    _json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=8,
)
_args = st.dictionaries(_text, _json, max_size=4)


def _splits(draw: Any, raw: str) -> list[str]:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(raw)), max_size=6))))
    parts, prev = [], 0
    for c in [*cuts, len(raw)]:
        parts.append(raw[prev:c])
        prev = c
    if draw(st.booleans()):
        parts.insert(0, "")  # the service often starts with an empty fragment
    return parts


def _delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


@st.composite
def _block(draw: Any, index: int) -> list[dict[str, Any]]:
    kind = draw(st.sampled_from(["text", "text_cited", "thinking", "redacted", "tool_use", "web_search"]))
    start: dict[str, Any]
    deltas: list[dict[str, Any]] = []
    extra: list[list[dict[str, Any]]] = []
    if kind in ("text", "text_cited"):
        start = {"type": "text", "text": draw(st.sampled_from(["", "Hi "]))}
        for chunk in draw(_chunks):
            deltas.append({"type": "text_delta", "text": chunk})
            if kind == "text_cited" and draw(st.booleans()):
                cite = {
                    "type": "char_location",
                    "cited_text": draw(_text),
                    "document_index": 0,
                    "document_title": draw(st.one_of(st.none(), _text)),
                    "start_char_index": 0,
                    "end_char_index": draw(st.integers(0, 50)),
                    "file_id": None,
                }
                deltas.append({"type": "citations_delta", "citation": cite})
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": c} for c in draw(_chunks)]
        deltas.append(
            {"type": "signature_delta", "signature": "sig" + draw(st.text("abcdef0123", min_size=4))}
        )
    elif kind == "redacted":
        start = {"type": "redacted_thinking", "data": "enc" + draw(st.text("ABCxyz=+/", max_size=20))}
    elif kind == "tool_use":
        start = {"type": "tool_use", "id": f"toolu_{index:04d}", "name": "lookup", "input": {}}
        raw = json.dumps(draw(_args), ensure_ascii=draw(st.booleans()))
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in _splits(draw, raw)]
    else:  # server_tool_use + its result block
        tid = f"srvtoolu_{index:04d}"
        start = {"type": "server_tool_use", "id": tid, "name": "web_search", "input": {}}
        raw = json.dumps({"query": draw(_text)})
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in _splits(draw, raw)]
        result = {
            "type": "web_search_tool_result",
            "tool_use_id": tid,
            "content": [
                {
                    "type": "web_search_result",
                    "title": draw(_text),
                    "url": "https://example.com/" + draw(st.text("abc", max_size=5)),
                    "encrypted_content": "EqQ" + draw(st.text("xyz", max_size=8)),
                    "page_age": draw(st.one_of(st.none(), st.just("2 days ago"))),
                }
            ],
        }
        extra.append(
            [
                {"type": "content_block_start", "index": index + 1, "content_block": result},
                {"type": "content_block_stop", "index": index + 1},
            ]
        )
    events = [{"type": "content_block_start", "index": index, "content_block": start}]
    events += [_delta(index, d) for d in deltas]
    events.append({"type": "content_block_stop", "index": index})
    for more in extra:
        events += more
    return events


@st.composite
def valid_stream(draw: Any) -> list[dict[str, Any]]:
    usage: dict[str, Any] = {"input_tokens": draw(st.integers(0, 10**6)), "output_tokens": 1}
    if draw(st.booleans()):
        usage["cache_read_input_tokens"] = draw(st.integers(0, 10**5))
        usage["cache_creation_input_tokens"] = draw(st.integers(0, 10**5))
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_fuzz",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-6",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            },
        }
    ]
    index = 0
    for _ in range(draw(st.integers(0, 4))):
        block = draw(_block(index))
        events += block
        index += sum(1 for e in block if e["type"] == "content_block_start")
    for _ in range(draw(st.integers(1, 2))):  # usage updates: cumulative, the last one wins
        u: dict[str, Any] = {"output_tokens": draw(st.integers(1, 10**5))}
        if draw(st.booleans()):
            u["input_tokens"] = draw(st.integers(0, 10**6))
        if draw(st.booleans()):
            u["server_tool_use"] = {"web_search_requests": draw(st.integers(0, 5))}
        stop = draw(st.sampled_from(["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal"]))
        seq = "###" if stop == "stop_sequence" else None
        events.append(
            {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": seq}, "usage": u}
        )
    events.append({"type": "message_stop"})
    # Pings anywhere after message_start.
    for _ in range(draw(st.integers(0, 3))):
        events.insert(draw(st.integers(1, len(events))), {"type": "ping"})
    return events


def encode(events: list[dict[str, Any]], broken: int | None = None) -> bytes:
    out = bytearray()
    for i, ev in enumerate(events):
        data = json.dumps(ev)
        if i == broken:
            data = data[: max(1, len(data) // 2)]
        out += f"event: {ev['type']}\ndata: {data}\n\n".encode()
    return bytes(out)


# -- strategies: invalid streams -------------------------------------------------------------------------

MUTATIONS = ("swap", "drop", "duplicate", "wrong_delta", "broken_json", "no_message_stop", "no_message_start")
_WRONG = {
    "text": {"type": "thinking_delta", "thinking": "x"},
    "thinking": {"type": "text_delta", "text": "x"},
    "redacted_thinking": {"type": "signature_delta", "signature": "s"},
    "tool_use": {"type": "citations_delta", "citation": {"type": "char_location", "cited_text": "c"}},
    "server_tool_use": {"type": "thinking_delta", "thinking": "x"},
    "web_search_tool_result": {"type": "text_delta", "text": "x"},
}


@st.composite
def invalid_stream(draw: Any) -> tuple[str, list[dict[str, Any]], int | None]:
    events = draw(valid_stream())
    kind = draw(st.sampled_from(MUTATIONS))
    n = len(events)
    broken: int | None = None
    if kind == "swap":
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        events[i], events[j] = events[j], events[i]
    elif kind == "drop":
        del events[draw(st.integers(0, n - 1))]
    elif kind == "duplicate":
        i = draw(st.integers(0, n - 1))
        events.insert(draw(st.integers(0, n)), dict(events[i]))
    elif kind == "wrong_delta":
        starts = [e for e in events if e["type"] == "content_block_start"]
        if starts:
            s = draw(st.sampled_from(starts))
            pos = events.index(s) + 1
            events.insert(pos, _delta(s["index"], _WRONG[s["content_block"]["type"]]))
        else:
            kind = "no_message_stop"
            events = [e for e in events if e["type"] != "message_stop"]
    elif kind == "broken_json":
        candidates = [i for i, e in enumerate(events) if e["type"] != "ping"]
        broken = draw(st.sampled_from(candidates))
    elif kind == "no_message_stop":
        events = [e for e in events if e["type"] != "message_stop"]
    else:
        events = events[1:]
    return kind, events, broken


# -- running both -------------------------------------------------------------------------------------------


class _Body:
    data = b""


_BODY = _Body()


def _handler(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(
        200, headers={"content-type": "text/event-stream", "request-id": "req_fuzz"}, content=_BODY.data
    )


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


@pytest.fixture(scope="module")
def client(loop: asyncio.AbstractEventLoop) -> Iterator[anthropic.AsyncAnthropic]:
    c = anthropic.AsyncAnthropic(
        api_key="sk-fuzz",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(_handler)),
    )
    yield c
    loop.run_until_complete(c.close())


async def _claudekit(client: anthropic.AsyncAnthropic) -> tuple[ck.Chat, ck.Reply, BaseException | None]:
    chat = ck.Chat(client=client, render=False, cache=False, max_steps=1)
    rs = chat.stream("hi")
    err: BaseException | None = None
    try:
        await rs
    except BaseException as exc:
        err = exc
    return chat, rs.reply, err


async def _sdk(client: anthropic.AsyncAnthropic) -> Any:
    async with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=1024, messages=[{"role": "user", "content": "hi"}]
    ) as s:
        return await s.get_final_message()


# Exceptions a deliberate claudekit error may wrap: the SDK's parse and status errors.
_DELIBERATE_CAUSES = (json.JSONDecodeError, anthropic.APIStatusError)


def _deliberate(err: BaseException) -> bool:
    if not isinstance(err, ck.ClaudekitError):
        return False
    cause = err.__cause__
    return cause is None or isinstance(cause, _DELIBERATE_CAUSES)


@FUZZ
@given(events=valid_stream())
def test_valid_streams_equal_the_sdk(
    events: list[dict[str, Any]], loop: asyncio.AbstractEventLoop, client: anthropic.AsyncAnthropic
) -> None:
    _BODY.data = encode(events)
    expected = loop.run_until_complete(_sdk(client))
    chat, reply, err = loop.run_until_complete(_claudekit(client))
    assert err is None, f"{type(err).__name__}: {err}"
    assert reply.message is not None
    assert reply.message.model_dump(mode="json") == expected.model_dump(mode="json")
    assert chat.history.problems() == []
    count("fuzz examples", "valid")


@FUZZ
@given(case=invalid_stream())
def test_invalid_streams_give_a_claudekit_error(
    case: tuple[str, list[dict[str, Any]], int | None],
    loop: asyncio.AbstractEventLoop,
    client: anthropic.AsyncAnthropic,
) -> None:
    kind, events, broken = case
    _BODY.data = encode(events, broken)
    chat, reply, err = loop.run_until_complete(_claudekit(client))
    count("fuzz examples", "invalid")
    if err is None:
        count("fuzz invalid outcomes", f"{kind}: still valid")
    else:
        count("fuzz invalid outcomes", f"{kind}: {type(err).__name__}")
        assert _deliberate(err), f"{kind}: {type(err).__name__}: {err!r} caused by {err.__cause__!r}"
        line = str(err)
        assert line and "\n" not in line
        assert isinstance(err, ck.ClaudekitError) and err.reply is reply
    # Mutations that cannot be survived.
    if kind in ("broken_json", "no_message_stop", "no_message_start", "wrong_delta"):
        assert err is not None, f"{kind} was accepted"
    if kind == "broken_json":
        assert isinstance(err, ck.MalformedStreamError)
    if kind == "no_message_stop":
        assert isinstance(err, ck.IncompleteStreamError)
    assert chat.history.problems() == []
