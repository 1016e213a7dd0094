"""The service's behaviour where the offline backend used to differ (issue 13), one test per case.

Too strict: requests the service answered with 200 that offline refused. Too lenient: requests the
service refused that offline accepted. Every request goes through the SDK's own client (or raw HTTP
where the SDK would not send it) into the in-process transport.
"""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import httpx2
import pytest
from offline_helpers import MODEL, WEATHER_TOOL, user

from claudekit.offline import OfflineBackend, make_async_client

TODAY = "2026-12-01"


def tool_use(tool_id: str, city: str = "Paris") -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": "get_weather", "input": {"city": city}}


def tool_result(tool_id: str, content: Any = "sunny") -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": content}


async def post(
    body: dict[str, Any], headers: dict[str, str] | None = None, *, backend: OfflineBackend | None = None
) -> httpx2.Response:
    backend = backend or OfflineBackend(today=TODAY)
    async with httpx2.AsyncClient(transport=backend.async_transport(), base_url="http://x") as http:
        return await http.post("/v1/messages", json=body, headers={"x-api-key": "k", **(headers or {})})


def client(**kw: Any) -> Any:
    return make_async_client(OfflineBackend(**{"today": TODAY, **kw}), max_retries=0)


# -- too strict -----------------------------------------------------------------------------------


async def test_consecutive_assistant_tool_calls_answered_by_one_user_turn() -> None:
    messages = [
        user("weather in Paris and Tokyo?"),
        {"role": "assistant", "content": [{"type": "text", "text": "Paris first."}, tool_use("toolu_a")]},
        {"role": "assistant", "content": [tool_use("toolu_b", "Tokyo")]},
        {"role": "user", "content": [tool_result("toolu_a"), tool_result("toolu_b", "rainy")]},
    ]
    msg = await client().messages.create(model=MODEL, max_tokens=200, tools=[WEATHER_TOOL], messages=messages)
    assert msg.stop_reason == "end_turn"


async def test_error_paths_count_merged_turns() -> None:
    # Two user messages are one turn: the stray result is the turn's second block, as the service says.
    messages = [user("hi"), {"role": "user", "content": [tool_result("toolu_x")]}]
    resp = await post({"model": MODEL, "max_tokens": 50, "messages": messages})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith(
        "messages.0.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_x."
    )


async def test_system_role_messages_plain_and_with_tool_changes() -> None:
    plain = [user("hi"), {"role": "system", "content": "Answer in French from now on."}, user("again")]
    msg = await client().messages.create(model=MODEL, max_tokens=50, messages=plain)
    assert msg.type == "message"
    addition = {
        "role": "system",
        "content": [{"type": "tool_addition", "tool": {"type": "tool_reference", "name": "get_weather"}}],
    }
    body = {"model": MODEL, "max_tokens": 50, "messages": [user("hi"), addition, user("weather?")]}
    beta = {"anthropic-beta": "mid-conversation-tool-changes-2026-07-01"}
    assert (await post(body, beta)).status_code == 200
    # Without the beta header the block is not part of the plain request type.
    plain_resp = await post(body)
    assert plain_resp.status_code == 400
    assert "messages.1.content.0" in plain_resp.json()["error"]["message"]


async def test_beta_parameters_accepted_with_their_header_refused_without() -> None:
    body = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [user("numbers")],
        "output_format": {"type": "json_schema", "schema": {"type": "array", "items": {"type": "integer"}}},
    }
    refused = await post(body)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "output_format: Extra inputs are not permitted"
    ok = await post(body, {"anthropic-beta": "structured-outputs-2025-11-13"})
    assert ok.status_code == 200, ok.text
    # The SDK's own beta client sends the header and ?beta=true.
    beta_msg = await client().beta.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=[user("go")],
        betas=["task-budgets-2026-03-13"],
        output_config={"task_budget": {"type": "tokens", "total": 20000}},
    )
    assert beta_msg.type == "message"


async def test_unknown_beta_is_refused_like_the_service() -> None:
    resp = await post(
        {"model": MODEL, "max_tokens": 5, "messages": [user("x")]}, {"anthropic-beta": "nope-1"}
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == (
        "Unexpected value(s) `nope-1` for the `anthropic-beta` header. Please consult our documentation "
        "at platform.claude.com/docs or try again without the header."
    )


async def test_foreign_thinking_signature_is_unverifiable_not_invalid() -> None:
    # A signature the service made (any opaque base64 this backend did not issue) continues offline.
    foreign = base64.b64encode(b"EqoBCkgIBxABGAIiQLvendor-signature" * 4).decode()
    messages = [
        user("weather?"),
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": foreign},
                tool_use("t1"),
            ],
        },
        {"role": "user", "content": [tool_result("t1")]},
    ]
    backend = OfflineBackend(today=TODAY, signing_key=b"k")
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 3000,
        "tools": [WEATHER_TOOL],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    ok = await make_async_client(backend, max_retries=0).messages.create(messages=messages, **params)
    assert ok.stop_reason == "end_turn"
    # One this backend issued is still verified: tampering with its text is caught.
    own = backend.signer.sign("Use the tool.")
    messages[1]["content"][0] = {"type": "thinking", "thinking": "Use the tool, edited.", "signature": own}
    with pytest.raises(anthropic.BadRequestError, match=r"messages\.1\.content\.0: Invalid `signature`"):
        await make_async_client(backend, max_retries=0).messages.create(messages=messages, **params)


async def test_fields_newer_than_any_hand_kept_list() -> None:
    msg = await client().messages.create(
        model=MODEL,
        max_tokens=50,
        messages=[user("hi")],
        inference_geo="us",
        service_tier="auto",
        speed="standard",
        output_config={"effort": "low"},
    )
    assert msg.type == "message"


async def test_adaptive_thinking_with_forced_tool_choice_on_a_model_that_allows_it() -> None:
    params: dict[str, Any] = {
        "max_tokens": 500,
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "any"},
        "messages": [user("weather in Paris?")],
    }
    msg = await client().messages.create(model="claude-sonnet-5", thinking={"type": "adaptive"}, **params)
    assert msg.stop_reason == "tool_use"
    # Budgeted thinking still may not force a tool, and Sonnet 5.5 refuses it with adaptive too.
    with pytest.raises(anthropic.BadRequestError, match="tool_choice forces tool use"):
        await client().messages.create(
            model=MODEL, thinking={"type": "enabled", "budget_tokens": 1024}, **{**params, "max_tokens": 2048}
        )
    with pytest.raises(anthropic.BadRequestError, match="tool_choice forces tool use"):
        await client().messages.create(model="claude-sonnet-5-5", thinking={"type": "adaptive"}, **params)


async def test_conversation_may_start_with_an_assistant_message() -> None:
    messages = [{"role": "assistant", "content": "How can I help?"}, user("Say hi.")]
    msg = await client().messages.create(model=MODEL, max_tokens=50, messages=messages)
    assert msg.type == "message"


@pytest.mark.parametrize(
    ("model", "answered_as", "day"),
    [
        ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "2026-11-29"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", "2026-11-29"),
        ("claude-sonnet-4-0", "claude-sonnet-4-20250514", "2026-06-14"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet-20250219", "2026-02-18"),
        ("claude-haiku-4-5", "claude-haiku-4-5-20251001", TODAY),
        ("claude-opus-4-6", "claude-opus-4-6", TODAY),
    ],
)
async def test_ids_in_recorded_traffic_are_known_whatever_the_sdk_lists(
    model: str, answered_as: str, day: str
) -> None:
    # anthropic 2.15's Model literal has neither claude-sonnet-4-5 nor claude-sonnet-4-0 nor -latest ids;
    # the catalog (claudekit/models.json) has them, so the SDK version does not matter.
    msg = await client(today=day).messages.create(model=model, max_tokens=20, messages=[user("hi")])
    assert msg.model == answered_as  # the service names the snapshot an alias resolves to


async def test_retired_model_is_404_on_the_backend_clock() -> None:
    backend = OfflineBackend(today="2026-11-29")
    sdk = make_async_client(backend, max_retries=0)
    await sdk.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=[user("x")])
    backend.advance(2 * 86400)  # 2026-12-01: retired on 2026-11-30
    with pytest.raises(anthropic.NotFoundError, match="model: claude-sonnet-4-5"):
        await sdk.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=[user("x")])


# -- too lenient ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("container", "message"),
    [
        ({"id": "container_011CWd"}, "container: Input should be a valid string"),
        (42, "container: Input should be a valid string or a valid dictionary"),
    ],
)
async def test_container_of_the_wrong_type(container: Any, message: str) -> None:
    resp = await post({"model": MODEL, "max_tokens": 5, "messages": [user("x")], "container": container})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == message
    ok = await post({"model": MODEL, "max_tokens": 5, "messages": [user("x")], "container": "container_01"})
    assert ok.status_code == 200


async def test_effort_level_the_model_does_not_support() -> None:
    with pytest.raises(anthropic.BadRequestError) as err:
        await client().messages.create(
            model="claude-opus-4-6", max_tokens=50, messages=[user("x")], output_config={"effort": "xhigh"}
        )
    assert err.value.body["error"]["message"] == (  # type: ignore[index]
        "This model does not support effort level 'xhigh'. Supported levels: high, low, max, medium."
    )
    msg = await client().messages.create(
        model="claude-opus-4-7", max_tokens=50, messages=[user("x")], output_config={"effort": "xhigh"}
    )
    assert msg.type == "message"


async def test_text_after_a_tool_use_that_ends_the_turn() -> None:
    messages = [
        user("weather?"),
        {"role": "assistant", "content": [tool_use("toolu_1"), {"type": "text", "text": "Checking."}]},
        {"role": "user", "content": [tool_result("toolu_1")]},
    ]
    with pytest.raises(anthropic.BadRequestError, match="immediately after: toolu_1"):
        await client().messages.create(model=MODEL, max_tokens=50, tools=[WEATHER_TOOL], messages=messages)


@pytest.mark.parametrize(
    ("inner", "fragment"),
    [
        (
            {"type": "image", "source": {"type": "base64", "data": "iVBORw0KGgo="}},
            "messages.2.content.0.tool_result.content.0.image.source.base64.media_type: Field required",
        ),
        (
            {"type": "document", "source": {"type": "pdf", "data": "JVBERi0="}},
            "messages.2.content.0.tool_result.content.0.document.source: Input tag 'pdf' found using 'type'",
        ),
        (
            {"type": "text"},
            "messages.2.content.0.tool_result.content.0.text.text: Field required",
        ),
    ],
)
async def test_blocks_inside_tool_result_content(inner: dict[str, Any], fragment: str) -> None:
    messages = [
        user("chart?"),
        {"role": "assistant", "content": [tool_use("toolu_1")]},
        {"role": "user", "content": [tool_result("toolu_1", [inner])]},
    ]
    resp = await post({"model": MODEL, "max_tokens": 5, "tools": [WEATHER_TOOL], "messages": messages})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith(fragment)


async def test_whitespace_only_user_text() -> None:
    resp = await post({"model": MODEL, "max_tokens": 5, "messages": [user("   \n")]})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "messages: text content blocks must contain non-whitespace text"


async def test_duplicate_tool_result_ids() -> None:
    messages = [
        user("weather?"),
        {"role": "assistant", "content": [tool_use("toolu_1")]},
        {"role": "user", "content": [tool_result("toolu_1"), tool_result("toolu_1", "again")]},
    ]
    resp = await post({"model": MODEL, "max_tokens": 5, "tools": [WEATHER_TOOL], "messages": messages})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == (
        "messages.2.content.1: each tool_use must have a single result. Found multiple `tool_result` "
        "blocks with id: toolu_1"
    )
