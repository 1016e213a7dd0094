"""The service's own tools (web search, web fetch, code execution) and the MCP connector, through the
offline backend over the SDK's HTTP client: the request shapes, the simulated results (search results with
encrypted content and page ages, cited text), usage columns and costs, and pause_turn continuation."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import anthropic
import pytest

import claudekit as ck
from claudekit._base._secrets import scrub
from claudekit._request._history import block_to_param
from claudekit.notebook._static import footer_line
from claudekit.offline import DefaultResponder, OfflineBackend
from claudekit.offline._server_tools import CORPUS
from claudekit.usage import load_prices

CONNECTOR = [{"url": "https://mcp.example.com/mcp", "name": "docs"}]


class Recording(DefaultResponder):
    """The default responder, noting each request's betas (the header the service reads)."""

    def __init__(self) -> None:
        self.betas: list[str] = []

    def __call__(self, request: Any) -> Any:
        self.betas.append(str(request.headers.get("anthropic-beta", "")))
        return super().__call__(request)


def _blocks(chat: ck.Chat, kind: str) -> list[dict[str, Any]]:
    return [b for m in chat.history.messages for b in m["content"] if b.get("type") == kind]


async def test_search_results_citations_and_the_next_turn() -> None:
    backend = OfflineBackend()
    chat = ck.Chat(tools=[ck.web_search(max_uses=2)], offline=backend, render=False)
    reply = await chat("search the web: what is Project Jupyter?")
    sent = backend.requests[-1]
    assert sent["tools"][0]["type"] == "web_search_20260318" and sent["tools"][0]["max_uses"] == 2
    [call] = reply.tool_calls
    assert call.server and call.name == "web_search"
    [result] = _blocks(chat, "web_search_tool_result")
    urls = {row[0] for row in CORPUS}
    assert result["content"] and all(r["url"] in urls and r["encrypted_content"] for r in result["content"])
    assert all(r.get("page_age") for r in result["content"])
    cites = [c for b in _blocks(chat, "text") for c in b.get("citations") or []]
    assert cites and all(c["type"] == "web_search_result_location" and c["url"] in urls for c in cites)
    # The history (server_tool_use, results, cited text) goes back as it came: the next turn is accepted.
    again = await chat("thanks")
    assert again.stop_reason == "end_turn" and len(backend.requests) == 2


async def test_domains_fetch_and_code_are_simulated() -> None:
    chat = ck.Chat(
        tools=[ck.web_search(allowed_domains=["python.org"]), ck.web_fetch(), ck.code_execution()],
        offline=True,
        render=False,
    )
    await chat("search for a tutorial and run code to add numbers")
    [search] = _blocks(chat, "web_search_tool_result")
    assert [r["url"].split("/")[2] for r in search["content"]] == ["docs.python.org"]
    [run] = _blocks(chat, "code_execution_tool_result")
    assert run["content"]["type"] == "code_execution_result" and run["content"]["return_code"] == 0
    await chat("now read https://example.com/")
    [fetched] = _blocks(chat, "web_fetch_tool_result")
    assert fetched["content"]["content"]["title"] == "Example Domain"


async def test_the_connector_sends_servers_toolsets_and_its_beta() -> None:
    responder = Recording()
    backend = OfflineBackend(responder=responder)
    chat = ck.Chat(mcp_servers=CONNECTOR, offline=backend, render=False)
    reply = await chat("ask docs about the release")
    body = backend.requests[-1]
    assert body["mcp_servers"] == [{"type": "url", **CONNECTOR[0]}]
    assert {"type": "mcp_toolset", "mcp_server_name": "docs"} in body["tools"]
    assert "mcp-client-2025-11-20" in responder.betas[-1].split(",")
    [use] = _blocks(chat, "mcp_tool_use")
    assert use["server_name"] == "docs" and use["input"] == {"query": "offline"}  # the input deltas kept
    assert _blocks(chat, "mcp_tool_result")[0]["tool_use_id"] == use["id"]
    assert [c.server for c in reply.tool_calls] == [True]
    await chat("and once more, ask docs")  # mcp blocks in history are sent back and accepted
    assert len(_blocks(chat, "mcp_tool_use")) == 2


def test_bad_server_tool_options_are_one_line_errors() -> None:
    with pytest.raises(ck.ConfigError, match="not both"):
        ck.web_search(allowed_domains=["a.org"], blocked_domains=["b.org"])
    with pytest.raises(ck.ConfigError, match="max_uses"):
        ck.web_fetch(max_uses=0)
    with pytest.raises(ck.ConfigError, match="version"):
        ck.code_execution(version="19990101")
    with pytest.raises(ck.ConfigError, match="https://"):
        ck.Chat(mcp_servers=[{"url": "http://x", "name": "x"}], offline=True)


async def test_usage_columns_and_costs() -> None:
    chat = ck.Chat(tools=[ck.web_search(), ck.code_execution()], offline=True, render=False)
    reply = await chat("search the web for pandas and run code")
    row = chat.usage.df.iloc[-1]
    assert (row.web_search_requests, row.web_fetch_requests, row.code_execution_requests) == (1, 0, 1)
    table = json.loads((Path(ck.usage.__path__[0]) / "prices.json").read_text(encoding="utf-8"))
    fees, model = table["server_tools"], table["models"]["claude-sonnet-4-6"]
    tokens = (row.input_tokens * model["input"] + row.output_tokens * model["output"]) * 1e-6
    tokens += (row.cache_creation_input_tokens * model["cache_write_5m"]) * 1e-6
    fee = fees["web_search_per_1000"] / 1000
    fee += fees["code_execution_per_hour"] * fees["code_execution_min_minutes"] / 60
    assert row.cost_usd == pytest.approx(tokens + fee)
    assert ck.usage.cost_of(chat.usage.records[-1]) == pytest.approx(tokens + fee)
    footer = footer_line(reply)
    assert "1 search, 1 code run" in footer
    [shown] = re.findall(r"\$([0-9.]+)", footer)  # the view's footer prices them too
    assert float(shown) == pytest.approx(tokens + fee, rel=0.01) and float(shown) > tokens * 2
    assert load_prices().server_tools.web_search_per_1000 == fees["web_search_per_1000"]
    estimate = await ck.Chat(tools=[ck.web_search(max_uses=3)], offline=True, render=False).estimate("hi")
    plain = await ck.Chat(offline=True, render=False).estimate("hi")
    assert estimate.cost_max_usd - plain.cost_max_usd >= 3 * fees["web_search_per_1000"] / 1000
    assert estimate.server_tools_max_usd == pytest.approx(3 * fees["web_search_per_1000"] / 1000)
    assert "server tools up to $0.0300" in str(estimate) and "server tools" not in str(plain)


async def test_pause_turn_continues_with_the_paused_content_last() -> None:
    backend = OfflineBackend()
    chat = ck.Chat(tools=[ck.web_search()], offline=backend, render=False)
    reply = await chat("search jupyter [pause_turn:2]")
    assert [s.message.stop_reason for s in reply.steps if s.message] == [
        "pause_turn",
        "pause_turn",
        "end_turn",
    ]
    continued = list(backend.requests)[1:]
    assert len(continued) == 2
    for n, body in enumerate(continued, start=1):
        last = body["messages"][-1]
        assert last["role"] == "assistant"
        assert sum(b["type"] == "server_tool_use" for b in last["content"]) == n
    assert reply.text.startswith("(offline) Here is what")


async def test_pause_turn_limit_says_so_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    chat = ck.Chat(tools=[ck.web_search()], offline=True, render=False, max_pauses=1)
    with caplog.at_level(logging.WARNING, logger="claudekit"):
        reply = await chat("search jupyter [pause_turn:3]")
    assert reply.stop_reason == "pause_turn" and len(reply.steps) == 2
    notes = [r.getMessage() for r in caplog.records if "pause_turn" in r.getMessage()]
    assert len(notes) == 1 and "\n" not in notes[0] and "max_pauses=1" in notes[0]
    finished = await chat.send()  # no prompt: the paused turn goes on, up to the limit again
    assert finished.stop_reason == "end_turn"


async def test_the_final_message_matches_the_sdks_own_accumulation() -> None:
    backend = OfflineBackend()
    chat = ck.Chat(tools=[ck.web_search(), ck.code_execution()], offline=backend, render=False)
    await chat("search the web for python and run code")
    body = dict(backend.requests[-1])
    sdk: anthropic.AsyncAnthropic = chat.client  # the SDK's own client, on the same offline backend
    body.pop("stream", None)
    async with sdk.messages.stream(**body) as stream:
        final = await stream.get_final_message()
    assert [block_to_param(b) for b in final.content] == chat.history.messages[-1]["content"]


def test_a_connector_token_stays_out_of_errors_reprs_and_files() -> None:
    token = "mcp-secret-token-0123456789abcdef"
    with pytest.raises(ck.ConfigError) as bad:
        ck.Chat(mcp_servers=[{"name": "x", "authorization_token": token}], offline=True)
    assert token not in str(bad.value)
    chat = ck.Chat(mcp_servers=[{**CONNECTOR[0], "authorization_token": token}], offline=True, render=False)
    assert token not in repr(chat)
    assert token not in scrub(json.dumps(chat.settings.mcp_servers))  # the store and cassettes scrub so


async def test_a_budget_counts_the_server_tools_worst_case() -> None:
    # 50 tokens of output cost well under a cent; five searches may cost $0.05: only they can pass $0.02.
    plain = ck.Chat(offline=True, render=False, max_tokens=50, budget_usd=0.02)
    await plain("search the web for pandas")
    searching = ck.Chat(
        tools=[ck.web_search(max_uses=5)], offline=True, render=False, max_tokens=50, budget_usd=0.02
    )
    with pytest.raises(ck.BudgetExceededError):
        await searching("search the web for pandas")


async def test_server_tools_sit_next_to_your_own() -> None:
    ran: list[str] = []

    @ck.tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        ran.append(city)
        return f"18°C in {city}"

    chat = ck.Chat(tools=[get_weather, ck.web_search()], offline=True, render=False)
    mine = await chat('Use get_weather for city "Paris"')
    assert ran == ["Paris"] and [c.server for c in mine.tool_calls] == [False]
    theirs = await chat("search the web for jupyter")
    assert ran == ["Paris"] and [(c.name, c.server) for c in theirs.tool_calls] == [("web_search", True)]
