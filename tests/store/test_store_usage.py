"""usage.history(): the stored calls as the usage DataFrame, filtered; the store's modes; where writes run."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

import claudekit as ck
from claudekit import store
from claudekit.offline import OfflineBackend, Script, ToolCall, Turn
from claudekit.store import Store
from claudekit.usage import COLUMNS, UsageFrame, UsageLog, history, session_log

from ._support import record, rows


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"18°C in {city}"


async def _run_chat() -> ck.Chat:
    backend = OfflineBackend(
        responder=Script(
            [
                Turn(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]),
                Turn(text="Sunny in Paris."),
                Turn(text="And mild tomorrow."),
            ]
        )
    )
    chat = ck.Chat(offline=backend, tools=[get_weather], system="Be brief. " * 300, render=False)
    await chat("Weather in Paris?")
    await chat("Tomorrow?")
    await chat.aclose()
    return chat


async def test_history_is_the_chat_usage_frame_read_back(home: Path) -> None:
    chat = await _run_chat()
    live = chat.usage.df
    assert len(live) == 3
    hist = history()
    assert isinstance(hist, UsageFrame)
    assert list(hist.columns) == list(COLUMNS) == list(live.columns)
    for column in COLUMNS:
        assert str(hist[column].dtype) == str(live[column].dtype), column
    pd.testing.assert_frame_equal(pd.DataFrame(hist), live, check_categorical=False)
    pd.testing.assert_frame_equal(hist.summary(), chat.usage.summary())
    figure = hist.plot()
    assert isinstance(figure, Figure) and figure.axes
    # pandas' own plotting is still there.
    axes = hist.plot.bar(x="turn", y="output_tokens")
    assert axes.get_xlabel() == "turn"
    # Slicing keeps the type, so a selection summarises too.
    one = hist[hist["step"] == 0]
    assert isinstance(one, UsageFrame) and int(one.summary()["calls"].iloc[0]) == 2


def test_an_empty_history_has_the_columns_and_dtypes(home: Path) -> None:
    hist = history()
    assert hist.empty and list(hist.columns) == list(COLUMNS)
    reference = UsageLog().df
    assert [str(t) for t in hist.dtypes] == [str(t) for t in reference.dtypes]
    assert not (home / "claudekit.db").exists()  # reading never creates the file
    assert hist.summary().empty


def test_history_filters(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(timezone.utc)
    log = session_log()
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ana/work/analysis.ipynb")
    log.append(record(1, timestamp=now - timedelta(days=10), chat_id="a"))
    log.append(record(2, timestamp=now - timedelta(days=3), chat_id="b", model="claude-opus-4-8"))
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ana/work/report.ipynb")
    log.append(record(3, timestamp=now - timedelta(hours=1), chat_id="b"))
    monkeypatch.delenv("JPY_SESSION_NAME")
    log.append(record(4, timestamp=now - timedelta(minutes=5), chat_id="c"))

    def ids(frame: pd.DataFrame) -> list[str]:
        return list(frame["request_id"])

    assert ids(history()) == ["req_000001", "req_000002", "req_000003", "req_000004"]
    assert ids(history("7d")) == ["req_000002", "req_000003", "req_000004"]
    assert ids(history("2h")) == ["req_000003", "req_000004"]
    assert ids(history(timedelta(minutes=30))) == ["req_000004"]
    assert ids(history(now - timedelta(days=4), until="2h")) == ["req_000002"]
    assert ids(history(model="claude-opus-4-8")) == ["req_000002"]
    assert ids(history(model=["claude-opus-4-8", "claude-sonnet-4-6"], since="1d")) == [
        "req_000003",
        "req_000004",
    ]
    assert ids(history(notebook="analysis.ipynb")) == ["req_000001", "req_000002"]
    assert ids(history(notebook="/home/ana/work/report.ipynb")) == ["req_000003"]
    assert ids(history(notebook="nalysis.ipynb")) == []  # a file name, not any suffix
    assert ids(history(chat="b")) == ["req_000002", "req_000003"]
    since_date = (now - timedelta(days=4)).date().isoformat()
    assert ids(history(since_date)) == ["req_000002", "req_000003", "req_000004"]
    db = home / "claudekit.db"
    assert rows(db, "SELECT notebook FROM calls ORDER BY id") == [
        ("/home/ana/work/analysis.ipynb",),
        ("/home/ana/work/analysis.ipynb",),
        ("/home/ana/work/report.ipynb",),
        (None,),
    ]


def test_a_bad_time_is_one_line(home: Path) -> None:
    with pytest.raises(ValueError) as info:
        history("last tuesday")
    assert "\n" not in str(info.value) and "'7d'" in str(info.value)


async def test_store_off_writes_nothing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDEKIT_STORE", "off")
    assert store.get_store() is None
    chat = await _run_chat()
    assert len(chat.usage) == 3
    assert not home.exists()
    assert history().empty and ck.chats().empty


async def test_a_typo_in_the_mode_keeps_nothing_and_says_so(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDEKIT_STORE", "of")
    with pytest.warns(UserWarning, match="CLAUDEKIT_STORE='of'"):
        assert store.get_store() is None


async def test_writes_run_on_the_store_thread_not_the_event_loop(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    original = Store._transaction

    def noted(self, db, calls, chats):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return original(self, db, calls, chats)

    monkeypatch.setattr(Store, "_transaction", noted)
    loop_thread = threading.current_thread().name
    await _run_chat()
    assert store.flush()
    assert threads and set(threads) == {"claudekit-store"} and loop_thread != "claudekit-store"
    assert len(history()) == 3


async def test_server_tool_counts_and_fees_are_stored(home: Path) -> None:
    chat = ck.Chat(tools=[ck.web_search(), ck.code_execution()], offline=True, render=False)
    await chat("search the web for pandas and run code")
    await chat.aclose()
    assert store.flush()
    live, hist = chat.usage.df, history()
    names = ["web_search_requests", "web_fetch_requests", "code_execution_requests"]
    assert hist[names].iloc[-1].tolist() == live[names].iloc[-1].tolist() == [1, 0, 1]
    assert hist["cost_usd"].iloc[-1] == pytest.approx(live["cost_usd"].iloc[-1])
