"""Model names are checked against the catalog before anything is sent (claudekit/_models.py)."""

from __future__ import annotations

import json

import httpx2
import pytest

import claudekit as ck
from tests import sse
from tests.conftest import sdk_client, sse_transport


async def test_a_misspelt_model_fails_before_sending_with_a_suggestion() -> None:
    seen: list[httpx2.Request] = []
    client = sdk_client(sse_transport(sse.text_reply(), seen=seen))
    with pytest.raises(
        ck.ConfigError, match=r"unknown model 'claude-sonet-4': did you mean claude-sonnet-4-6\?"
    ):
        await ck.Chat(client=client, model="claude-sonet-4", render=False)("hi")
    assert seen == []


async def test_an_unknown_but_plausible_model_is_sent_as_is() -> None:
    # Newer than the catalog (or a proxy's own name): claudekit does not refuse it; the service decides.
    seen: list[httpx2.Request] = []
    client = sdk_client(sse_transport(sse.text_reply(), seen=seen))
    await ck.Chat(client=client, model="claude-sonnet-6", render=False)("hi")
    assert [json.loads(r.content)["model"] for r in seen] == ["claude-sonnet-6"]


@pytest.mark.parametrize(
    ("model", "thinking", "refused"),
    [
        ("claude-sonnet-5", "adaptive", False),  # the catalog: forced tool use allowed with adaptive thinking
        ("claude-sonnet-5-5", "adaptive", True),  # its page: forced tool use returns an error
        ("claude-sonnet-5", 2048, True),  # budgeted thinking: never
    ],
)
def test_forced_tool_choice_with_thinking_follows_the_catalog(
    model: str, thinking: object, refused: bool
) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    make = lambda: ck.Chat(model=model, thinking=thinking, tool_choice="any", tools=tools, backend="offline")  # noqa: E731
    if refused:
        with pytest.raises(ck.ConfigError, match="tool_choice='any' cannot be combined"):
            make()
    else:
        assert make().settings.tool_choice == "any"
