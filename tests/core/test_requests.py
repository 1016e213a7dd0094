"""The exact JSON bodies claudekit sends, through the real SDK and an httpx2 transport."""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import httpx2
import pydantic
import pytest

import claudekit as ck
from tests import sse
from tests.conftest import sdk_client, sse_transport

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def sent(seen: list[httpx2.Request]) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in seen]


async def one_request(prompt: Any = "Hi", bodies: list[bytes] | None = None, **kw: Any) -> dict[str, Any]:
    seen: list[httpx2.Request] = []
    chat = ck.Chat(
        client=sdk_client(sse_transport(bodies or [sse.text_reply()], seen=seen)), render=False, **kw
    )
    await chat(prompt)
    assert len(seen) == 1
    assert seen[0].url.path == "/v1/messages"
    return sent(seen)[0]


async def test_defaults_turn_on_automatic_caching() -> None:
    body = await one_request()
    assert body == {
        "model": ck.DEFAULT_MODEL,
        "max_tokens": 8192,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "cache_control": {"type": "ephemeral", "ttl": "5m"},
        "stream": True,
    }


async def test_system_and_last_tool_get_breakpoints() -> None:
    tools = [
        {"name": "a", "description": "A", "input_schema": {"type": "object", "properties": {}}},
        {"name": "b", "description": "B", "input_schema": {"type": "object", "properties": {}}},
    ]
    body = await one_request(system="Be brief.", tools=tools, cache="1h")
    cc = {"type": "ephemeral", "ttl": "1h"}
    assert body["system"] == [{"type": "text", "text": "Be brief.", "cache_control": cc}]
    assert "cache_control" not in body["tools"][0]
    assert body["tools"][1]["cache_control"] == cc
    assert body["cache_control"] == cc
    # three breakpoints in all: within the API's limit of four
    n = json.dumps(body).count('"cache_control"')
    assert n == 3


async def test_cache_off_sends_plain_system_and_no_markers() -> None:
    body = await one_request(system="Be brief.", cache=False)
    assert body["system"] == "Be brief."
    assert "cache_control" not in json.dumps(body)
    assert "diagnostics" not in body


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"thinking": 2048}, {"type": "enabled", "budget_tokens": 2048}),
        ({"thinking": "adaptive"}, {"type": "adaptive"}),
        ({"thinking": "adaptive", "thinking_display": "omitted"}, {"type": "adaptive", "display": "omitted"}),
        (
            {"thinking": 1024, "thinking_display": "summarized"},
            {"type": "enabled", "budget_tokens": 1024, "display": "summarized"},
        ),
    ],
)
async def test_thinking_config(kw: dict[str, Any], expected: dict[str, Any]) -> None:
    body = await one_request(**kw)
    assert body["thinking"] == expected


async def test_effort_and_output_format_go_to_output_config() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    }
    reply_body = sse.body(sse.message_start(), sse.text_block(0, ['{"n":', " 3}"]), sse.message_end())
    seen: list[httpx2.Request] = []
    chat = ck.Chat(
        client=sdk_client(sse_transport(reply_body, seen=seen)),
        render=False,
        effort="low",
        output_format=schema,
    )
    reply = await chat("count")
    assert sent(seen)[0]["output_config"] == {
        "effort": "low",
        "format": {"type": "json_schema", "schema": schema},
    }
    assert reply.parsed == {"n": 3}


class _Item(pydantic.BaseModel):
    name: str
    qty: int = pydantic.Field(ge=1)


class _Order(pydantic.BaseModel):
    items: list[_Item]


async def test_pydantic_output_format_is_sent_as_the_sdk_transforms_it() -> None:
    # The service rejects `minimum` and needs every object closed; the SDK's transform_schema (what its
    # messages.parse sends) handles both, nested models included.
    answer = '{"items": [{"name": "apple", "qty": 2}]}'
    body = sse.body(sse.message_start(), sse.text_block(0, [answer]), sse.message_end())
    seen: list[httpx2.Request] = []
    chat = ck.Chat(client=sdk_client(sse_transport(body, seen=seen)), render=False, output_format=_Order)
    reply = await chat("order")
    schema = sent(seen)[0]["output_config"]["format"]["schema"]
    assert schema == anthropic.transform_schema(_Order)
    item = schema["$defs"]["_Item"]
    assert schema["additionalProperties"] is False and item["additionalProperties"] is False
    qty = item["properties"]["qty"]
    assert "minimum" not in qty and "{minimum: 1}" in qty["description"]
    assert reply.parsed == _Order(items=[_Item(name="apple", qty=2)])


@pytest.mark.parametrize(
    ("answer", "why"),
    [('{"items": [{"name": "apple", "qty": 0}]}', "does not match _Order"), ("Sorry, no.", "is not JSON")],
)
async def test_an_answer_that_misses_the_output_format_is_a_claudekit_error_with_the_reply(
    answer: str, why: str
) -> None:
    body = sse.body(sse.message_start(), sse.text_block(0, [answer]), sse.message_end())
    seen: list[httpx2.Request] = []
    chat = ck.Chat(client=sdk_client(sse_transport(body, seen=seen)), render=False, output_format=_Order)
    with pytest.raises(ck.OutputFormatError) as exc:
        await chat("order")
    err = exc.value
    assert why in str(err) and "\n" not in str(err)
    assert err.reply is not None and err.reply.text == answer and err.reply.parsed is None
    # The answer is in the conversation, so the next turn is a valid request.
    assert [m["role"] for m in chat.history.to_params()] == ["user", "assistant"]
    assert len(chat.usage) == 1


TOOLS = [
    {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}},
    {"name": "get_time", "description": "Time", "input_schema": {"type": "object", "properties": {}}},
]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"tool_choice": "auto"}, {"type": "auto"}),
        ({"tool_choice": "any"}, {"type": "any"}),
        ({"tool_choice": "none"}, {"type": "none"}),
        ({"tool_choice": "get_time"}, {"type": "tool", "name": "get_time"}),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        (
            {"tool_choice": "any", "parallel_tool_calls": False},
            {"type": "any", "disable_parallel_tool_use": True},
        ),
        ({}, None),
    ],
)
async def test_tool_choice(kw: dict[str, Any], expected: dict[str, Any] | None) -> None:
    body = await one_request(tools=TOOLS, **kw)
    assert body.get("tool_choice") == expected


async def test_sampling_settings_travel_in_the_body_only_when_set() -> None:
    body = await one_request(temperature=0.2, top_k=5)
    assert body["temperature"] == 0.2 and body["top_k"] == 5
    assert "top_p" not in body
    plain = await one_request()
    assert not {"temperature", "top_k", "top_p"} & set(plain)


async def test_stop_sequences_and_metadata() -> None:
    body = await one_request(stop_sequences=["END"], metadata={"user_id": "u1"})
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u1"}


async def test_images_as_bytes_base64_path_and_url(tmp_path: Any) -> None:
    path = tmp_path / "dot.png"
    path.write_bytes(PNG)
    b64 = base64.b64encode(PNG).decode()
    prompt = [
        "What is this?",
        ck.Image.from_bytes(PNG),
        ck.Image.from_path(path),
        ck.Image.from_base64(b64),
        ck.Image.from_url("https://example.com/cat.jpg"),
    ]
    body = await one_request(prompt)
    content = body["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "What is this?"}
    src = {"type": "base64", "media_type": "image/png", "data": b64}
    assert content[1] == content[2] == content[3] == {"type": "image", "source": src}
    assert content[4] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}


def test_not_an_image_is_a_clear_error(tmp_path: Any) -> None:
    p = tmp_path / "notes.png"
    p.write_text("hello")
    with pytest.raises(ck.ConfigError, match="not an image"):
        ck.Image.from_path(p)
    with pytest.raises(ck.ConfigError, match="not a PNG, JPEG"):
        ck.Image.from_bytes(b"GIF? no")
    with pytest.raises(ck.ConfigError, match="not valid base64"):
        ck.Image.from_base64("!!!")


async def test_second_turn_carries_history_and_cache_diagnostics() -> None:
    seen: list[httpx2.Request] = []
    bodies = [sse.text_reply("First answer.", msg_id="msg_1"), sse.text_reply("Second.", msg_id="msg_2")]
    chat = ck.Chat(client=sdk_client(sse_transport(bodies, seen=seen)), render=False)
    await chat("one")
    await chat("two")
    first, second = sent(seen)
    assert "diagnostics" not in first
    assert second["diagnostics"] == {"previous_message_id": "msg_1"}
    assert second["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "First answer."}]},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
    ]


async def test_thinking_blocks_go_back_with_their_signatures() -> None:
    seen: list[httpx2.Request] = []
    first = sse.body(
        sse.message_start("msg_1"),
        sse.thinking_block(0, ["Let me ", "think."], "SIG123"),
        sse.text_block(1, ["42"]),
        sse.message_end(),
    )
    chat = ck.Chat(
        client=sdk_client(sse_transport([first, sse.text_reply("ok", msg_id="msg_2")], seen=seen)),
        render=False,
        thinking=1024,
    )
    r = await chat("q")
    assert r.thinking == "Let me think."
    await chat("again")
    assistant = sent(seen)[1]["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Let me think.", "signature": "SIG123"},
            {"type": "text", "text": "42"},
        ],
    }


async def test_parallel_tool_calls_stay_in_one_turn_and_results_follow_in_call_order() -> None:
    seen: list[httpx2.Request] = []
    calls = [("toolu_1", "get_weather", {"city": "Paris"}), ("toolu_2", "get_time", {"tz": "CET"})]
    order: list[str] = []

    async def get_weather(city: str) -> str:
        import asyncio

        await asyncio.sleep(0.05)  # finishes last, but its result must still come first
        order.append("weather")
        return f"sunny in {city}"

    def get_time(tz: str) -> str:
        order.append("time")
        return f"noon {tz}"

    chat = ck.Chat(
        client=sdk_client(
            sse_transport([sse.tool_reply(calls), sse.text_reply("Done.", msg_id="msg_2")], seen=seen)
        ),
        render=False,
        tools=[get_weather, get_time],
    )
    reply = await chat("weather and time?")
    assert reply.text == "Done."
    assert order == ["time", "weather"]
    second = sent(seen)[1]["messages"]
    assert [b["type"] for b in second[1]["content"]] == ["tool_use", "tool_use"]
    assert [b["input"] for b in second[1]["content"]] == [{"city": "Paris"}, {"tz": "CET"}]
    results = second[2]["content"]
    assert [(b["tool_use_id"], b["content"]) for b in results] == [
        ("toolu_1", "sunny in Paris"),
        ("toolu_2", "noon CET"),
    ]
    assert len(second) == 3


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"thinking": 8192, "max_tokens": 8192}, "less than max_tokens"),
        ({"thinking": 512}, "minimum of 1024"),
        ({"tool_choice": "nope"}, "not one of this chat's tools"),
        ({"effort": "extreme"}, "effort must be one of"),
        ({"cache": "10m"}, "cache must be"),
        ({"temperature": 3.0}, "temperature must be between"),
        ({"thinking": "adaptive", "temperature": 0.2}, "cannot be combined with thinking"),
        ({"thinking": 2048, "max_tokens": 4096, "top_k": 5}, "cannot be combined with thinking"),
        ({"thinking": "adaptive", "top_p": 0.5}, "least allowed with thinking"),
    ],
)
async def test_invalid_settings_fail_before_any_request(kw: dict[str, Any], match: str) -> None:
    seen: list[httpx2.Request] = []
    client = sdk_client(sse_transport(sse.text_reply(), seen=seen))
    with pytest.raises(ck.ConfigError, match=match):
        chat = ck.Chat(client=client, render=False, tools=TOOLS, **kw)
        await chat("hi")
    chat = ck.Chat(client=client, render=False, tools=TOOLS)
    with pytest.raises(ck.ConfigError, match=match):
        await chat("hi", **kw)
    assert seen == []
    assert len(chat.history) == 0


def test_unknown_setting_names_the_valid_ones() -> None:
    with pytest.raises(ck.ConfigError, match=r"unknown setting.*max_tokenz"):
        ck.Chat(client=sdk_client(sse_transport(b"")), max_tokenz=5)


async def test_injected_client_is_never_closed_but_owned_ones_are() -> None:
    client = sdk_client(sse_transport(sse.text_reply()))
    async with ck.Chat(client=client, render=False) as chat:
        await chat("hi")
    assert not client.is_closed()
    offline = ck.Chat(backend="offline", render=False)
    await offline.aclose()
    assert offline.client.is_closed()


async def test_tools_can_be_replaced_keeping_per_chat_choices() -> None:
    def a(x: int) -> int:
        """A."""
        return x

    def b(y: str) -> str:
        """B."""
        return y

    seen: list[httpx2.Request] = []
    chat = ck.Chat(client=sdk_client(sse_transport(sse.text_reply(), seen=seen)), render=False, tools=[a])
    chat.toolset.allow("a")
    chat.tools = [a, b]
    assert [t.name for t in chat.tools] == ["a", "b"]
    assert chat.toolset.always_allowed == {"a"}
    await chat("hi")
    assert [t["name"] for t in sent(seen)[0]["tools"]] == ["a", "b"]
    forced = ck.Chat(client=sdk_client(sse_transport(b"")), tools=[a], tool_choice="a")
    with pytest.raises(ck.ConfigError, match="not one of this chat's tools"):
        forced.tools = [b]
    assert [t.name for t in forced.tools] == ["a"]  # unchanged after the refusal


def test_render_true_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from claudekit import _seams as _render

    monkeypatch.setenv("CLAUDEKIT_RENDER", "0")
    factory = _render.get_renderer_factory()
    assert factory is not None
    assert factory(None) is None
    assert factory(True) is not None  # outside a kernel: the plain-text renderer


async def test_thinking_allows_the_sampling_the_service_allows() -> None:
    seen: list[httpx2.Request] = []
    chat = ck.Chat(client=sdk_client(sse_transport(sse.text_reply(), seen=seen)), render=False)
    await chat("hi", thinking="adaptive", temperature=1.0, top_p=0.95)
    assert sent(seen)[0]["temperature"] == 1.0 and sent(seen)[0]["top_p"] == 0.95
