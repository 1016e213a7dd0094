"""Shapes the service answered 200 in other projects' recorded traffic (issue 24 item 7), whichever
supported SDK is installed. Run against the lowest and the newest supported SDK (anthropic 2.15 and 2.17;
docs/offline.md has the figures)."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from offline_helpers import MODEL, user

from claudekit.offline import OfflineBackend

ASK = [user("hi")]
TOOL_TURN = [
    user("hi"),
    {
        "role": "assistant",
        "content": [
            {"type": "mcp_tool_use", "id": "mcptoolu_1", "name": "t", "server_name": "x", "input": {}},
            {
                "type": "mcp_tool_result",
                "tool_use_id": "mcptoolu_1",
                "content": [{"type": "text", "text": "r"}],
            },
        ],
    },
    user("go on"),
]
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}

# (what, extra body fields, beta header) — each a shape recorded with a 200 (issue 24 item 7's list).
SHAPES: list[tuple[str, dict[str, Any], str]] = [
    (
        "legacy output_format",
        {"output_format": {"type": "json_schema", "schema": SCHEMA}},
        "structured-outputs-2025-11-13",
    ),
    (
        "context_management",
        {"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}},
        "context-management-2025-06-27",
    ),
    (
        "compaction block",
        {
            "messages": [
                user("hi"),
                {"role": "assistant", "content": [{"type": "compaction", "content": "s"}]},
                user("go"),
            ]
        },
        "compact-2026-01-12",
    ),
    (
        "mcp_servers",
        {"mcp_servers": [{"type": "url", "url": "https://x.example/mcp", "name": "x"}]},
        "mcp-client-2025-04-04",
    ),
    ("mcp_tool_use blocks", {"messages": TOOL_TURN}, "mcp-client-2025-04-04"),
    (
        "computer_20250124",
        {
            "tools": [
                {
                    "type": "computer_20250124",
                    "name": "computer",
                    "display_width_px": 1024,
                    "display_height_px": 768,
                }
            ]
        },
        "computer-use-2025-01-24",
    ),
    (
        "computer_20251124",
        {
            "tools": [
                {
                    "type": "computer_20251124",
                    "name": "computer",
                    "display_width_px": 1024,
                    "display_height_px": 768,
                }
            ]
        },
        "computer-use-2025-11-24",
    ),
    (
        "advisor_20260301",
        {"tools": [{"type": "advisor_20260301", "name": "advisor", "model": "claude-opus-4-6"}]},
        "advisor-tool-2026-03-01",
    ),
    (
        "output_config.task_budget",
        {"output_config": {"task_budget": {"type": "tokens", "total": 20000}}},
        "task-budgets-2026-03-13",
    ),
    (
        "text block with null citations",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "citations": None}]}]},
        "",
    ),
]


@pytest.mark.parametrize(("what", "fields", "beta"), SHAPES, ids=[s[0] for s in SHAPES])
def test_recorded_service_shape_is_accepted(what: str, fields: dict[str, Any], beta: str) -> None:
    body = {"model": MODEL, "max_tokens": 100, "messages": ASK, **fields}
    headers = {"x-api-key": "k", **({"anthropic-beta": beta} if beta else {})}
    with httpx2.Client(transport=OfflineBackend().transport(), base_url="http://offline.invalid") as http:
        resp = http.post("/v1/messages", json=body, headers=headers)
    assert resp.status_code == 200, f"{what}: {resp.text}"
