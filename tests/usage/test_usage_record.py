"""UsageRecord.from_message: field extraction, NA semantics, validation, definitions."""

from __future__ import annotations

import dataclasses
import json
import warnings
from datetime import datetime, timedelta, timezone

import pytest
from anthropic.types import MessageDeltaUsage
from anthropic.types.cache_miss_tools_changed import CacheMissToolsChanged

from claudekit.usage import MAX_TOKENS, UsageRecord

from ._support import T0, make_message

FULL_USAGE = {
    "input_tokens": 1000,
    "output_tokens": 500,
    "cache_creation_input_tokens": 2000,
    "cache_read_input_tokens": 10000,
    "cache_creation": {"ephemeral_5m_input_tokens": 1500, "ephemeral_1h_input_tokens": 500},
    "output_tokens_details": {"thinking_tokens": 120},
    "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 1},
    "service_tier": "standard",
}


def build(message: object = None, **kw: object) -> UsageRecord:
    args: dict[str, object] = dict(
        chat_id="chat-1",
        turn=3,
        step=1,
        model="claude-sonnet-4-6",
        request_id="req_abc",
        status="ok",
        latency_s=2.5,
        ttft_s=0.4,
        started_at=T0,
    )
    args.update(kw)
    return UsageRecord.from_message(message, **args)  # type: ignore[arg-type]


def test_from_message_reads_every_usage_field() -> None:
    msg = make_message(
        usage=FULL_USAGE,
        stop_reason="tool_use",
        msg_id="msg_42",
        diagnostics={"cache_miss_reason": {"type": "system_changed", "cache_missed_input_tokens": 9000}},
    )
    r = build(msg)
    assert (r.chat_id, r.turn, r.step, r.request_id, r.message_id) == ("chat-1", 3, 1, "req_abc", "msg_42")
    assert r.stop_reason == "tool_use" and r.status == "ok"
    assert r.input_tokens == 1000 and r.output_tokens == 500
    assert r.cache_creation_input_tokens == 2000 and r.cache_read_input_tokens == 10000
    assert (r.cache_creation_5m_input_tokens, r.cache_creation_1h_input_tokens) == (1500, 500)
    assert r.thinking_tokens == 120
    assert r.server_tool_uses == 3
    assert (r.web_search_requests, r.web_fetch_requests, r.code_execution_requests) == (2, 1, None)
    assert r.service_tier == "standard"
    assert (r.latency_s, r.ttft_s) == (2.5, 0.4)
    assert r.cache_miss_reason == "system_changed" and r.cache_missed_input_tokens == 9000
    assert r.miss_reason == "system prompt changed"
    assert r.timestamp == T0 and r.timestamp.tzinfo is not None
    # 1000×3 + 1500×3.75 + 500×6 + 10000×0.3 + 500×15 (USD per MTok), and two searches at $10 per 1,000
    # (a web fetch costs only its tokens: prices.json server_tools)
    assert r.cost_usd == pytest.approx((3000 + 5625 + 3000 + 3000 + 7500) / 1e6 + 2 * 10 / 1000)


def test_hit_rate_definition() -> None:
    r = build(make_message(usage=FULL_USAGE))
    assert r.prompt_tokens == 13000
    assert r.hit_rate == pytest.approx(10000 / 13000)


def test_explicit_cache_miss_reason_sdk_object_and_dict() -> None:
    msg = make_message(usage=FULL_USAGE)
    obj = CacheMissToolsChanged(type="tools_changed", cache_missed_input_tokens=77)
    r = build(msg, cache_miss_reason=obj)
    assert (r.cache_miss_reason, r.cache_missed_input_tokens) == ("tools_changed", 77)
    r2 = build(msg, cache_miss_reason={"type": "previous_message_not_found"})
    assert r2.cache_miss_reason == "previous_message_not_found" and r2.cache_missed_input_tokens is None


def test_client_reason_combined_with_server_reason() -> None:
    msg = make_message(usage=FULL_USAGE)
    r = build(msg, cache_miss_reason={"type": "unavailable"}, client_miss_reason="thinking changed at turn 4")
    assert r.miss_reason is not None
    assert "no diagnosis" in r.miss_reason and "thinking changed at turn 4" in r.miss_reason
    only_client = build(msg, client_miss_reason="TTL likely expired (idle 6 min > 5m TTL)")
    assert only_client.miss_reason == "TTL likely expired (idle 6 min > 5m TTL)"
    assert build(msg).miss_reason is None


def test_error_before_any_response_is_all_missing_and_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no price warning for a call without usage
        r = build(None, model="claude-fable-5-2", status="overloaded_error", request_id=None, ttft_s=None)
    assert r.status == "overloaded_error"
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "thinking_tokens",
        "server_tool_uses",
    ):
        assert getattr(r, name) is None, name
    assert r.cost_usd is None and r.hit_rate is None and r.message_id is None


def test_partial_usage_dict_missing_output_is_na_not_zero() -> None:
    # stream interrupted / message_delta without usage: core passes what it has
    snapshot = make_message(usage={"input_tokens": 1200, "output_tokens": 1}, stop_reason=None)
    r = build(snapshot, usage={"input_tokens": 1200, "cache_read_input_tokens": 0}, status="interrupted")
    assert r.input_tokens == 1200
    assert r.output_tokens is None
    assert r.cost_usd is None
    assert r.stop_reason is None
    assert r.hit_rate == 0.0


def test_message_delta_usage_object_accepted() -> None:
    delta = MessageDeltaUsage.model_validate({"output_tokens": 42, "input_tokens": 7})
    r = build(make_message(), usage=delta)
    assert (r.input_tokens, r.output_tokens) == (7, 42)
    assert r.cache_read_input_tokens is None


def test_model_from_message_wins_for_pricing() -> None:
    r = build(
        make_message(model="claude-opus-4-8", usage={"input_tokens": 1000, "output_tokens": 0}),
        model="claude-sonnet-4-6",
    )
    assert r.model == "claude-opus-4-8"
    assert r.cost_usd == pytest.approx(1000 * 5 / 1e6)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input_tokens", -1),
        ("output_tokens", MAX_TOKENS + 1),
        ("cache_read_input_tokens", 10**12),
        ("cache_creation_input_tokens", 1.5),
        ("input_tokens", True),
        ("output_tokens", "12"),
    ],
)
def test_corrupt_numbers_raise_value_error(field: str, value: object) -> None:
    usage: dict[str, object] = {"input_tokens": 1, "output_tokens": 1, field: value}
    with pytest.raises(ValueError, match=field):
        build(None, usage=usage)


def test_negative_latency_and_server_tool_counts_raise() -> None:
    with pytest.raises(ValueError, match="latency_s"):
        build(make_message(), latency_s=-0.1)
    with pytest.raises(ValueError, match="web_search_requests"):
        build(
            None,
            usage={
                "input_tokens": 1,
                "output_tokens": 1,
                "server_tool_use": {"web_search_requests": -2, "web_fetch_requests": 0},
            },
        )


def test_timestamps_normalised_to_utc() -> None:
    naive = build(make_message(), started_at=datetime(2026, 1, 1, 9, 30))
    assert naive.timestamp == datetime(2026, 1, 1, 9, 30, tzinfo=timezone.utc)
    cest = timezone(timedelta(hours=2))
    plus2 = build(make_message(), started_at=datetime(2026, 1, 1, 11, 30, tzinfo=cest))
    assert plus2.timestamp.utcoffset() == timedelta(0)
    assert plus2.timestamp.hour == 9


def test_record_holds_no_headers_or_keys() -> None:
    names = {f.name for f in dataclasses.fields(UsageRecord)}
    assert not any("header" in n or "key" in n or "auth" in n for n in names)
    text = json.dumps(build(make_message(usage=FULL_USAGE)).to_dict())
    assert "x-api-key" not in text and "sk-ant" not in text


def test_dict_round_trip_is_lossless() -> None:
    r = build(make_message(usage=FULL_USAGE), client_miss_reason="tools changed (added: search)")
    again = UsageRecord.from_dict(json.loads(json.dumps(r.to_dict())))
    assert again == r
