"""Server-tool calls in the live and static views: search results as inert titles and hosts, the fetched
page's title, code with its exit code and output, the MCP server as a field of its own. The results are
the service's (untrusted): a hostile title must stay text in both views."""

from __future__ import annotations

import re
from html import unescape

import claudekit as ck
from claudekit.notebook._state import ViewState
from claudekit.notebook._static import static_html
from claudekit.notebook._widget import _card_json
from claudekit.offline import OfflineBackend, Script, Turn

HOSTILE = '<img src=x onerror="alert(1)"> Evil [link](javascript:alert(2))'
SEARCH = [
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
    {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_1",
        "content": [
            {
                "type": "web_search_result",
                "url": "https://evil.example/page",
                "title": HOSTILE,
                "encrypted_content": "abc",
                "page_age": "1 day ago",
            }
        ],
    },
    {
        "type": "server_tool_use",
        "id": "srvtoolu_2",
        "name": "code_execution",
        "input": {"code": "print(6*7)"},
    },
    {
        "type": "code_execution_tool_result",
        "tool_use_id": "srvtoolu_2",
        "content": {
            "type": "code_execution_result",
            "stdout": "42\n",
            "stderr": "warn",
            "return_code": 0,
            "content": [{"type": "code_execution_output", "file_id": "file_011plot"}],
        },
    },
]


def visible(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html))


async def _reply(blocks: list[dict[str, object]], **chat: object) -> tuple[ck.Reply, ViewState]:
    backend = OfflineBackend(responder=Script([Turn(text="Done.", server_blocks=blocks)]))
    c = ck.Chat(offline=backend, render=False, **chat)  # type: ignore[arg-type]
    state = ViewState()
    async for ev in c.stream("go"):
        state.apply(ev)
    reply = c.last_reply
    assert reply is not None
    state.finish(reply, None)
    return reply, state


async def test_search_and_code_results_in_both_views_stay_text() -> None:
    reply, state = await _reply(SEARCH)
    search, code = (_card_json(state.cards[i], None) for i in ("srvtoolu_1", "srvtoolu_2"))
    assert search["details"] == [f"{HOSTILE} — evil.example"]  # the live view writes them as textContent
    assert code["details"] == ["exit code 0", "stdout: 42", "stderr: warn", "file: file_011plot"]
    assert '"code": "print(6*7)"' in code["args"]
    html = static_html(reply)
    assert "<img" not in html and "href=" not in html
    assert "<a " not in html
    text = visible(html)
    assert f"{HOSTILE} — evil.example" in text and "stdout: 42" in text and "exit code 0" in text


async def test_fetched_page_title_and_the_connector_server_name() -> None:
    blocks = [
        {
            "type": "server_tool_use",
            "id": "srvtoolu_3",
            "name": "web_fetch",
            "input": {"url": "https://example.com/"},
        },
        {
            "type": "web_fetch_tool_result",
            "tool_use_id": "srvtoolu_3",
            "content": {
                "type": "web_fetch_result",
                "url": "https://example.com/",
                "content": {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                    "title": "Example Domain",
                },
            },
        },
        {
            "type": "mcp_tool_use",
            "id": "mcptoolu_1",
            "name": "lookup",
            "server_name": "docs",
            "input": {"q": 1},
        },
        {
            "type": "mcp_tool_result",
            "tool_use_id": "mcptoolu_1",
            "is_error": False,
            "content": [{"type": "text", "text": "found it"}],
        },
    ]
    reply, state = await _reply(blocks, mcp_servers=[{"url": "https://mcp.example.com/mcp", "name": "docs"}])
    fetch = _card_json(state.cards["srvtoolu_3"], None)
    assert fetch["details"] == ["fetched “Example Domain” — example.com"]
    mcp = _card_json(state.cards["mcptoolu_1"], None)
    assert mcp["mcp"] == "docs" and mcp["details"] == ["found it"] and mcp["status"] == "done"
    [call] = [c for c in reply.tool_calls if c.name == "lookup"]
    assert call.server and call.server_name == "docs"
    text = visible(static_html(reply))
    assert "🔧 lookup · docs — done" in text and "Server: docs" in text
    assert "fetched “Example Domain” — example.com" in text
