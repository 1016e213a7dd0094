"""UsageLog: appending, forwarding, DataFrame dtypes, definitions over sums, summary, JSONL persistence."""

from __future__ import annotations

import json
import warnings
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from claudekit.usage import COLUMNS, UsageLog, UsageLogWarning, UsageRecord, session_log

from ._support import T0, make_message

M = 1_000_000


def rec(i: int = 0, chat: str = "a", model: str = "claude-sonnet-4-6", **tokens: object) -> UsageRecord:
    return UsageRecord(
        timestamp=T0 + timedelta(seconds=i), chat_id=chat, turn=i, step=0, model=model, **tokens
    ).priced()  # type: ignore[arg-type]


def test_append_len_iter_records_and_parent_forwarding() -> None:
    parent = UsageLog()
    child = UsageLog(parent=parent)
    r1, r2 = rec(0, input_tokens=1, output_tokens=1), rec(1, input_tokens=2, output_tokens=2)
    child.append(r1)
    child.append(r2)
    assert len(child) == 2 and len(parent) == 2
    assert list(child) == [r1, r2] and parent.records == [r1, r2]
    assert child[1] is r2
    other = UsageLog(parent=parent)
    other.append(rec(2, chat="b", input_tokens=3, output_tokens=3))
    assert len(parent) == 3 and len(child) == 2
    with pytest.raises(TypeError):
        child.append({"input_tokens": 1})  # type: ignore[arg-type]


def test_session_log_is_process_wide() -> None:
    assert session_log() is session_log()
    before = len(session_log())
    UsageLog(parent=session_log()).append(rec(input_tokens=1, output_tokens=1))
    assert len(session_log()) == before + 1


def test_df_dtypes() -> None:
    log = UsageLog()
    log.append(
        rec(
            0,
            input_tokens=10,
            output_tokens=5,
            cache_read_input_tokens=0,
            latency_s=1.0,
            cache_miss_reason="system_changed",
        )
    )
    log.append(rec(1, status="interrupted"))
    df = log.df
    assert list(df.columns) == list(COLUMNS)
    assert isinstance(df["timestamp"].dtype, pd.DatetimeTZDtype)
    assert str(df["timestamp"].dt.tz) == "UTC"
    assert df["timestamp"].iloc[1] - df["timestamp"].iloc[0] == pd.Timedelta(seconds=1)
    for col in (
        "turn",
        "step",
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
        "thinking_tokens",
        "server_tool_uses",
        "prompt_tokens",
    ):
        assert df[col].dtype == "Int64", col
    for col in ("chat_id", "model", "status", "stop_reason", "cache_miss_reason"):
        assert isinstance(df[col].dtype, pd.CategoricalDtype), col
    for col in ("cost_usd", "cost_no_cache_usd", "latency_s", "hit_rate", "savings_usd"):
        assert df[col].dtype == "Float64", col
    assert df["request_id"].dtype == "string"
    assert set(df["status"].cat.categories) == {"ok", "interrupted"}


def test_missing_usage_is_na_not_zero_in_df() -> None:
    log = UsageLog()
    log.append(rec(0, status="api_error"))
    log.append(rec(1, input_tokens=10, output_tokens=3))
    df = log.df
    assert df["input_tokens"].isna().tolist() == [True, False]
    assert df["output_tokens"].isna().tolist() == [True, False]
    assert df["cost_usd"].isna().tolist() == [True, False]
    assert df["input_tokens"].sum() == 10
    assert int(df["cache_read_input_tokens"].isna().sum()) == 2


def test_empty_log() -> None:
    log = UsageLog()
    assert len(log.df) == 0 and list(log.df.columns) == list(COLUMNS)
    assert log.df["input_tokens"].dtype == "Int64"
    assert log.hit_rate is None and log.total_cost is None
    assert len(log.summary()) == 0
    assert "0 calls" in repr(log) and "0 calls" in log._repr_html_()


def test_session_hit_rate_is_over_sums_not_mean_of_rates() -> None:
    log = UsageLog()
    log.append(
        rec(0, input_tokens=500, cache_creation_input_tokens=500, cache_read_input_tokens=0, output_tokens=0)
    )
    log.append(
        rec(
            1,
            input_tokens=100,
            cache_creation_input_tokens=900,
            cache_read_input_tokens=9000,
            output_tokens=0,
        )
    )
    per_call = [r.hit_rate for r in log]
    assert per_call == [0.0, pytest.approx(0.9)]
    # over sums: 9000 / (600 + 1400 + 9000)
    assert log.hit_rate == pytest.approx(9000 / 11000)
    assert log.hit_rate != pytest.approx(0.45)  # the mean of rates would be wrong
    assert log.df["hit_rate"].tolist() == [0.0, pytest.approx(0.9)]


def test_total_cost_and_summary_per_model() -> None:
    log = UsageLog()
    log.append(rec(0, input_tokens=1000, output_tokens=1000))  # sonnet: 3 + 15
    log.append(rec(1, input_tokens=0, output_tokens=0, cache_read_input_tokens=M))  # sonnet: 0.3
    log.append(rec(2, model="claude-opus-4-8", input_tokens=M, output_tokens=0))  # opus: 5
    log.append(rec(3, model="claude-opus-4-8", status="rate_limit_error"))  # no usage
    assert log.total_cost == pytest.approx(0.018 + 0.3 + 5.0)
    s = log.summary()
    assert list(s.index) == ["claude-opus-4-8", "claude-sonnet-4-6"]
    assert s.loc["claude-sonnet-4-6", "calls"] == 2
    assert s.loc["claude-opus-4-8", "errors"] == 1
    assert s.loc["claude-sonnet-4-6", "cost_usd"] == pytest.approx(0.318)
    assert s.loc["claude-sonnet-4-6", "cost_no_cache_usd"] == pytest.approx(0.018 + 3.0)
    assert s.loc["claude-sonnet-4-6", "hit_rate"] == pytest.approx(M / (1000 + M))
    assert s.loc["claude-opus-4-8", "input_tokens"] == M


def test_unknown_model_makes_total_and_model_cost_missing() -> None:
    log = UsageLog()
    log.append(rec(0, input_tokens=1000, output_tokens=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log.append(rec(1, model="claude-sonnet-6", input_tokens=1000, output_tokens=0))
    assert log.unpriced_calls == 1
    assert log.total_cost is None
    s = log.summary()
    assert pd.isna(s.loc["claude-sonnet-6", "cost_usd"])
    assert s.loc["claude-sonnet-4-6", "cost_usd"] == pytest.approx(0.003)
    assert "unknown" in repr(log)


def test_jsonl_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    log = UsageLog(path)
    split = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 7}
    msg = make_message(
        usage={
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 100,
            "cache_creation": split,
            "cache_creation_input_tokens": 7,
        }
    )
    r1 = UsageRecord.from_message(
        msg,
        chat_id="c",
        turn=1,
        step=0,
        model="claude-sonnet-4-6",
        request_id="req_1",
        status="ok",
        latency_s=1.25,
        ttft_s=None,
        started_at=T0,
        client_miss_reason="tools changed (added: x)",
    )
    log.append(r1)
    log.append(rec(5, status="interrupted"))
    assert len(path.read_text().splitlines()) == 2
    again = UsageLog.load(path)
    assert again.records == log.records
    pd.testing.assert_frame_equal(again.df, log.df)
    # a new log on the same file continues it ("survives a kernel restart")
    resumed = UsageLog(path)
    assert len(resumed) == 2
    resumed.append(rec(9, input_tokens=1, output_tokens=1))
    assert len(UsageLog.load(path)) == 3
    # load() is detached: appending does not write
    again.append(rec(10, input_tokens=1, output_tokens=1))
    assert len(path.read_text().splitlines()) == 3


def test_corrupt_lines_skipped_with_warning_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    good = json.dumps(rec(0, input_tokens=1, output_tokens=1).to_dict())
    negative = json.dumps({**rec(1).to_dict(), "input_tokens": -5})
    path.write_text("\n".join([good, "{not json", "[1, 2]", negative, "", good]) + "\n")
    with pytest.warns(UsageLogWarning) as caught:
        log = UsageLog.load(path)
    assert len(log) == 2
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3
    assert any(f"{path}:2:" in m for m in messages)
    assert any(f"{path}:3:" in m for m in messages)
    assert any(f"{path}:4:" in m and "negative" in m for m in messages)


def test_df_is_cached_and_invalidated_on_append() -> None:
    log = UsageLog()
    log.append(rec(0, input_tokens=1, output_tokens=1))
    first = log.df
    first.loc[0, "input_tokens"] = 999  # a copy: mutating it does not corrupt the log
    assert log.df.loc[0, "input_tokens"] == 1
    log.append(rec(1, input_tokens=2, output_tokens=2))
    assert len(log.df) == 2


def test_for_chat_and_clear() -> None:
    log = UsageLog()
    for i in range(6):
        log.append(rec(i, chat="a" if i % 2 else "b", input_tokens=1, output_tokens=1))
    assert len(log.for_chat("a")) == 3
    log.clear()
    assert len(log) == 0 and len(log.df) == 0


def test_repr_and_html() -> None:
    log = UsageLog()
    log.append(rec(0, chat="x<y>", input_tokens=1000, output_tokens=100, cache_read_input_tokens=3000))
    text = repr(log)
    assert text.startswith("UsageLog(1 calls") and "hit_rate=75.0%" in text
    html = log._repr_html_()
    assert "<table" in html and "claude-sonnet-4-6" in html
    assert "75.0%" in html
    assert "x<y>" not in html and "x&lt;y&gt;" in html


def test_dataframe_of_many_records_keeps_every_row_and_dtype() -> None:
    # The 100k timing target lives in benchmarks/bench_usage.py; here only correctness at size.
    log = UsageLog()
    r = rec(
        0,
        input_tokens=100,
        output_tokens=50,
        cache_read_input_tokens=1000,
        cache_creation_input_tokens=10,
        latency_s=1.0,
        request_id="req_x",
    )
    for _ in range(20_000):
        log.append(r)
    df = log.df
    assert len(df) == 20_000
    assert str(df["input_tokens"].dtype) == "Int64"
    assert int(df["cache_read_input_tokens"].sum()) == 20_000 * 1000
