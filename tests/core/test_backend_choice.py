"""``offline=`` as a user guesses it: True (the shared offline backend), False (the real API), a backend."""

from __future__ import annotations

import pandas as pd
import pytest

import claudekit as ck

FAKE_KEY = "sk-ant-api03-FAKEfakeFAKEfake0123456789"


async def test_offline_true_answers_from_the_offline_backend_even_with_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A key is set, so without offline=True this chat would go to the real API (and fail here).
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    chat = ck.Chat(offline=True, cache=False, render=False)
    reply = await chat("say hello")
    assert chat.offline is not None and reply.text.strip()
    assert chat.history.problems() == []


async def test_map_takes_offline_true(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    out = await ck.map(pd.DataFrame({"t": ["a", "b"]}), "echo {t}", offline=True, progress=False)
    assert list(out["claude_status"]) == ["ok", "ok"] and out["claude_text"].str.len().gt(0).all()


def test_offline_false_means_the_real_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("CLAUDEKIT_BACKEND", raising=False)
    with pytest.raises(ck.MissingAPIKeyError):  # not a silent switch to simulated answers
        ck.Chat(offline=False)


@pytest.mark.parametrize(
    "kwargs",
    [{"offline": "yes"}, {"offline": True, "backend": "anthropic"}, {"offline": False, "backend": "offline"}],
)
def test_a_wrong_offline_value_is_one_line(kwargs: dict[str, object]) -> None:
    with pytest.raises(ck.ConfigError) as info:
        ck.Chat(**kwargs)  # type: ignore[arg-type]
    assert "offline" in str(info.value) and "\n" not in str(info.value)
