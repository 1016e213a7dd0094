"""The batch price: every token class at the table's batch multiplier, cache prices included."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from claudekit.usage import UsageLog, UsageRecord, cost_of, get_prices, load_prices, set_prices

MODEL = "claude-sonnet-4-6"


def record(tier: str | None, **tokens: Any) -> UsageRecord:
    return UsageRecord(
        timestamp=datetime(2026, 12, 1, tzinfo=timezone.utc),
        chat_id="c",
        turn=1,
        step=0,
        model=MODEL,
        service_tier=tier,
        **tokens,
    ).priced()


def test_a_batch_call_pays_half_of_every_token_class_cache_included():
    tokens = dict(
        input_tokens=1_000,
        cache_creation_input_tokens=3_000,
        cache_creation_1h_input_tokens=2_000,
        cache_read_input_tokens=5_000,
        output_tokens=300,
    )
    live, batch = record("standard", **tokens), record("batch", **tokens)
    p = get_prices().lookup(MODEL)
    assert p is not None
    by_hand = (
        1_000 * p.input
        + 1_000 * p.cache_write_5m
        + 2_000 * p.cache_write_1h
        + 5_000 * p.cache_read
        + 300 * p.output
    ) * 1e-6
    assert live.cost_usd == pytest.approx(by_hand)
    assert batch.cost_usd == pytest.approx(0.5 * by_hand)
    assert batch.cost_no_cache_usd == pytest.approx(0.5 * live.cost_no_cache_usd)
    assert batch.is_batch and not live.is_batch
    assert cost_of(batch) == pytest.approx(batch.cost_usd)
    assert cost_of(
        {"input_tokens": 1_000, "output_tokens": 300, "service_tier": "batch"}, MODEL
    ) == pytest.approx(0.5 * (1_000 * p.input + 300 * p.output) * 1e-6)


def test_the_multiplier_comes_from_the_price_table():
    assert load_prices().batch_multiplier == 0.5
    try:
        table = set_prices(
            {"models": {MODEL: {"input": 1.0, "output": 2.0}}, "batch_multiplier": 0.25}, replace_all=True
        )
        assert table.batch_multiplier == 0.25
        assert record("batch", input_tokens=1_000_000, output_tokens=1_000_000).cost_usd == pytest.approx(
            0.75
        )
    finally:
        set_prices(None)


def test_the_usage_log_says_which_calls_were_batch_calls():
    log = UsageLog()
    log.append(record("batch", input_tokens=10, output_tokens=5))
    log.append(record("standard", input_tokens=10, output_tokens=5))
    df = log.df
    assert df["service_tier"].astype(str).tolist() == ["batch", "standard"]
    assert df["cost_usd"][0] == pytest.approx(0.5 * df["cost_usd"][1])
