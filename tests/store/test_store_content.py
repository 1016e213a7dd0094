"""Chats and messages in the store: written whole at each commit, searchable, never holding a key."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

import claudekit as ck
from claudekit import store
from claudekit.store import REDACTED, ChatState, load_chat, scrub

from ._support import all_bytes, rows


def _msg(role: str, text: str) -> str:
    return json.dumps({"role": role, "content": [{"type": "text", "text": text}]}, separators=(",", ":"))


def _state(chat_id: str, name: str, messages: list[str] | None, **kw: Any) -> ChatState:
    return ChatState(
        id=chat_id,
        name=name,
        model="claude-sonnet-4-6",
        settings={"system": "Be brief.", "max_tokens": 1024},
        tools=[{"name": "lookup", "input_schema": {"type": "object"}}],
        state={"turn": len(messages or []) // 2, "last_message_id": "msg_1"},
        messages=tuple(messages) if messages is not None else None,
        **kw,
    )


def _save(state: ChatState) -> None:
    s = store.get_store()
    assert s is not None
    s.save_chat(state)
    assert s.flush()


def test_messages_are_replaced_from_the_first_change(home: Path) -> None:
    m = [_msg("user", "How many customers churned?"), _msg("assistant", "About 4%."), _msg("user", "Why?")]
    _save(_state("c1", "analysis", m[:2]))
    db = home / "claudekit.db"
    first_ids = rows(db, "SELECT id FROM messages ORDER BY position")
    _save(_state("c1", "analysis", m))  # one more message: the first two rows are kept as they are
    assert rows(db, "SELECT id FROM messages ORDER BY position")[:2] == first_ids
    edited = [m[0], _msg("assistant", "About 5%."), m[2]]
    _save(_state("c1", "analysis", edited))  # an edit in the middle rewrites from there on
    assert rows(db, "SELECT position, text FROM messages ORDER BY position") == [
        (0, "How many customers churned?"),
        (1, "About 5%."),
        (2, "Why?"),
    ]
    _save(_state("c1", "analysis", edited[:1]))  # a shorter history (e.g. after an error) drops the rest
    assert rows(db, "SELECT count(*) FROM messages") == [(1,)]
    assert ck.search("5%").empty  # the removed message is out of the index too
    loaded = load_chat("analysis")
    assert loaded.id == "c1" and loaded.messages == [json.loads(edited[0])]
    assert loaded.settings == {"system": "Be brief.", "max_tokens": 1024}
    assert loaded.state["last_message_id"] == "msg_1"


def test_search_finds_words_stems_and_phrases(home: Path) -> None:
    retention = [
        _msg("user", "Which customers churned in March?"),
        _msg("assistant", "The annual plan holders."),
    ]
    pricing = [
        _msg("user", "Is churn related to the price change?"),
        _msg("assistant", "Partly: churn rose."),
    ]
    _save(_state("c1", "retention", retention))
    _save(_state("c2", "pricing", pricing))
    found = ck.search("churn")
    assert set(found["chat"]) == {"retention", "pricing"}  # "churned" found by its stem
    assert len(found) == 3
    assert found["rank"].is_monotonic_increasing  # best (lowest bm25) first
    assert set(ck.search("churn price")["chat"]) == {"pricing"}  # all words must occur
    assert list(ck.search('"annual plan"')["role"]) == ["assistant"]
    assert ck.search('"plan annual"').empty
    assert set(ck.search("churn", chat="retention")["chat"]) == {"retention"}
    assert ck.search("cancellation").empty
    assert list(ck.search("don't")["chat"]) == []  # a quote in plain words is not an FTS syntax error
    with pytest.raises(ValueError) as info:
        ck.search('"unclosed')
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError):
        ck.search("  ")


def test_chats_lists_the_stored_chats(home: Path) -> None:
    _save(_state("c1", "first", [_msg("user", "a"), _msg("assistant", "b")]))
    _save(_state("c2", "second", [_msg("user", "c")]))
    listed = ck.chats()
    assert list(listed["name"]) == ["second", "first"]  # most recently used first
    assert list(listed["messages"]) == [1, 2]
    assert list(ck.chats("first")["id"]) == ["c1"]
    with pytest.raises(LookupError) as info:
        load_chat("third")
    assert "third" in str(info.value) and "\n" not in str(info.value)


def test_usage_mode_keeps_no_content(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDEKIT_STORE", "usage")
    _save(_state("c1", "private", [_msg("user", "The secret plan is Bluebird.")]))
    db = home / "claudekit.db"
    assert rows(db, "SELECT name, settings, tools FROM chats") == [("private", None, None)]
    assert rows(db, "SELECT count(*) FROM messages") == [(0,)]
    assert b"Bluebird" not in all_bytes(home) and b"Be brief" not in all_bytes(home)


def test_keys_are_redacted_before_anything_is_written(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_key = "sk-ant-api03-ENVKEY" + secrets.token_urlsafe(40)
    other_key = "sk-ant-api03-PASTED" + secrets.token_urlsafe(40)
    odd_key = "proxy-token-" + secrets.token_hex(16)  # not key-shaped: known because a client uses it
    monkeypatch.setenv("ANTHROPIC_API_KEY", env_key)
    store.add_secret(odd_key)
    text = f"my key is {env_key}, the old one {other_key}, the proxy's {odd_key}"
    state = _state("c1", "keys", [_msg("user", text)])
    state = ChatState(
        state.id, state.name, state.model, {"system": text}, state.tools, {"note": text}, state.messages
    )
    _save(state)
    data = all_bytes(home)
    for key in (env_key, other_key, odd_key):
        assert key.encode() not in data
        assert key[5:25].encode() not in data  # no long piece of it either
    assert rows(home / "claudekit.db", "SELECT text FROM messages") == [
        (f"my key is {REDACTED}, the old one {REDACTED}, the proxy's {REDACTED}",)
    ]


def test_scrub_leaves_ordinary_text_alone() -> None:
    text = "risk-averse task-list sk-learn desk-1234567890abcdefghijk"
    assert scrub(text, []) == text
    assert scrub("key=sk-ant-api03-abcdefgh_ij-kl", []) == f"key={REDACTED}"
    assert scrub("sk-proj-" + "a1B2" * 10, []) == REDACTED
