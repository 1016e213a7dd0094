"""Prompt caching and diagnostics; expected figures come from the token counter on the pieces."""

from __future__ import annotations

from typing import Any

from offline_helpers import MODEL, TIME_TOOL, WEATHER_TOOL, user

from claudekit.offline import OfflineBackend, Script, ToolCall, Turn, count_tokens, make_async_client
from claudekit.offline._tokens import REQUEST_FRAMING

F = REQUEST_FRAMING
LONG = " ".join(f"Rule {i}: always answer carefully and cite the relevant section." for i in range(200))


def cc(ttl: str = "5m") -> dict[str, Any]:
    return {"type": "ephemeral", "ttl": ttl}


def usage_of(msg: Any) -> tuple[int, int, int, int, int]:
    u = msg.usage
    return (
        u.input_tokens,
        u.cache_creation_input_tokens,
        u.cache_read_input_tokens,
        u.cache_creation.ephemeral_5m_input_tokens,
        u.cache_creation.ephemeral_1h_input_tokens,
    )


async def test_explicit_breakpoint_write_then_read_then_expire() -> None:
    backend = OfflineBackend(responder=Script([Turn(text="ok")] * 4))
    client = make_async_client(backend)
    system = [{"type": "text", "text": LONG, "cache_control": cc()}]
    prefix = count_tokens(system=system, messages=[]) - F
    assert prefix >= 1024  # above the minimum for sonnet 4.6
    body = {"model": MODEL, "max_tokens": 50, "system": system}
    m1 = await client.messages.create(messages=[user("first question")], **body)
    total1 = count_tokens(system=system, messages=[user("first question")])
    assert usage_of(m1) == (total1 - prefix, prefix, 0, prefix, 0)
    m2 = await client.messages.create(messages=[user("second question, longer")], **body)
    total2 = count_tokens(system=system, messages=[user("second question, longer")])
    assert usage_of(m2) == (total2 - prefix, 0, prefix, 0, 0)
    backend.advance(299)  # the hit above refreshed the 5 minute TTL
    m3 = await client.messages.create(messages=[user("third")], **body)
    assert m3.usage.cache_read_input_tokens == prefix
    backend.advance(301)  # now it has expired
    m4 = await client.messages.create(messages=[user("fourth")], **body)
    assert m4.usage.cache_read_input_tokens == 0 and m4.usage.cache_creation_input_tokens == prefix


async def test_below_minimum_is_not_cached() -> None:
    backend = OfflineBackend(responder=Script([Turn(text="ok")] * 2))
    client = make_async_client(backend)
    system = [{"type": "text", "text": "Short system prompt.", "cache_control": cc()}]
    for _ in range(2):
        m = await client.messages.create(model=MODEL, max_tokens=10, system=system, messages=[user("hi")])
        assert m.usage.cache_creation_input_tokens == 0 and m.usage.cache_read_input_tokens == 0
        assert m.usage.input_tokens == count_tokens(system=system, messages=[user("hi")])


async def test_haiku_45_needs_4096_tokens() -> None:
    backend = OfflineBackend(responder=Script([Turn(text="ok")]))
    client = make_async_client(backend)
    system = [{"type": "text", "text": LONG, "cache_control": cc()}]
    prefix = count_tokens(system=system, messages=[]) - F
    assert 1024 <= prefix < 4096
    m = await client.messages.create(
        model="claude-haiku-4-5", max_tokens=10, system=system, messages=[user("x")]
    )
    assert m.usage.cache_creation_input_tokens == 0


async def test_lookback_finds_prefix_within_20_blocks_but_not_beyond() -> None:
    def convo(n: int) -> list[dict[str, Any]]:
        blocks = [{"type": "text", "text": f"note {i}"} for i in range(n)]
        return [{"role": "user", "content": [{"type": "text", "text": LONG}, *blocks]}]

    for extra, expect_hit in ((20, True), (21, False)):
        backend = OfflineBackend(responder=Script([Turn(text="ok")] * 2))
        client = make_async_client(backend)
        first = convo(0)
        first[0]["content"][-1]["cache_control"] = cc()
        await client.messages.create(model=MODEL, max_tokens=10, messages=first)
        second = convo(extra)
        second[0]["content"][-1]["cache_control"] = cc()
        m = await client.messages.create(model=MODEL, max_tokens=10, messages=second)
        prefix = count_tokens(messages=convo(0)) - F
        assert m.usage.cache_read_input_tokens == (prefix if expect_hit else 0), extra


async def test_automatic_caching_moves_forward_and_mixed_ttl_split() -> None:
    backend = OfflineBackend(responder=Script([Turn(text="Answer one."), Turn(text="Answer two.")]))
    client = make_async_client(backend)
    system = [{"type": "text", "text": LONG, "cache_control": cc("1h")}]
    sys_prefix = count_tokens(system=system, messages=[]) - F
    msgs = [user("q1 " + LONG[:2000])]
    m1 = await client.messages.create(
        model=MODEL, max_tokens=50, system=system, messages=msgs, cache_control=cc()
    )
    total1 = count_tokens(system=system, messages=msgs)
    assert usage_of(m1) == (F, total1 - F, 0, total1 - F - sys_prefix, sys_prefix)
    msgs2 = [*msgs, {"role": "assistant", "content": "Answer one."}, user("q2")]
    m2 = await client.messages.create(
        model=MODEL, max_tokens=50, system=system, messages=msgs2, cache_control=cc()
    )
    total2 = count_tokens(system=system, messages=msgs2)
    assert usage_of(m2) == (F, total2 - total1, total1 - F, total2 - total1, 0)


async def test_models_do_not_share_cache_but_dated_alias_does() -> None:
    backend = OfflineBackend(responder=Script([Turn(text="ok")] * 3))
    client = make_async_client(backend)
    system = [{"type": "text", "text": LONG * 3, "cache_control": cc()}]
    prefix = count_tokens(system=system, messages=[]) - F
    await client.messages.create(model="claude-haiku-4-5", max_tokens=5, system=system, messages=[user("a")])
    m = await client.messages.create(
        model="claude-haiku-4-5-20251001", max_tokens=5, system=system, messages=[user("b")]
    )
    assert m.usage.cache_read_input_tokens == prefix
    m = await client.messages.create(model=MODEL, max_tokens=5, system=system, messages=[user("c")])
    assert m.usage.cache_read_input_tokens == 0


async def test_diagnostics_reasons() -> None:
    backend = OfflineBackend(responder=Script([Turn(text="ok")] * 8))
    client = make_async_client(backend)
    system = "You are terse."
    base: dict[str, Any] = {"max_tokens": 5, "system": system, "tools": [WEATHER_TOOL]}
    first_msgs = [user("one")]
    m1 = await client.messages.create(model=MODEL, messages=first_msgs, **base)
    prev_total = count_tokens(system=system, tools=[WEATHER_TOOL], messages=first_msgs)
    diag = {"previous_message_id": m1.id}

    grown = [*first_msgs, {"role": "assistant", "content": "ok"}, user("two")]
    same = await client.messages.create(model=MODEL, messages=grown, diagnostics=diag, **base)
    assert same.diagnostics is not None and same.diagnostics.cache_miss_reason is None

    r = await client.messages.create(model="claude-opus-4-8", messages=grown, diagnostics=diag, **base)
    assert r.diagnostics.cache_miss_reason.type == "model_changed"
    assert r.diagnostics.cache_miss_reason.cache_missed_input_tokens == prev_total

    r = await client.messages.create(
        model=MODEL, messages=grown, diagnostics=diag, **{**base, "tools": [WEATHER_TOOL, TIME_TOOL]}
    )
    assert r.diagnostics.cache_miss_reason.type == "tools_changed"

    r = await client.messages.create(
        model=MODEL, messages=grown, diagnostics=diag, **{**base, "system": "Changed."}
    )
    reason = r.diagnostics.cache_miss_reason
    assert reason.type == "system_changed"
    assert (
        reason.cache_missed_input_tokens == prev_total - count_tokens(tools=[WEATHER_TOOL], messages=[]) + F
    )

    r = await client.messages.create(model=MODEL, messages=[user("different")], diagnostics=diag, **base)
    reason = r.diagnostics.cache_miss_reason
    assert reason.type == "messages_changed"
    assert reason.cache_missed_input_tokens == prev_total - (
        count_tokens(system=system, tools=[WEATHER_TOOL], messages=[]) - F
    )

    r = await client.messages.create(
        model=MODEL, messages=grown, diagnostics={"previous_message_id": "msg_nope"}, **base
    )
    assert r.diagnostics.cache_miss_reason.type == "previous_message_not_found"


async def test_diagnostics_only_in_message_start_of_stream() -> None:
    backend = OfflineBackend(responder=Script([Turn(text="ok")] * 2))
    client = make_async_client(backend)
    m1 = await client.messages.create(model=MODEL, max_tokens=5, messages=[user("a")])
    async with client.messages.stream(
        model=MODEL, max_tokens=5, messages=[user("b")], diagnostics={"previous_message_id": m1.id}
    ) as stream:
        events = [e async for e in stream]
        final = await stream.get_final_message()
    start = next(e for e in events if e.type == "message_start")
    assert start.message.diagnostics is not None
    assert start.message.diagnostics.cache_miss_reason.type == "messages_changed"
    assert final.diagnostics == start.message.diagnostics


async def test_tool_use_session_is_fully_cached_with_claudekit_default() -> None:
    calls = [Turn(tool_calls=[ToolCall("get_weather", {"city": c})]) for c in ("Paris", "Rome")]
    backend = OfflineBackend(responder=Script([*calls, Turn(text="done")]))
    client = make_async_client(backend)
    tools = [WEATHER_TOOL, {**TIME_TOOL, "cache_control": cc()}]
    system = [{"type": "text", "text": LONG, "cache_control": cc()}]
    msgs: list[dict[str, Any]] = [user("go")]
    previous_total = 0
    for _turn in range(3):
        m = await client.messages.create(
            model=MODEL, max_tokens=200, tools=tools, system=system, messages=msgs, cache_control=cc()
        )
        total = count_tokens(tools=tools, system=system, messages=msgs)
        if previous_total:
            assert m.usage.cache_read_input_tokens == previous_total - F
        assert m.usage.input_tokens == F
        assert m.usage.cache_creation_input_tokens == total - F - max(previous_total - F, 0)
        previous_total = total
        content = [b.model_dump(exclude_none=True) for b in m.content]
        msgs.append({"role": "assistant", "content": content})
        ids = [b["id"] for b in content if b["type"] == "tool_use"]
        if ids:
            msgs.append(
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": i, "content": "20C"} for i in ids],
                }
            )
