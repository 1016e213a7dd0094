"""Cost arithmetic against hand-computed examples (prices in USD per million tokens)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from anthropic.types import Usage

from claudekit.usage import (
    UnknownPriceWarning,
    UsageRecord,
    cost_of,
    get_prices,
    load_prices,
    set_prices,
)
from claudekit.usage._record import costs_for

from ._support import T0

M = 1_000_000


def rec(model: str = "claude-sonnet-4-6", **tokens: int | None) -> UsageRecord:
    return UsageRecord(timestamp=T0, chat_id="c", turn=0, step=0, model=model, **tokens).priced()


def test_shipped_table_has_sources_date_and_known_rows() -> None:
    prices = load_prices()
    assert prices.retrieved is not None and prices.retrieved.startswith("20")
    assert any("platform.claude.com" in s for s in prices.sources)
    sonnet = prices.lookup("claude-sonnet-4-6")
    assert sonnet is not None
    assert (sonnet.input, sonnet.output, sonnet.cache_write_5m, sonnet.cache_write_1h, sonnet.cache_read) == (
        3.0,
        15.0,
        3.75,
        6.0,
        0.3,
    )
    opus = prices.lookup("claude-opus-4-8")
    assert opus is not None and (opus.input, opus.output) == (5.0, 25.0)


def test_models_without_published_price_are_left_out() -> None:
    # Every catalog model now has a sourced price (tests/offline/test_model_catalog.py); a name the
    # table does not list still gets no guessed price.
    prices = load_prices()
    for model in ("claude-sonnet-6", "claude-fable-6-preview"):
        assert model not in prices


def test_shipped_cache_prices_follow_multipliers_where_the_page_does() -> None:
    # 5m write = 1.25x input, 1h write = 2x input and read <= 0.1x hold for every shipped model but
    # one: the page lists Haiku 3's 5m write at $0.30 (1.2x of $0.25) and its read at $0.03 (0.12x).
    data = json.loads(Path(__file__).parents[2].joinpath("claudekit/usage/prices.json").read_text())
    haiku3 = data["models"].pop("claude-3-haiku")
    assert (haiku3["cache_write_5m"], haiku3["cache_write_1h"], haiku3["cache_read"]) == (0.3, 0.5, 0.03)
    for name, p in data["models"].items():
        assert p["cache_write_5m"] == pytest.approx(1.25 * p["input"]), name
        assert p["cache_write_1h"] == pytest.approx(2.0 * p["input"]), name
        assert p["cache_read"] <= 0.1 * p["input"] + 1e-12, name


def test_plain_input_output() -> None:
    r = rec(input_tokens=1000, output_tokens=500)
    # 1000 × $3/MTok + 500 × $15/MTok
    assert r.cost_usd == pytest.approx(1000 * 3 / M + 500 * 15 / M)
    assert r.cost_usd == pytest.approx(0.0105)
    assert r.cost_no_cache_usd == pytest.approx(0.0105)


def test_cache_write_is_counted_once_with_split() -> None:
    u = Usage.model_validate(
        {
            "input_tokens": 1000,
            "output_tokens": 500,
            "cache_creation_input_tokens": 2000,
            "cache_read_input_tokens": 10000,
            "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 0},
        }
    )
    cost = cost_of(u, "claude-sonnet-4-6")
    expected = (1000 * 3 + 2000 * 3.75 + 10000 * 0.3 + 500 * 15) / M
    double_counted = expected + 2000 * 3.75 / M
    assert cost == pytest.approx(expected)
    assert cost == pytest.approx(0.021)
    assert cost != pytest.approx(double_counted)


def test_cache_write_5m_and_1h_split() -> None:
    r = rec(
        input_tokens=100,
        output_tokens=10,
        cache_creation_input_tokens=3000,
        cache_creation_5m_input_tokens=1000,
        cache_creation_1h_input_tokens=2000,
        cache_read_input_tokens=0,
    )
    expected = (100 * 3 + 1000 * 3.75 + 2000 * 6 + 10 * 15) / M
    assert r.cost_usd == pytest.approx(expected)
    # without caching all 3100 prompt tokens at $3
    assert r.cost_no_cache_usd == pytest.approx((3100 * 3 + 10 * 15) / M)


def test_cache_write_without_split_is_charged_at_5m_rate() -> None:
    r = rec(input_tokens=0, output_tokens=0, cache_creation_input_tokens=4000)
    assert r.cost_usd == pytest.approx(4000 * 3.75 / M)


def test_split_larger_than_total_never_charges_more_than_total() -> None:
    # inconsistent backend: the total (1000) is authoritative, the 1h part is capped at it
    cost, _ = costs_for(
        get_prices().lookup("claude-opus-4-8"),
        input_tokens=0,
        output_tokens=0,
        cache_creation_input_tokens=1000,
        cache_creation_5m_input_tokens=800,
        cache_creation_1h_input_tokens=700,
    )
    assert cost == pytest.approx((300 * 6.25 + 700 * 10) / M)


def test_cache_read_price_is_explicit_not_derived() -> None:
    # Opus 5.5 reads cost $0.20/MTok (0.05x of $4), not the generic 0.1x
    r = rec("claude-opus-5-5", input_tokens=0, output_tokens=0, cache_read_input_tokens=M)
    assert r.cost_usd == pytest.approx(0.20)
    assert r.cost_no_cache_usd == pytest.approx(4.0)
    assert r.savings_usd == pytest.approx(3.80)


def test_long_prompt_band() -> None:
    low = rec("claude-haiku-5-5", input_tokens=100_000, output_tokens=1000)
    high = rec("claude-haiku-5-5", input_tokens=100_001, output_tokens=1000)
    assert low.cost_usd == pytest.approx((100_000 * 0.1 + 1000 * 0.5) / M)
    assert high.cost_usd == pytest.approx((100_001 * 0.5 + 1000 * 2.5) / M)
    # the band counts cache reads and writes too
    mixed = rec("claude-haiku-5-5", input_tokens=10, output_tokens=0, cache_read_input_tokens=100_000)
    assert mixed.cost_usd == pytest.approx((10 * 0.5 + 100_000 * 0.05) / M)


def test_missing_cache_counts_cost_nothing_but_missing_output_makes_cost_missing() -> None:
    assert rec(input_tokens=1000, output_tokens=0).cost_usd == pytest.approx(0.003)
    r = rec(input_tokens=1000)
    assert r.output_tokens is None
    assert r.cost_usd is None and r.cost_no_cache_usd is None


def test_unknown_model_missing_cost_and_single_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = rec("claude-fable-6-preview", input_tokens=10, output_tokens=10)
        b = rec("claude-fable-6-preview", input_tokens=20, output_tokens=20)
        c = cost_of({"input_tokens": 1, "output_tokens": 1}, "claude-fable-6-preview")
    assert a.cost_usd is None and b.cost_usd is None and c is None
    unknown = [w for w in caught if issubclass(w.category, UnknownPriceWarning)]
    assert len(unknown) == 1
    assert "claude-fable-6-preview" in str(unknown[0].message)


def test_aliases_date_suffix_and_context_suffix() -> None:
    base = rec("claude-haiku-4-5", input_tokens=1000, output_tokens=1000).cost_usd
    assert base == pytest.approx((1000 * 1 + 1000 * 5) / M)
    assert rec("claude-haiku-4-5-20251001", input_tokens=1000, output_tokens=1000).cost_usd == base
    dated = rec("claude-sonnet-4-5-20990101", input_tokens=1000, output_tokens=0)
    assert dated.cost_usd == pytest.approx(0.003)
    assert rec("claude-sonnet-5-5[1m]", input_tokens=1000, output_tokens=0).cost_usd == pytest.approx(0.002)
    # Older ids, as recorded sessions carry them: dated, "-latest" and "-0" aliases.
    assert rec("claude-sonnet-4-20250514", input_tokens=1000, output_tokens=100).cost_usd == pytest.approx(
        (1000 * 3 + 100 * 15) / M
    )
    assert rec("claude-3-opus-latest", input_tokens=0, output_tokens=1000).cost_usd == pytest.approx(0.075)
    assert rec("claude-opus-4-0", input_tokens=1000, output_tokens=0).cost_usd == pytest.approx(0.015)


def test_set_prices_override_and_reset() -> None:
    set_prices({"my-model": {"input": 2.0, "output": 8.0}})
    p = get_prices().lookup("my-model")
    assert p is not None
    assert (p.cache_write_5m, p.cache_write_1h, p.cache_read) == pytest.approx((2.5, 4.0, 0.2))
    r = rec("my-model", input_tokens=1000, output_tokens=1000, cache_read_input_tokens=1000)
    assert r.cost_usd == pytest.approx((1000 * 2 + 1000 * 8 + 1000 * 0.2) / M)
    # existing models untouched by a merge
    assert get_prices().lookup("claude-sonnet-4-6") is not None
    set_prices({"claude-sonnet-4-6": {"input": 1, "output": 1, "cache_read": 0}})
    assert rec(input_tokens=M, output_tokens=0, cache_read_input_tokens=M).cost_usd == pytest.approx(1.0)
    set_prices(None)
    assert "my-model" not in get_prices()
    assert rec(input_tokens=M, output_tokens=0).cost_usd == pytest.approx(3.0)


def test_set_prices_replace_all() -> None:
    set_prices({"only": {"input": 1, "output": 1}}, replace_all=True)
    assert "claude-sonnet-4-6" not in get_prices()
    assert "only" in get_prices()


@pytest.mark.parametrize("bad", [{"input": -1, "output": 1}, {"input": "3", "output": 1}, {"output": 1}])
def test_bad_price_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        set_prices({"x": bad})


def test_load_prices_from_user_file(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"models": {"m": {"input": 1, "output": 2}}, "aliases": {"m-latest": "m"}}))
    prices = load_prices(f)
    r = UsageRecord(
        timestamp=T0, chat_id="c", turn=0, step=0, model="m-latest", input_tokens=M, output_tokens=M
    ).priced(prices)
    assert r.cost_usd == pytest.approx(3.0)


def test_cost_of_record_and_usage_need_model() -> None:
    r = rec(input_tokens=1000, output_tokens=0)
    assert cost_of(r) == pytest.approx(0.003)
    assert cost_of(r, "claude-opus-4-8") == pytest.approx(0.005)
    with pytest.raises(TypeError):
        cost_of({"input_tokens": 1, "output_tokens": 1})
    with pytest.raises(ValueError):
        cost_of({"input_tokens": -1, "output_tokens": 1}, "claude-opus-4-8")
