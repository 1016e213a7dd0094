"""The model catalog (claudekit/models.json) and the Models API the offline backend serves from it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from claudekit._base import _models
from claudekit.offline import OfflineBackend
from claudekit.usage import load_prices

CATALOG = json.loads(Path(__file__).parents[2].joinpath("claudekit/models.json").read_text())


def test_every_catalog_model_has_a_price_under_every_name() -> None:
    prices = load_prices()
    missing = [n for spec in _models.all_models() for n in spec.names if prices.lookup(n) is None]
    assert missing == []


def test_every_entry_cites_sources_that_exist() -> None:
    keys = set(CATALOG["sources"])
    for raw in CATALOG["models"]:
        assert raw["sources"], raw["id"]
        assert set(raw["sources"]) <= keys, raw["id"]
    assert all(isinstance(v, str) and v for v in CATALOG["sources"].values())


def test_names_are_unique_and_levels_are_known() -> None:
    names = [n for spec in _models.all_models() for n in spec.names]
    assert len(names) == len(set(names))
    for spec in _models.all_models():
        assert set(spec.effort_levels or ()) <= set(_models.EFFORTS)
        if spec.retires_on and spec.deprecated_on:
            assert spec.deprecated_on < spec.retires_on


def test_newest_first_where_release_dates_are_known() -> None:
    dates = [s.released for s in _models.all_models() if s.released is not None]
    assert dates == sorted(dates, reverse=True)


def test_lookup_by_id_alias_and_exact_case() -> None:
    spec = _models.lookup("claude-sonnet-4-0")
    assert spec is not None and spec.id == "claude-sonnet-4-20250514"
    assert _models.lookup("claude-sonnet-4-20250514") is spec
    assert _models.lookup("Claude-Sonnet-4-0") is None  # model ids are case-sensitive at the API
    assert _models.lookup(None) is None


def test_lifecycle_on_a_given_day() -> None:
    opus45 = _models.lookup("claude-opus-4-5")
    assert opus45 is not None
    assert _models.lifecycle(opus45, dt.date(2026, 6, 1)) == "deprecated"  # retirement scheduled
    assert _models.lifecycle(opus45, dt.date(2027, 1, 22)) == "retired"
    sonnet46 = _models.lookup("claude-sonnet-4-6")
    assert sonnet46 is not None and _models.lifecycle(sonnet46, dt.date(2030, 1, 1)) == "active"


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("claude-sonet-4", ["claude-sonnet-4-6"]),  # misspelt family word
        ("claud-haiku-4-5", ["claude-haiku-4-5"]),
        ("Claude-Opus-4-8", ["claude-opus-4-8"]),  # case
        ("claude-opus-4-8 ", ["claude-opus-4-8"]),  # stray space
        ("claude-sonnet-6", []),  # plausible and newer than the catalog: the service decides
        ("my-proxy-model", []),  # not close to any model word
        ("claude-sonnet-4-6", []),  # known
    ],
)
def test_did_you_mean(name: str, suggested: list[str]) -> None:
    assert _models.did_you_mean(name, on=dt.date(2026, 12, 1)) == suggested


def test_check_name_raises_the_given_error_only_for_near_misses() -> None:
    with pytest.raises(
        LookupError, match=r"unknown model 'claude-sonet-4': did you mean claude-sonnet-4-6\?"
    ):
        _models.check_name("claude-sonet-4", LookupError)
    _models.check_name("claude-sonnet-6", LookupError)


def test_min_cacheable_length_comes_from_the_catalog() -> None:
    from claudekit.offline import min_cacheable_tokens

    assert min_cacheable_tokens("claude-opus-4-7") == 2048
    assert min_cacheable_tokens("claude-haiku-4-5-20251001") == 4096
    assert min_cacheable_tokens("claude-haiku-5-5") == 2048  # not published: the family rule


# -- GET /v1/models through the SDK ---------------------------------------------------------------


@pytest.fixture
def sdk() -> Iterator[anthropic.Anthropic]:
    with OfflineBackend(today="2026-12-01").serve() as server:
        yield anthropic.Anthropic(base_url=server.base_url, api_key="offline", max_retries=0)


def test_models_list_pages_through_active_and_deprecated_models(sdk: anthropic.Anthropic) -> None:
    day = dt.date(2026, 12, 1)
    expected = [s.id for s in _models.all_models() if not s.retired(day)]
    listed = [m.id for m in sdk.models.list(limit=3)]  # auto-pagination over several pages
    assert listed == expected
    first = sdk.models.list(limit=3)
    assert len(first.data) == 3 and first.has_more is True


def test_models_list_retired_on_request(sdk: anthropic.Anthropic) -> None:
    retired = [m.id for m in sdk.models.list(lifecycle=["retired"], limit=100)]
    assert "claude-3-opus-20240229" in retired and "claude-sonnet-4-5-20250929" in retired
    assert "claude-sonnet-4-6" not in retired


def test_models_retrieve_resolves_an_alias(sdk: anthropic.Anthropic) -> None:
    info = sdk.models.retrieve("claude-haiku-4-5")
    assert info.id == "claude-haiku-4-5-20251001"
    assert info.display_name == "Claude Haiku 4.5"
    assert info.max_input_tokens == 200_000 and info.max_tokens == 64_000
    assert info.lifecycle == "active" and info.line == "haiku"
    assert info.created_at == dt.datetime(2025, 10, 15, tzinfo=dt.timezone.utc)
    caps = info.capabilities
    assert caps is not None and caps.effort.supported is False
    assert caps.thinking.types.enabled.supported and not caps.thinking.types.adaptive.supported
    retired = sdk.models.retrieve("claude-sonnet-4-5")
    assert retired.lifecycle == "retired" and retired.retires_at is not None
    with pytest.raises(anthropic.NotFoundError, match="claude-nope"):
        sdk.models.retrieve("claude-nope")
