"""A 20-turn offline session with tools and caching: the hit-rate series and the costs, call by call.

The expectations come from the caching rules and the price list, not from a previous run: each call's
prompt extends the previous call's, so with claudekit's breakpoints (last tool, system, and the
automatic one on the last block) everything the previous call read or wrote is read now; prices are
Sonnet 4.6's list prices per million tokens ($3 input, $15 output, $3.75 5-minute write, $0.30 read).
"""

from __future__ import annotations

import asyncio

import pytest

import claudekit as ck
from claudekit.offline import OfflineBackend

IN, OUT, WRITE_5M, READ = 3.00, 15.00, 3.75, 0.30  # USD per million tokens, claude-sonnet-4-6
TURNS = 20
SYSTEM = " ".join(f"Rule {i}: answer briefly and name the source table." for i in range(300))


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"18°C and clear in {city}"


@pytest.fixture(scope="module")
def session() -> tuple[ck.Chat, int]:
    """The session, run once for the module (its own event loop); the tests read its usage log."""
    chat = ck.Chat(offline=OfflineBackend(), system=SYSTEM, tools=[get_weather], render=False)
    assert chat.settings.model == "claude-sonnet-4-6"

    async def run() -> None:
        async with chat:
            for i in range(TURNS):
                if i == 15:
                    chat.system = SYSTEM + " Also: be polite."  # a deliberate miss at turn 16
                await chat(f"Question {i}: use get_weather for city Paris")

    asyncio.run(run())
    return chat, 15


def test_every_call_reads_what_the_previous_call_sent(session: tuple[ck.Chat, int]) -> None:
    chat, edited = session
    df = chat.usage.df
    assert len(df) == 2 * TURNS  # each turn: the tool call, then the answer
    assert (df["status"] == "ok").all()
    total = df["input_tokens"] + df["cache_read_input_tokens"] + df["cache_creation_input_tokens"]
    # A call's hit rate, and the session's over sums (not a mean of rates).
    assert (df["hit_rate"] - df["cache_read_input_tokens"] / total).abs().max() < 1e-12
    rate = df["cache_read_input_tokens"].sum() / total.sum()
    assert chat.usage.hit_rate == pytest.approx(rate, abs=1e-12)
    assert chat.usage.hit_rate != pytest.approx(df["hit_rate"].mean(), abs=1e-6)
    # The first call writes the whole prompt and reads nothing.
    assert df["cache_read_input_tokens"][0] == 0 and df["cache_creation_input_tokens"][0] > 1024
    turn_of = df["turn"] - df["turn"].min()
    for k in range(1, len(df)):
        prev_cached = df["cache_read_input_tokens"][k - 1] + df["cache_creation_input_tokens"][k - 1]
        read = df["cache_read_input_tokens"][k]
        if turn_of[k] == edited and df["step"][k] == 0:
            # The system prompt changed: only the tools come before it, and one small tool is under the
            # 1,024-token minimum a cache entry needs, so nothing is read; everything is written again.
            assert read == 0 and df["cache_creation_input_tokens"][k] > prev_cached
            assert "system" in str(df["miss_reason"][k])
        else:
            assert read == prev_cached, f"call {k} read {read}, the previous call cached {prev_cached}"
            assert df["hit_rate"][k] > 0.9
    assert df["miss_reason"].notna().sum() == 1


def test_costs_are_the_list_prices_applied_once(session: tuple[ck.Chat, int]) -> None:
    chat, _ = session
    df = chat.usage.df
    assert (df["cache_creation_1h_input_tokens"].fillna(0) == 0).all()  # default TTL: 5 minutes
    for r in df.itertuples():
        cost = (
            r.input_tokens * IN
            + r.cache_creation_input_tokens * WRITE_5M  # charged once, at 1.25x input
            + r.cache_read_input_tokens * READ
            + r.output_tokens * OUT
        ) / 1e6
        without = (
            (r.input_tokens + r.cache_creation_input_tokens + r.cache_read_input_tokens) * IN
            + r.output_tokens * OUT
        ) / 1e6
        assert r.cost_usd == pytest.approx(cost, rel=1e-9)
        assert r.cost_no_cache_usd == pytest.approx(without, rel=1e-9)
    assert chat.usage.total_cost == pytest.approx(df["cost_usd"].sum(), rel=1e-12)
    # Caching pays off over the session: under a third of the uncached cost here.
    assert chat.usage.total_cost < chat.usage.total_cost_no_cache / 3
