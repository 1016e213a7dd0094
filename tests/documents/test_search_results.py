"""ck.SearchResult in a prompt and from a tool, cited as search_result_location (real HTTP, offline).

Each citation is checked against the search results the test itself made: the cited text is the text
of the blocks in its range, and its index, source and title are those of that result.
"""

from __future__ import annotations

import asyncio
from typing import Any

import claudekit as ck
from claudekit.offline import OfflineBackend, make_async_client

RESULTS = [
    ck.SearchResult(
        source="https://kb.example/leave",
        title="Leave policy",
        content=["Employees get 25 days of leave.", "Unused days expire in March."],
    ),
    ck.SearchResult(
        source="https://kb.example/sick", title="Sick leave", content="A note is needed after 3 days."
    ),
]


def _check(reply: ck.Reply, results: list[ck.SearchResult]) -> int:
    checked = 0
    for step in reply.messages:
        for block in step.content:
            for c in getattr(block, "citations", None) or []:
                assert c.type == "search_result_location"
                made = results[c.search_result_index].to_block()
                texts = [b["text"] for b in made["content"][c.start_block_index : c.end_block_index]]
                assert c.cited_text == "".join(texts) and (c.source, c.title) == (
                    made["source"],
                    made["title"],
                )
                checked += 1
    frame = reply.citations
    assert list(frame["type"]) == ["search_result_location"] * checked
    return checked


def test_search_results_from_a_tool_and_in_a_prompt_are_cited() -> None:
    @ck.tool
    def search_kb(query: str) -> list[Any]:
        """Search the knowledge base."""
        return list(RESULTS)

    async def run() -> None:
        backend = OfflineBackend()
        chat = ck.Chat(client=make_async_client(backend, max_retries=0), tools=[search_kb], render=False)
        reply = await chat("Use search_kb: how many days of leave do employees get?")
        assert _check(reply, RESULTS) == 2
        sent = backend.requests[-1]["messages"][-1]["content"][0]["content"]
        assert [b["type"] for b in sent] == ["search_result", "search_result"]
        plain = ck.Chat(client=make_async_client(backend, max_retries=0), render=False)
        one = [RESULTS[0]]
        assert _check(await plain(["When do unused days expire?", *one]), one) == 1

    asyncio.run(run())


def test_streamed_search_result_citations_accumulate_as_the_sdk_does() -> None:
    from claudekit.offline import make_client

    client = make_client(OfflineBackend(), max_retries=0)
    messages = [
        {"role": "user", "content": [RESULTS[0].to_block(), {"type": "text", "text": "When do days expire?"}]}
    ]
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=300, messages=messages) as stream:
        streamed = stream.get_final_message()
    created = client.messages.create(model="claude-sonnet-4-6", max_tokens=300, messages=messages)

    def cites(message: Any) -> list[dict[str, Any]]:
        return [c.model_dump() for b in message.content for c in getattr(b, "citations", None) or []]

    assert cites(streamed) == cites(created) and cites(created)
