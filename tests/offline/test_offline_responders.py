"""The default responder, scripted responders, max_tokens and stop sequences."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pydantic
import pytest
from offline_helpers import MODEL, TIME_TOOL, WEATHER_TOOL, user

from claudekit.offline import (
    OfflineBackend,
    OfflineRequest,
    Script,
    ToolCall,
    Turn,
    count_text,
    make_async_client,
)

SEARCH_TOOL: dict[str, Any] = {
    "name": "search_books",
    "description": "Search the library catalogue for books",
    "input_schema": {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 10},
            "format": {"type": "string", "enum": ["paperback", "ebook", "audio"]},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["query", "limit", "format"],
        "additionalProperties": False,
    },
}


async def create(backend: OfflineBackend, **kw: Any) -> Any:
    client = make_async_client(backend, max_retries=0)
    return await client.messages.create(model=MODEL, max_tokens=kw.pop("max_tokens", 2048), **kw)


async def test_plain_reply_quotes_the_prompt() -> None:
    msg = await create(OfflineBackend(), messages=[user("How do tides work?")])
    text = msg.content[0].text
    assert text.startswith("(offline) ") and "How do tides work?" in text
    again = await create(OfflineBackend(), messages=[user("How do tides work?")])
    assert again.content[0].text == text  # deterministic


async def test_calls_tool_named_by_description_words_with_arguments_from_prompt() -> None:
    msg = await create(
        OfflineBackend(),
        tools=[SEARCH_TOOL],
        messages=[user('Search books with query "sea stories", limit 3, as an ebook')],
    )
    calls = [b for b in msg.content if b.type == "tool_use"]
    assert msg.stop_reason == "tool_use" and len(calls) == 1
    assert calls[0].input == {"query": "sea stories", "limit": 3, "format": "ebook"}


async def test_enum_and_range_respected_without_hints() -> None:
    msg = await create(
        OfflineBackend(),
        tools=[SEARCH_TOOL],
        tool_choice={"type": "tool", "name": "search_books"},
        messages=[user("anything at all, 99 of them")],
    )
    args = next(b for b in msg.content if b.type == "tool_use").input
    assert args["format"] in SEARCH_TOOL["input_schema"]["properties"]["format"]["enum"]
    assert 1 <= args["limit"] <= 10 and isinstance(args["limit"], int)


async def test_parallel_calls_and_disable_parallel() -> None:
    prompt = "What is the weather in Paris and Tokyo, and the time in timezone Europe/Paris?"
    msg = await create(OfflineBackend(), tools=[WEATHER_TOOL, TIME_TOOL], messages=[user(prompt)])
    calls = [(b.name, b.input) for b in msg.content if b.type == "tool_use"]
    assert calls == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
        ("get_time", {"timezone": "Europe/Paris"}),
    ]
    single = await create(
        OfflineBackend(),
        tools=[WEATHER_TOOL, TIME_TOOL],
        messages=[user(prompt)],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    assert len([b for b in single.content if b.type == "tool_use"]) == 1


async def test_tool_choice_none_any_and_unrelated_prompt() -> None:
    backend = OfflineBackend()
    unrelated = await create(backend, tools=[WEATHER_TOOL], messages=[user("Write a haiku about tea")])
    assert [b.type for b in unrelated.content] == ["text"]
    forced = await create(
        backend, tools=[WEATHER_TOOL], tool_choice={"type": "any"}, messages=[user("Write a haiku about tea")]
    )
    assert any(b.type == "tool_use" for b in forced.content) and forced.stop_reason == "tool_use"
    none = await create(
        backend,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "none"},
        messages=[user("weather in Paris please")],
    )
    assert all(b.type != "tool_use" for b in none.content)


async def test_answer_quotes_tool_results() -> None:
    msgs = [
        user("weather in Oslo?"),
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_a",
                    "content": [{"type": "text", "text": "Snow, -3C"}],
                }
            ],
        },
    ]
    msg = await create(OfflineBackend(), tools=[WEATHER_TOOL], messages=msgs)
    assert msg.stop_reason == "end_turn" and "“Snow, -3C”" in msg.content[0].text


async def test_structured_output_is_valid_json_for_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age", "tags"],
        "additionalProperties": False,
    }
    msg = await create(
        OfflineBackend(),
        output_config={"format": {"type": "json_schema", "schema": schema}},
        messages=[user('Extract: name "Ada Lovelace", age 36')],
    )
    data = json.loads(msg.content[0].text)
    assert data["name"] == "Ada Lovelace" and data["age"] == 36 and isinstance(data["tags"], list)
    assert set(data) == {"name", "age", "tags"}


class _Item(pydantic.BaseModel):
    name: str
    qty: int = pydantic.Field(ge=1)


class _Order(pydantic.BaseModel):
    items: list[_Item]
    gift: _Item | None = None


class _Node(pydantic.BaseModel):
    label: str
    children: list[_Node]


class _Tree(pydantic.BaseModel):  # a tool's input_schema must be an object at the top
    root: _Node


class _Linked(pydantic.BaseModel):  # a required but nullable self-reference
    value: int
    next: _Linked | None


class _Chain(pydantic.BaseModel):
    head: _Linked


@pytest.mark.parametrize("model", [_Order, _Tree, _Chain])
async def test_tool_arguments_and_structured_output_follow_refs(model: type[pydantic.BaseModel]) -> None:
    # Nested pydantic models put objects behind $ref/$defs (and recursive ones refer to themselves):
    # the responder must produce values the model accepts, not a string where an object belongs.
    schema = model.model_json_schema()
    assert "$defs" in schema or "$ref" in json.dumps(schema)
    tool = {"name": "place_order", "description": "Place an order", "input_schema": schema}
    msg = await create(OfflineBackend(), tools=[tool], messages=[user("please place_order for 2 apples")])
    (call,) = [b for b in msg.content if b.type == "tool_use"]
    model.model_validate(call.input)
    out = await create(
        OfflineBackend(),
        output_config={"format": {"type": "json_schema", "schema": schema}},
        messages=[user("an order of 2 apples")],
    )
    model.model_validate_json(out.content[0].text)


async def test_thinking_display_omitted_streams_only_signature() -> None:
    backend = OfflineBackend()
    client = make_async_client(backend)
    async with client.messages.stream(
        model=MODEL,
        max_tokens=2048,
        messages=[user("hi")],
        thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"},
    ) as s:
        events = [e async for e in s]
        final = await s.get_final_message()
    deltas = [e.delta.type for e in events if e.type == "content_block_delta" and e.index == 0]
    assert deltas == ["signature_delta"]
    assert final.content[0].type == "thinking" and final.content[0].thinking == ""
    assert final.content[0].signature


async def test_max_tokens_truncates_text() -> None:
    text = "one two three four five six seven eight nine ten eleven twelve"
    msg = await create(
        OfflineBackend(responder=Script([Turn(text=text)])), max_tokens=5, messages=[user("x")]
    )
    assert msg.stop_reason == "max_tokens" and msg.usage.output_tokens == 5
    assert text.startswith(msg.content[0].text) and count_text(msg.content[0].text) == 5


async def test_max_tokens_mid_tool_json_stream() -> None:
    call = ToolCall("get_weather", {"city": "San Francisco, California, United States"})
    backend = OfflineBackend(responder=Script([Turn(tool_calls=[call])]))
    client = make_async_client(backend)
    async with client.messages.stream(
        model=MODEL, max_tokens=6, tools=[WEATHER_TOOL], messages=[user("x")]
    ) as s:
        events = [e async for e in s]
        final = await s.get_final_message()
    assert final.stop_reason == "max_tokens"
    assert not any(e.type == "content_block_stop" for e in events if getattr(e, "index", None) == 0)
    partial = "".join(e.delta.partial_json for e in events if e.type == "content_block_delta")
    full = json.dumps(call.input)
    assert full.startswith(partial) and partial != full


async def test_stop_sequence() -> None:
    backend = OfflineBackend(responder=Script([Turn(text="alpha beta END gamma")]))
    msg = await create(backend, stop_sequences=["END"], messages=[user("x")])
    assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == "END"
    assert msg.content[0].text == "alpha beta "


async def test_script_of_turns_functions_and_exhaustion() -> None:
    def fn(req: OfflineRequest) -> Turn:
        return Turn(text=f"you said {req.last_user_text}")

    script = Script([Turn(text="first"), "second", fn])
    backend = OfflineBackend(responder=script)
    texts = [(await create(backend, messages=[user(f"m{i}")])).content[0].text for i in range(3)]
    assert texts == ["first", "second", "you said m2"]
    assert script.remaining == 0 and [r.last_user_text for r in script.requests] == ["m0", "m1", "m2"]
    with pytest.raises(anthropic.InternalServerError, match="exhausted"):
        await create(backend, messages=[user("m3")])


async def test_scripted_thinking_only_when_enabled() -> None:
    backend = OfflineBackend(responder=Script([Turn(thinking="secret plan", text="a")] * 2))
    off = await create(backend, messages=[user("x")])
    assert [b.type for b in off.content] == ["text"]
    on = await create(backend, messages=[user("x")], thinking={"type": "adaptive"})
    assert on.content[0].type == "thinking" and on.content[0].thinking == "secret plan"


# -- issue 24 item 5 / issue 28 items 4 and 12 ------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.mark.parametrize(
    "system",
    [
        # pydantic-ai's PromptedOutput template and instructor's JSON mode, each with the schema written out.
        "Always respond with a JSON object that's compatible with this schema:\n\n{schema}\n\n"
        "Don't include any text or Markdown fencing before or after.",
        "As a genius expert, your task is to understand the content and provide the parsed objects in json "
        "that match the following json_schema:\n\n{schema}\n\nMake sure to return an instance of the JSON, "
        "not the schema itself",
    ],
)
async def test_a_prompt_asking_for_json_gets_json_for_its_schema(system: str) -> None:
    msg = await create(
        OfflineBackend(),
        system=system.replace("{schema}", json.dumps(PERSON)),
        messages=[user('Extract: "Ada" is 36 years old')],
    )
    value = json.loads(msg.content[0].text)
    assert value == {"name": "Ada", "age": 36}


async def test_a_prompt_asking_for_code_gets_one_fenced_block() -> None:
    from claudekit.notebook._assist import CODE_SYSTEM, FIX

    for system, prompt in ((CODE_SYSTEM.format(names="df"), "plot df"), (None, f"{FIX}\n\nNameError: x")):
        kw = {"system": system} if system else {}
        msg = await create(OfflineBackend(), messages=[user(prompt)], **kw)
        text = msg.content[0].text
        assert text.count("```python\n") == 1 and text.rstrip().endswith("```")
        code = text.split("```python\n", 1)[1].rsplit("```", 1)[0]
        compile(code, "<offline>", "exec")  # it runs as the next cell


async def test_the_placeholder_fits_a_small_max_tokens() -> None:
    prompt = "Summarise the plot of a long novel about whales, a captain and his crew, in detail"
    for budget in (50, 20, 8):
        msg = await create(OfflineBackend(), max_tokens=budget, messages=[user(prompt)])
        assert msg.stop_reason == "end_turn" and msg.usage.output_tokens <= budget


async def test_injected_system_text_does_not_pick_tools() -> None:
    cron = {
        "name": "CronCreate",
        "description": "Schedule a prompt on a cron schedule: what to buy, what car, hello",
        "input_schema": {"type": "object", "properties": {"cron": {"type": "string"}}, "required": ["cron"]},
    }
    reminder = "<system-reminder>Use CronCreate to schedule. What car to buy?</system-reminder>"
    content = [{"type": "text", "text": reminder}, {"type": "text", "text": "Say hello"}]
    msg = await create(OfflineBackend(), tools=[cron], messages=[{"role": "user", "content": content}])
    assert [b.type for b in msg.content] == ["text"] and "Say hello" in msg.content[0].text
    asked = await create(
        OfflineBackend(), tools=[cron], messages=[user('Use CronCreate with cron "0 9 * * 1"')]
    )
    (call,) = [b for b in asked.content if b.type == "tool_use"]
    assert call.input == {"cron": "0 9 * * 1"}


async def test_a_string_the_prompt_does_not_give_comes_from_the_schema_example() -> None:
    tool = {
        "name": "CronCreate",
        "description": "Schedule a prompt",
        "input_schema": {
            "type": "object",
            "properties": {"cron": {"type": "string", "examples": ["0 9 * * 1-5"]}},
            "required": ["cron"],
        },
    }
    msg = await create(
        OfflineBackend(), tools=[tool], messages=[user("Use CronCreate for my weekday stand-up")]
    )
    (call,) = [b for b in msg.content if b.type == "tool_use"]
    assert call.input == {"cron": "0 9 * * 1-5"}  # not the prompt's words


def _tool(name: str, field: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {field: {"type": "string"}}, "required": [field]}
    return {"name": name, "description": f"{name} tool", "input_schema": schema}


@pytest.mark.parametrize(
    ("tool", "prompt", "expected"),
    [
        (_tool("Read", "file_path"), "Read the file hello.txt and tell me the secret word.", "hello.txt"),
        (_tool("Read", "file_path"), "Read /etc/hosts, please", "/etc/hosts"),
        (_tool("WebFetch", "url"), "WebFetch https://example.com/a?b=1 and summarise", "https://example.com/a?b=1"),
        (_tool("Bash", "command"), "Use Bash to run `echo hi` here", "echo hi"),
    ],
)
async def test_a_path_url_or_inline_code_in_the_prompt_fills_its_field(
    tool: dict[str, Any], prompt: str, expected: str
) -> None:
    # As Claude Code asks (a real run: Read got the whole prompt line as file_path, "File does not exist").
    msg = await create(OfflineBackend(), tools=[tool], messages=[user(prompt)])
    (call,) = [b for b in msg.content if b.type == "tool_use"]
    assert call.input == {next(iter(tool["input_schema"]["properties"])): expected}
