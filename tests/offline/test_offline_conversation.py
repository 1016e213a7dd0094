"""A multi-turn thinking + tools conversation through the raw SDK stream, with exact usage per turn."""

from __future__ import annotations

import json
import warnings
from typing import Any

from offline_helpers import MODEL, TIME_TOOL, WEATHER_TOOL, user

from claudekit.offline import OfflineBackend, count_text, count_tokens, make_async_client
from claudekit.offline._tokens import REQUEST_FRAMING as F

SYSTEM_TEXT = " ".join(
    f"Guideline {i}: be precise, name your sources, and prefer metric units." for i in range(150)
)


def expected_output_tokens(content: list[dict[str, Any]]) -> int:
    total = 0
    for b in content:
        if b["type"] == "thinking":
            total += count_text(b["thinking"])
        elif b["type"] == "text":
            total += count_text(b["text"])
        elif b["type"] == "tool_use":
            total += count_text(json.dumps(b["input"], ensure_ascii=False))
    return total


async def test_thinking_tool_conversation_usage_per_turn() -> None:
    backend = OfflineBackend(signing_key=b"conversation")
    client = make_async_client(backend)
    tools = [WEATHER_TOOL, {**TIME_TOOL, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    system = [{"type": "text", "text": SYSTEM_TEXT, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    static = count_tokens(tools=tools, system=system, messages=[]) - F  # tools + system prefix
    assert static >= 1024
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 4096,
        "tools": tools,
        "system": system,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "cache_control": {"type": "ephemeral"},
    }
    messages: list[dict[str, Any]] = [user("What is the weather in Paris and Rome?")]
    previous_total = 0
    seen: list[tuple[str | None, int]] = []
    for turn in range(5):
        if turn == 4:
            backend.advance(301)  # 5 minute entries expire; the 1 hour tools+system entry survives
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            async with client.messages.stream(messages=messages, **params) as stream:
                async for _ in stream:
                    pass
                final = await stream.get_final_message()
        content = [b.model_dump(exclude_none=True) for b in final.content]
        total = count_tokens(tools=tools, system=system, messages=messages)
        u = final.usage
        if turn == 0:
            expect = (F, total - F, 0, total - F - static, static)
        elif turn == 4:
            expect = (F, total - F - static, static, total - F - static, 0)
        else:
            expect = (F, total - previous_total, previous_total - F, total - previous_total, 0)
        got = (
            u.input_tokens,
            u.cache_creation_input_tokens,
            u.cache_read_input_tokens,
            u.cache_creation.ephemeral_5m_input_tokens,
            u.cache_creation.ephemeral_1h_input_tokens,
        )
        assert got == expect, f"turn {turn}"
        assert u.output_tokens == expected_output_tokens(content)
        assert content[0]["type"] == "thinking" and content[0]["signature"]
        seen.append((final.stop_reason, sum(b["type"] == "tool_use" for b in content)))
        previous_total = total
        messages.append({"role": "assistant", "content": content})
        tool_uses = [b for b in content if b["type"] == "tool_use"]
        if tool_uses:
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": b["id"],
                            "content": f"{b['input']['city']}: 21C, clear",
                        }
                        for b in tool_uses
                    ],
                }
            )
        elif turn == 1:
            messages.append(user("And what is the weather in Berlin?"))
        else:
            messages.append(user("Thanks! Summarise everything in one line."))
    # Parallel calls for two cities, an answer quoting results, one call for Berlin, then answers.
    assert seen == [("tool_use", 2), ("end_turn", 0), ("tool_use", 1), ("end_turn", 0), ("end_turn", 0)]
    answer = messages[3]["content"][-1]["text"]
    assert "Paris: 21C, clear" in answer and "Rome: 21C, clear" in answer
    assert [b["input"] for b in messages[5]["content"] if b["type"] == "tool_use"] == [{"city": "Berlin"}]
