"""chat.reset() / chat.load() while a reply streams: refused with one line, the running turn unharmed."""

from __future__ import annotations

from pathlib import Path

import pytest

import claudekit as ck
from claudekit.offline import OfflineBackend

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("action", ["reset", "load"])
async def test_reset_or_load_during_a_streaming_reply_is_refused_in_one_line(action: str, tmp_path: Path):
    saved = tmp_path / "other.json"
    other = ck.Chat(offline=OfflineBackend(), render=False)
    await other("an older conversation")
    other.save(saved)

    chat = ck.Chat(offline=OfflineBackend(event_delay=0.01), render=False)
    refused: list[ck.ClaudekitError] = []
    async for _event in chat.stream("tell me something"):
        if not refused:
            with pytest.raises(ck.BusyError) as info:
                chat.reset() if action == "reset" else chat.load(saved)
            refused.append(info.value)
    message = str(refused[0])
    assert "\n" not in message and f"{action}()" in message and "still answering" in message
    # The turn finished into its own conversation: user first, then the answer; nothing else crept in.
    roles = [m["role"] for m in chat.history.to_params()]
    assert roles == ["user", "assistant"]
    assert chat.history.problems() == []
    # Once the reply is in, the same call works.
    getattr(chat, action)(*(() if action == "reset" else (saved,)))
    assert [m["role"] for m in chat.history.to_params()][:1] == (["user"] if action == "load" else [])
