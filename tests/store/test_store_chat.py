"""A chat in the store: written as it runs, resumed with the same next request, estimated, budgeted.

Requests are captured as the bytes that reached the offline backend through the SDK's real client.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import claudekit as ck
from claudekit import _seams as _render
from claudekit import store
from claudekit.offline import Script, ToolCall, Turn, count_tokens
from claudekit.usage import count_tokens_params, set_budget

from ._support import Capturing, rows

SYSTEM = "You are a careful analyst of subscription data. " * 60  # long enough to be cached


def lookup(metric: str) -> str:
    """Look a metric up in the warehouse."""
    return f"{metric}: 4.2% in March"


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
SETTINGS = [
    {"thinking": 2048, "max_tokens": 4096, "cache": "1h"},
    {"output_format": SCHEMA, "temperature": 0.25, "stop_sequences": ["END"], "metadata": {"user_id": "u-1"}},
    {"cache": False, "effort": "low", "tool_choice": "lookup", "parallel_tool_calls": False},
]


@pytest.mark.parametrize("settings", SETTINGS, ids=["thinking-1h", "format-sampling", "nocache-tools"])
async def test_resume_sends_the_request_the_old_chat_would_have_sent(home: Path, settings: dict) -> None:
    backend = Capturing(signing_key=b"k", fail_once="And in May?")
    tools = [lookup] if "tool_choice" in settings else None
    old = ck.Chat(offline=backend, name="analysis", system=SYSTEM, tools=tools, render=False, **settings)
    await old("Why did churn rise in March?")
    await old("And in April?")
    with pytest.raises(ck.BadRequestError):
        await old("And in May?")  # refused: this is what the old chat sends next
    wanted = backend.messages_sent()[-1]
    assert json.loads(wanted)["messages"][-1]["content"][-1]["text"] == "And in May?"
    await old.aclose()

    new = ck.Chat.resume("analysis", offline=backend, tools=tools, render=False)
    assert new.name == "analysis" and new.store_id == old.store_id
    assert new.history.messages == old.history.messages
    before = len(backend.messages_sent())
    await new("And in May?")
    assert backend.messages_sent()[before] == wanted  # byte for byte
    # It carries on as the same stored chat: one row, the turns continue.
    assert store.flush()
    db = home / "claudekit.db"
    assert rows(db, "SELECT count(*) FROM chats") == [(1,)]
    assert rows(db, "SELECT max(turn) FROM calls") == [(new._turn,)] and new._turn == 4
    await new.aclose()


async def test_the_store_follows_the_conversation(home: Path) -> None:
    turns = [Turn(tool_calls=[ToolCall("lookup", {"metric": "churn"})]), Turn(text="Churn rose to 4.2%.")]
    backend = Capturing(responder=Script([*turns, Turn(text="April was flat.")]))
    chat = ck.Chat(offline=backend, name="kpis", system=SYSTEM, tools=[lookup], render=False)
    await chat("What happened to churn?")
    await chat("And April?")
    assert store.flush()
    db = home / "claudekit.db"
    stored = [json.loads(r[0]) for r in rows(db, "SELECT content FROM messages ORDER BY position")]
    assert stored == chat.history.messages
    (state,) = rows(db, "SELECT state FROM chats")
    assert json.loads(state[0])["last_message_id"] == chat._last_message_id
    assert json.loads(state[0])["turn"] == 2
    # The usage rows point at the stored chat.
    assert rows(db, "SELECT DISTINCT chat FROM calls") == [(chat.store_id,)]
    assert list(ck.chats()["calls"]) == [3]
    # Full-text search over prompts, answers and tool results.
    assert set(ck.search("churn")["role"]) == {"user", "assistant"}
    assert list(ck.search("4.2%")["position"])  # the tool result and the answer
    await chat.aclose()


async def test_resume_errors_are_one_line(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ck.ConfigError) as info:
        ck.Chat.resume("nothing-like-this")
    assert "\n" not in str(info.value) and "claudekit.chats()" in str(info.value)
    monkeypatch.setenv("CLAUDEKIT_STORE", "usage")
    chat = ck.Chat(offline=Capturing(), name="private", render=False)
    await chat("hello")
    with pytest.raises(ck.ConfigError) as info:
        ck.Chat.resume("private")
    assert "CLAUDEKIT_STORE=usage" in str(info.value)


async def test_resume_without_the_tools_says_so(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    chat = ck.Chat(offline=Capturing(), name="tooled", tools=[lookup], render=False)
    await chat("hello")
    with caplog.at_level(logging.WARNING, logger="claudekit.store"):
        ck.Chat.resume("tooled", offline=Capturing(), render=False)
    assert any("lookup" in r.getMessage() and "tools=[...]" in r.getMessage() for r in caplog.records)


async def test_estimate_counts_the_next_request_and_sends_nothing(home: Path) -> None:
    backend = Capturing()
    chat = ck.Chat(offline=backend, system=SYSTEM, render=False)
    await chat("Why did churn rise in March?")
    sent = len(backend.messages_sent())
    before = [dict(m) for m in chat.history.messages]
    est = await chat.estimate("And in April?")
    assert len(backend.messages_sent()) == sent and chat.history.messages == before  # nothing sent or kept
    assert [p for p, _ in backend.raw][-1] == "/v1/messages/count_tokens"
    counted = json.loads(backend.raw[-1][1])
    assert est.input_tokens == count_tokens(counted)
    # The cache read expected is what the previous call cached.
    last = chat.usage[-1]
    assert est.expected_cache_read_tokens == (last.cache_read_input_tokens or 0) + (
        last.cache_creation_input_tokens or 0
    )
    await chat("And in April?")
    record = chat.usage[-1]
    assert record.prompt_tokens == est.input_tokens
    assert record.cache_read_input_tokens == est.expected_cache_read_tokens
    assert est.cost_min_usd <= record.cost_usd <= est.cost_max_usd  # type: ignore[operator]
    # The request it counted is the one that was sent (less what count_tokens does not take).
    assert count_tokens_params(json.loads(backend.messages_sent()[-1])) == counted
    await chat.aclose()


async def test_a_budget_refusal_sends_nothing(home: Path) -> None:
    backend = Capturing()
    chat = ck.Chat(offline=backend, budget_usd=0.01, render=False)  # 8192 output tokens could cost $0.12
    with pytest.raises(ck.BudgetExceededError) as info:
        await chat("Summarise the churn report.")
    err = info.value
    assert backend.messages_sent() == []  # only the token count went out
    assert [p for p, _ in backend.raw] == ["/v1/messages/count_tokens"]
    assert chat.history.messages == [] and len(chat.usage) == 0
    assert err.scope == "chat" and err.budget_usd == 0.01 and err.spent_usd == 0.0
    assert err.remaining_usd == 0.01 and err.estimate.cost_max_usd > 0.01
    assert "\n" not in str(err) and "$0.0100" in str(err) and "Chat(budget_usd=...)" in str(err)
    assert err.reply is not None and err.reply.error is err
    # A lower max_tokens fits the budget.
    reply = await chat("Summarise the churn report.", max_tokens=200)
    assert reply.text and len(backend.messages_sent()) == 1


async def test_a_session_budget_covers_every_chat(home: Path) -> None:
    backend = Capturing()
    first = ck.Chat(offline=backend, render=False, max_tokens=100)
    await first("hello")
    assert first.usage.total_cost
    spent = ck.usage.spent()  # everything this process spent, this chat's call included
    assert spent >= first.usage.total_cost
    set_budget(spent + 0.0001)  # less than any further call could cost
    second = ck.Chat(offline=backend, render=False, max_tokens=100)
    with pytest.raises(ck.BudgetExceededError) as info:
        await second("hello")
    assert info.value.scope == "session" and info.value.spent_usd == pytest.approx(spent)
    assert "claudekit.usage.set_budget" in str(info.value)
    assert len(backend.messages_sent()) == 1
    set_budget(None)
    await second("hello")
    assert len(backend.messages_sent()) == 2


async def test_a_tool_loop_stops_cleanly_at_the_budget(home: Path) -> None:
    backend = Capturing(
        responder=Script([Turn(tool_calls=[ToolCall("lookup", {"metric": "churn"})]), Turn(text="4.2%.")])
    )
    chat = ck.Chat(offline=backend, system=SYSTEM * 8, tools=[lookup], render=False, max_tokens=1000)
    first = await chat.estimate("What is churn?")
    assert first.cost_max_usd is not None
    # The first call fits; after paying for it (writing the long prompt to the cache), the second does not.
    chat.budget_usd = first.cost_max_usd * 1.05
    with pytest.raises(ck.BudgetExceededError) as info:
        await chat("What is churn?")
    reply = info.value.reply
    assert (
        reply is not None and len(reply.steps) == 1 and reply.tool_calls[0].result == "churn: 4.2% in March"
    )
    assert len(backend.messages_sent()) == 1
    assert chat.history.problems() == []
    assert chat.history.messages[-1]["content"][0]["type"] == "tool_result"  # the loop's results are kept
    # With more budget the conversation goes on, and the backend accepts it.
    chat.budget_usd = None
    answer = await chat("Go on.")
    assert answer.text == "4.2%." and len(backend.messages_sent()) == 2


async def test_the_view_is_told_the_budget(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict] = []

    class Spy:
        def start(self, info: dict) -> None:
            seen.append(info)

        def event(self, ev: object) -> None: ...

        def finish(self, reply: object, error: object) -> None: ...

    monkeypatch.setattr(_render, "_factory", lambda render: Spy())
    chat = ck.Chat(offline=Capturing(), budget_usd=0.5, max_tokens=100)
    await chat("hello")
    await chat("again")
    assert seen[0]["budget"] == {"scope": "chat", "budget_usd": 0.5, "spent_usd": 0.0}
    assert seen[1]["budget"]["spent_usd"] == pytest.approx(chat.usage[0].cost_usd)


def test_the_live_footer_shows_spent_and_budget() -> None:
    from claudekit.notebook._widget import WidgetRenderer
    from tests.notebook.helpers import FakeWidget

    made: list[FakeWidget] = []

    def factory(on_message: object) -> FakeWidget:
        made.append(FakeWidget(on_message))
        return made[-1]

    r = WidgetRenderer(15, display=lambda *a, **k: None, widget_factory=factory, static=False)
    r.start({"model": "claude-sonnet-4-6", "budget": {"scope": "chat", "budget_usd": 0.5, "spent_usd": 0.1}})
    r.event(ck.MessageStart(0, "m", "claude-sonnet-4-6", ck.Usage(1000, 10)))
    r.event(ck.TextDelta(0, "Hi"))
    # $0.10 before this reply + 1000 input at $3/M + 10 output at $15/M so far
    foot = made[0].page.foot
    assert "chat budget: $0.1032 / $0.5000" in foot, foot


async def test_reset_starts_a_new_stored_conversation(home: Path) -> None:
    chat = ck.Chat(offline=Capturing(), name="notes", render=False)
    await chat("Remember the churn numbers.")
    first_id = chat.store_id
    chat.reset()
    await chat("Something else.")
    assert chat.store_id != first_id
    listed = ck.chats("notes")
    assert list(listed["id"]) == [chat.store_id, first_id] and list(listed["messages"]) == [2, 2]
    assert set(ck.search("churn")["chat_id"]) == {first_id}  # the old conversation is still there
    assert ck.Chat.resume(first_id, offline=Capturing(), render=False).history.turns == 1
