"""One test per validation rule (see claudekit/offline/_validation.py), plus what must be accepted."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from offline_helpers import MODEL, WEATHER_TOOL, user

from claudekit._base._models import lookup
from claudekit.offline import RULES, OfflineBackend, make_async_client

PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()
JPEG_HEAD = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 32).decode()


def base(**kw: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 2048, "messages": [user("hi")], **kw}


def result_turn(tool_id: str, content: str = "r") -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": content}]}


def tool_turn(tool_id: str = "toolu_1", *, thinking: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    assistant: list[dict[str, Any]] = [] if thinking is None else [thinking]
    assistant.append({"type": "tool_use", "id": tool_id, "name": "get_weather", "input": {"city": "Paris"}})
    return [user("weather?"), {"role": "assistant", "content": assistant}]


def image_msg(media_type: str, data: str) -> list[dict[str, Any]]:
    block = {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return [{"role": "user", "content": [block, {"type": "text", "text": "what is this?"}]}]


def cc(ttl: str = "5m") -> dict[str, Any]:
    return {"type": "ephemeral", "ttl": ttl}


# (rule id, request body, status, fragment of the error message)
CASES: list[tuple[str, Callable[[OfflineBackend], dict[str, Any]], int, str]] = [
    ("shape", lambda b: {"max_tokens": 5, "messages": [user("x")]}, 400, "model: Field required"),
    ("shape", lambda b: {"model": MODEL, "messages": [user("x")]}, 400, "max_tokens: Field required"),
    ("shape", lambda b: base(temprature=0.5), 400, "temprature: Extra inputs are not permitted"),
    (
        "shape",
        lambda b: base(messages=[user("x"), {"role": "robot", "content": "y"}]),
        400,
        "messages.1.role: Input should be 'user', 'assistant' or 'system'",
    ),
    ("shape", lambda b: base(system=[{"type": "image", "text": "x"}]), 400, "system.0.type"),
    (
        "shape",
        lambda b: base(metadata={"session": "x"}),
        400,
        "metadata.session: Extra inputs are not permitted",
    ),
    ("shape", lambda b: base(output_config={"effort": "extreme"}), 400, "output_config.effort"),
    (
        "shape",
        lambda b: base(thinking={"type": "adaptive", "display": "full"}),
        400,
        "thinking.adaptive.display: Input should be 'summarized' or 'omitted'",
    ),
    (
        "shape",
        lambda b: base(system=[{"type": "text", "text": "s", "cache_control": {"type": "x"}}]),
        400,
        "system.0.cache_control.type: Input should be 'ephemeral'",
    ),
    ("shape", lambda b: base(tools=[{"name": "a", "description": "x"}]), 400, "input_schema: Field required"),
    (
        "shape",
        lambda b: base(diagnostics={"previous_message_id": 5}),
        400,
        "diagnostics.previous_message_id",
    ),
    (
        "shape",
        lambda b: base(
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "x", "citations": 3}]},
            ]
        ),
        400,
        "messages.0.content.0.text.citations",
    ),
    (
        "beta_header",
        lambda b: {**base(), "__headers__": {"anthropic-beta": "invalid-beta-name"}},
        400,
        "Unexpected value(s) `invalid-beta-name` for the `anthropic-beta` header",
    ),
    ("model_unknown", lambda b: base(model="claude-imaginary-1"), 404, "model: claude-imaginary-1"),
    ("model_retired", lambda b: base(model="claude-3-opus-20240229"), 404, "model: claude-3-opus-20240229"),
    (
        "max_tokens_range",
        lambda b: base(max_tokens=-1),
        400,
        "max_tokens: Input should be greater than or equal to 0",
    ),
    (
        "max_tokens_range",
        lambda b: base(model="claude-haiku-4-5", max_tokens=64001),
        400,
        "max_tokens: 64001 > 64000, which is the maximum allowed number of output tokens for "
        "claude-haiku-4-5-20251001",
    ),
    ("messages_required", lambda b: base(messages=[]), 400, "messages: at least one message is required"),
    ("content_non_empty", lambda b: base(messages=[user("")]), 400, "must have non-empty content"),
    (
        "content_non_empty",
        lambda b: base(messages=[user(" \n ")]),
        400,
        "messages: text content blocks must contain non-whitespace text",
    ),
    (
        "tool_result_has_tool_use",
        lambda b: base(
            messages=[
                user("x"),
                {"role": "assistant", "content": "ok"},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_zzz", "content": "r"}],
                },
            ]
        ),
        400,
        "unexpected `tool_use_id` found in `tool_result` blocks: toolu_zzz",
    ),
    (
        "tool_use_has_result",
        lambda b: base(tools=[WEATHER_TOOL], messages=[*tool_turn("toolu_9"), user("next")]),
        400,
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_9",
    ),
    (
        "tool_use_ends_turn",
        lambda b: base(
            tools=[WEATHER_TOOL],
            messages=[
                user("weather?"),
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
                        {"type": "text", "text": "Let me check."},
                    ],
                },
                result_turn("toolu_1"),
            ],
        ),
        400,
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1",
    ),
    (
        "tool_ids_unique",
        lambda b: base(
            tools=[WEATHER_TOOL],
            messages=[
                *tool_turn("toolu_1"),
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a"},
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "b"},
                    ],
                },
            ],
        ),
        400,
        "messages.2.content.1: each tool_use must have a single result. Found multiple `tool_result` "
        "blocks with id: toolu_1",
    ),
    (
        "tool_ids_unique",
        lambda b: base(
            tools=[WEATHER_TOOL],
            messages=[
                user("weather?"),
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
                    ],
                },
                result_turn("toolu_1"),
            ],
        ),
        400,
        "messages.1.content.1: tool_use ids must be unique",
    ),
    (
        "thinking_budget",
        lambda b: base(thinking={"type": "enabled", "budget_tokens": 1023}),
        400,
        "budget_tokens: Input should be greater than or equal to 1024",
    ),
    (
        "thinking_budget",
        lambda b: base(max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 2000}),
        400,
        "`max_tokens` must be greater than `thinking.budget_tokens`",
    ),
    (
        "thinking_supported",
        lambda b: base(model="claude-opus-4-7", thinking={"type": "enabled", "budget_tokens": 1024}),
        400,
        '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive"',
    ),
    (
        "thinking_supported",
        lambda b: base(model="claude-haiku-4-5", thinking={"type": "adaptive"}),
        400,
        "adaptive thinking is not supported on this model",
    ),
    (
        "thinking_forced_tool",
        lambda b: base(
            tools=[WEATHER_TOOL],
            tool_choice={"type": "any"},
            max_tokens=4096,
            thinking={"type": "enabled", "budget_tokens": 1024},
        ),
        400,
        "Thinking may not be enabled when tool_choice forces tool use.",
    ),
    (
        "thinking_forced_tool",
        lambda b: base(
            model="claude-sonnet-5-5",
            tools=[WEATHER_TOOL],
            tool_choice={"type": "tool", "name": "get_weather"},
            thinking={"type": "adaptive"},
        ),
        400,
        "Thinking may not be enabled when tool_choice forces tool use.",
    ),
    (
        "thinking_sampling",
        lambda b: base(temperature=0.5, thinking={"type": "adaptive"}),
        400,
        "`temperature` may only be set to 1 when thinking is enabled",
    ),
    (
        "thinking_sampling",
        lambda b: base(top_k=5, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024}),
        400,
        "`top_k` is not supported when thinking is enabled",
    ),
    (
        "thinking_sampling",
        lambda b: base(top_p=0.9, thinking={"type": "adaptive"}),
        400,
        "`top_p` must be between 0.95 and 1",
    ),
    (
        "thinking_signature",
        lambda b: base(
            tools=[WEATHER_TOOL],
            thinking={"type": "adaptive"},
            messages=[
                *tool_turn(
                    thinking={"type": "thinking", "thinking": "plan", "signature": b.signer.sign("other")}
                ),
                result_turn("toolu_1"),
            ],
        ),
        400,
        "messages.1.content.0: Invalid `signature` in `thinking` block",
    ),
    (
        "thinking_signature",
        lambda b: base(
            tools=[WEATHER_TOOL],
            thinking={"type": "adaptive"},
            messages=[*tool_turn(thinking={"type": "thinking", "thinking": "plan"}), result_turn("toolu_1")],
        ),
        400,
        "messages.1.content.0.thinking.signature: Field required",
    ),
    (
        "thinking_first_in_tool_turn",
        lambda b: base(
            tools=[WEATHER_TOOL],
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[*tool_turn(), result_turn("toolu_1")],
        ),
        400,
        "Expected `thinking` or `redacted_thinking`, but found `tool_use`",
    ),
    (
        "effort_supported",
        lambda b: base(model="claude-sonnet-4-6", output_config={"effort": "xhigh"}),
        400,
        "This model does not support effort level 'xhigh'. Supported levels: high, low, max, medium.",
    ),
    (
        "effort_supported",
        lambda b: base(model="claude-haiku-4-5", output_config={"effort": "low"}),
        400,
        "This model does not support the effort parameter.",
    ),
    (
        "cache_control_max",
        lambda b: base(
            system=[{"type": "text", "text": f"part {i}", "cache_control": cc()} for i in range(5)]
        ),
        400,
        "A maximum of 4 blocks with cache_control may be provided. Found 5.",
    ),
    (
        "cache_control_max",
        lambda b: base(
            cache_control=cc(),
            system=[{"type": "text", "text": f"part {i}", "cache_control": cc()} for i in range(4)],
        ),
        400,
        "Found 5.",
    ),
    (
        "cache_ttl_order",
        lambda b: base(
            system=[
                {"type": "text", "text": "a", "cache_control": cc("5m")},
                {"type": "text", "text": "b", "cache_control": cc("1h")},
            ]
        ),
        400,
        "must not come after",
    ),
    (
        "tool_schema",
        lambda b: base(tools=[{**WEATHER_TOOL, "input_schema": {"type": "string"}}]),
        400,
        "tools.0.custom.input_schema.type: Input should be 'object'",
    ),
    (
        "tool_schema",
        lambda b: base(
            tools=[
                {**WEATHER_TOOL, "input_schema": {"type": "object", "properties": {"x": {"type": "strin"}}}}
            ]
        ),
        400,
        "JSON schema is invalid",
    ),
    ("tool_schema", lambda b: base(tools=[WEATHER_TOOL, WEATHER_TOOL]), 400, "Tool names must be unique"),
    (
        "tool_choice",
        lambda b: base(tools=[WEATHER_TOOL], tool_choice={"type": "tool", "name": "nope"}),
        400,
        "tool_choice.tool.name",
    ),
    (
        "tool_result_file_source",
        lambda b: base(
            tools=[WEATHER_TOOL],
            messages=[
                *tool_turn(),
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": [
                                {"type": "document", "source": {"type": "file", "file_id": "file_1"}}
                            ],
                        }
                    ],
                },
            ],
        ),
        400,
        "messages.2.content.0.tool_result.content.0.document.source: Input tag 'file' found using 'type' "
        "does not match any of the expected tags",
    ),
    ("image_data", lambda b: base(messages=image_msg("image/png", "not base64!!")), 400, "not valid base64"),
    (
        "image_data",
        lambda b: base(messages=image_msg("image/png", JPEG_HEAD)),
        400,
        "messages.0.content.0.image.source.base64: The image was specified using the image/png media "
        "type, but the image appears to be a image/jpeg image",
    ),
    (
        "image_data",
        lambda b: base(messages=image_msg("image/bmp", PNG_1PX)),
        400,
        "media_type: Input should be",
    ),
    (
        "sampling_ranges",
        lambda b: base(temperature=1.5),
        400,
        "temperature: Input should be less than or equal to 1",
    ),
    ("sampling_ranges", lambda b: base(top_p=-0.1), 400, "top_p: Input should be greater than or equal to 0"),
    ("sampling_ranges", lambda b: base(top_k=-1), 400, "top_k"),
    ("stop_sequences", lambda b: base(stop_sequences=["  "]), 400, "non-whitespace"),
    (
        "output_format",
        lambda b: base(output_config={"format": {"type": "json_schema", "schema": {"type": "obj"}}}),
        400,
        "output_config.format.schema: JSON schema is invalid",
    ),
    (
        "container_type",
        lambda b: base(container={"id": "container_011"}),
        400,
        "container: Input should be a valid string",
    ),
]


def test_every_rule_has_a_case_and_a_doc() -> None:
    assert {r.id for r in RULES} == {c[0] for c in CASES}
    for rule in RULES:
        assert rule.doc.startswith("https://platform.claude.com/docs/")


@pytest.mark.parametrize(
    ("rule", "make", "status", "fragment"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
async def test_rule(
    rule: str, make: Callable[[OfflineBackend], dict[str, Any]], status: int, fragment: str
) -> None:
    backend = OfflineBackend(signing_key=b"k", today="2026-12-01")
    body = make(backend)
    headers = {"x-api-key": "k", **body.pop("__headers__", {})}
    async with httpx2.AsyncClient(transport=backend.async_transport(), base_url="http://x") as http:
        resp = await http.post("/v1/messages", json=body, headers=headers)
    assert resp.status_code == status, resp.text
    err = resp.json()
    assert err["type"] == "error"
    assert err["error"]["type"] == ("not_found_error" if status == 404 else "invalid_request_error")
    assert fragment in err["error"]["message"]
    assert backend.requests == []  # a rejected request never reaches the responder


ACCEPTED: list[dict[str, Any]] = [
    base(messages=[{"role": "user", "content": [{"type": "text", "text": "blocks"}]}]),
    base(system="a string system"),
    base(system=[{"type": "text", "text": "block system", "cache_control": cc("1h")}]),
    base(cache_control={"type": "ephemeral"}),
    base(cache_control=cc("1h")),
    base(
        output_config={
            "effort": "low",
            "format": {
                "type": "json_schema",
                "schema": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            },
        }
    ),
    base(thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"}),
    base(thinking={"type": "adaptive", "display": "summarized"}),
    base(thinking={"type": "disabled"}),
    base(tools=[WEATHER_TOOL], tool_choice={"type": "auto", "disable_parallel_tool_use": True}),
    base(tools=[WEATHER_TOOL], tool_choice={"type": "any"}),
    base(tools=[WEATHER_TOOL], tool_choice={"type": "none"}),
    base(tools=[WEATHER_TOOL], tool_choice={"type": "tool", "name": "get_weather"}),
    base(diagnostics={"previous_message_id": None}),
    base(metadata={"user_id": "u-1"}),
    base(stop_sequences=["END"], temperature=0.2, top_p=0.9, top_k=5),
    base(model="claude-haiku-4-5-20251001"),
    base(model="claude-haiku-4-5"),  # the alias of that snapshot
    base(max_tokens=0),  # pre-warms the cache (SDK max_tokens docstring)
    base(messages=image_msg("image/png", PNG_1PX)),
    base(messages=[user("x"), {"role": "assistant", "content": "Prefilled"}]),
]


@pytest.mark.parametrize("body", ACCEPTED, ids=[str(i) for i in range(len(ACCEPTED))])
async def test_accepted(body: dict[str, Any]) -> None:
    client = make_async_client(OfflineBackend(today="2026-12-01"), max_retries=0)
    # The SDK has no sampling parameters; they travel in extra_body as documented in the notes.
    extra = {k: body[k] for k in ("temperature", "top_p", "top_k") if k in body}
    params = {k: v for k, v in body.items() if k not in extra}
    msg = await client.messages.create(**params, extra_body=extra or None)
    assert msg.type == "message" and msg.usage.input_tokens > 0
    assert msg.model == lookup(body["model"]).id  # type: ignore[union-attr]


async def test_thinking_blocks_signed_by_the_backend_round_trip(backend: OfflineBackend) -> None:
    client = make_async_client(backend, max_retries=0)
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 3000,
        "tools": [WEATHER_TOOL],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    first = await client.messages.create(messages=[user("weather in Paris?")], **params)
    content = [b.model_dump(exclude_none=True) for b in first.content]
    tool_id = next(b["id"] for b in content if b["type"] == "tool_use")
    result = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "sunny"}],
    }
    ok = await client.messages.create(
        messages=[user("weather in Paris?"), {"role": "assistant", "content": content}, result], **params
    )
    assert ok.stop_reason == "end_turn"
    tampered = [dict(b) for b in content]
    tampered[0]["thinking"] += " (edited)"
    import anthropic

    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature`"):
        await client.messages.create(
            messages=[user("weather in Paris?"), {"role": "assistant", "content": tampered}, result], **params
        )
    # A backend with another key does not accept this backend's signatures.
    other = make_async_client(OfflineBackend(signing_key=b"another"), max_retries=0)
    with pytest.raises(anthropic.BadRequestError):
        await other.messages.create(
            messages=[user("weather in Paris?"), {"role": "assistant", "content": content}, result], **params
        )
