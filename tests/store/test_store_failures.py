"""Failure modes a user meets: a database file that is not one, and mistakes in what they ask for.

Each must be one line saying what happened and what to do (a ClaudekitError, which the notebook shows
without a traceback), and the conversation itself must go on.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import claudekit as ck
from claudekit import ClaudekitError
from claudekit.offline import OfflineBackend
from claudekit.store import StoreWarning
from claudekit.usage import history, session_log, set_budget

from ._support import record


@pytest.mark.parametrize("junk", [b"this is not a database\n", bytes(range(256)) * 32])
async def test_a_corrupted_database_file_is_one_line_and_the_chat_goes_on(home: Path, junk: bytes) -> None:
    home.mkdir(parents=True)
    (home / "claudekit.db").write_bytes(junk)
    chat = ck.Chat(offline=OfflineBackend(), name="kept", render=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reply = await chat("hello")
        ck.store.flush()
    assert reply.text, "the answer must arrive even though the store cannot keep it"
    said = [str(w.message) for w in caught if issubclass(w.category, StoreWarning)]
    assert len(said) == 1 and "\n" not in said[0] and "move it aside" in said[0], said

    for read in (history, ck.chats, lambda: ck.search("hello"), lambda: ck.Chat.resume("kept")):
        with pytest.raises(ClaudekitError) as info:
            read()
        line = str(info.value)
        assert "\n" not in line and str(home / "claudekit.db") in line and "move it aside" in line, line
    await chat.aclose()
    assert (home / "claudekit.db").read_bytes() == junk  # never overwritten: it may be recoverable


def test_mistakes_in_what_is_asked_are_one_line_claudekit_errors(home: Path) -> None:
    session_log().append(record(1))  # a file exists, so that the search query really runs
    asks = [
        lambda: history("last tuesday"),
        lambda: ck.search(""),
        lambda: ck.search("("),
        lambda: set_budget(-1),
    ]
    for ask in asks:
        with pytest.raises(ClaudekitError) as info:
            ask()
        assert "\n" not in str(info.value)


def test_the_store_warning_prints_as_one_line(home: Path) -> None:
    home.parent.mkdir(parents=True, exist_ok=True)
    home.write_text("a file where the home directory should be")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session_log().append(record(1))
        ck.store.flush()
    said = [w for w in caught if issubclass(w.category, StoreWarning)]
    assert len(said) == 1
    w = said[0]
    shown = warnings.formatwarning(w.message, w.category, w.filename, w.lineno)
    # What the user sees (the kernel's stderr): one line, without a line of claudekit's source under it.
    assert shown.count("\n") == 1 and "CLAUDEKIT_HOME" in shown, shown


def test_resume_with_the_store_off_says_how_to_turn_it_on(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDEKIT_STORE", "off")
    with pytest.raises(ClaudekitError) as info:
        ck.Chat.resume("analysis")
    line = str(info.value)
    # Not "claudekit.chats() lists the stored chats": with the store off that list is always empty.
    assert "chats()" not in line and "CLAUDEKIT_STORE=on" in line and "\n" not in line, line
