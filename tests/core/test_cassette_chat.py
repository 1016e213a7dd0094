"""Chat(cassette=...): record real HTTP exchanges (key never written), replay with no key, no server."""

from __future__ import annotations

from pathlib import Path

import pytest

import claudekit as ck
from claudekit.offline import OfflineBackend

SECRET = "sk-ant-api03-ZZtestKEYnotREAL0123456789abcdefghijklmnopqrstuvwx"


def weather(city: str) -> str:
    """Current weather for a city."""
    return f"rainy in {city}"


async def test_record_over_loopback_then_replay_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "session.jsonl"
    prompts = ["use weather for city Lyon", "thanks, and one more question"]
    with OfflineBackend().serve() as server:
        rec = ck.Chat(
            cassette=path,
            api_key=SECRET,
            base_url=server.base_url,
            tools=[weather],
            thinking=1024,
            render=False,
        )
        recorded = [await rec(p) for p in prompts]
    assert recorded[0].tool_calls[0].result == "rainy in Lyon"
    text = path.read_text()
    assert SECRET not in text and SECRET[:12] not in text
    assert len(text.splitlines()) == 3  # tool call, answer after the tool, second prompt

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    rep = ck.Chat(cassette=path, base_url=server.base_url, tools=[weather], thinking=1024, render=False)
    assert rep.backend == "cassette:none"
    replayed = [await rep(p) for p in prompts]  # the server is stopped: this can only come from the file
    assert [r.message for r in replayed] == [r.message for r in recorded]
    assert rep.history == rec.history

    before = rep.history.to_json()
    with pytest.raises(ck.CassetteMissError, match="something new") as info:
        await rep("something new")
    assert "\n" not in str(info.value)
    assert rep.history.to_json() == before  # the unanswered prompt is not left behind


def test_replay_without_file_or_key_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ck.MissingAPIKeyError, match="no cassette at"):
        ck.Chat(cassette=tmp_path / "missing.jsonl")
