"""The estimator: input tokens from the real SDK's count_tokens call, the cost range from the price list.

Everything goes through the installed SDK's client over an httpx2 transport to the offline backend, which
serves ``/v1/messages/count_tokens`` with the same counter it uses for a message's usage. Expected costs are
computed here from the prices the test sets, not read back from the estimator.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import httpx2
import pytest

import claudekit as ck
from claudekit._request._settings import Settings, build_request
from claudekit.offline import OfflineBackend, Turn, count_tokens
from claudekit.usage import Estimate, UnknownPriceWarning, estimate_request, set_prices
from claudekit.usage._estimate import count_tokens_params

TOOL = {
    "name": "lookup",
    "description": "Look a word up.",
    "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def _client(backend: OfflineBackend, seen: list[httpx2.Request]) -> Any:
    """The SDK's client over the backend's real transport, noting every HTTP request it sends."""
    import anthropic

    async def note(request: httpx2.Request) -> None:
        seen.append(request)

    http = httpx2.AsyncClient(transport=backend.async_transport(), event_hooks={"request": [note]})
    return anthropic.AsyncAnthropic(api_key="offline", base_url="http://offline.invalid", http_client=http)


def _requests() -> list[dict[str, Any]]:
    history = [
        {"role": "user", "content": [{"type": "text", "text": "What does 'churn' mean for a subscription?"}]}
    ]
    return [
        build_request(Settings(), history),
        build_request(Settings(system="Be brief. " * 40, thinking=2048, max_tokens=4096), history, [TOOL]),
        build_request(Settings(output_format=SCHEMA, cache="1h", temperature=0.3), history),
        build_request(Settings(cache=False, stop_sequences=["END"], metadata={"user_id": "u1"}), history),
    ]


@pytest.mark.parametrize("index", range(4))
async def test_estimate_equals_the_backend_count_and_the_sent_prompt(index: int) -> None:
    request = _requests()[index]
    backend = OfflineBackend(responder=lambda req: Turn(text="Customers who leave."))
    seen: list[httpx2.Request] = []
    client = _client(backend, seen)
    est = await estimate_request(client, request)
    # One HTTP request, to the token-counting endpoint, with only fields count_tokens accepts.
    assert [r.url.path for r in seen] == ["/v1/messages/count_tokens"]
    sent = json.loads(seen[0].content)
    for gone in ("max_tokens", "diagnostics", "temperature", "stop_sequences", "metadata", "stream"):
        assert gone not in sent
    assert sent["messages"] == request["messages"] and sent["model"] == request["model"]
    assert backend.requests == []  # no message was created
    assert est.method == "count_tokens"
    assert est.model == request["model"]
    assert est.max_output_tokens == request["max_tokens"]
    assert est.input_tokens == count_tokens(count_tokens_params(request))
    # Sending the same request reports the same prompt size in its usage.
    message = await client.messages.create(**request)
    u = message.usage
    prompt = u.input_tokens + (u.cache_creation_input_tokens or 0) + (u.cache_read_input_tokens or 0)
    assert est.input_tokens == prompt
    await client.close()


async def test_the_cost_range_follows_the_prices() -> None:
    set_prices({"claude-sonnet-4-6": {"input": 2.0, "output": 10.0, "cache_read": 0.2, "cache_write_5m": 2.5,
                                      "cache_write_1h": 4.0}})  # fmt: skip
    backend = OfflineBackend()
    client = _client(backend, [])
    cached, uncached, hour = _requests()[0], _requests()[3], _requests()[2]
    est = await estimate_request(client, cached, expected_cache_read_tokens=10)
    n = est.input_tokens
    assert n > 10
    assert est.expected_cache_read_tokens == 10
    assert est.cost_min_usd == pytest.approx(((n - 10) * 2.0 + 10 * 0.2) * 1e-6)
    # Worst case: the whole prompt written to the 5-minute cache, and all of max_tokens generated.
    assert est.cost_max_usd == pytest.approx((n * 2.5 + 8192 * 10.0) * 1e-6)
    est = await estimate_request(client, uncached)
    assert est.cost_max_usd == pytest.approx((est.input_tokens * 2.0 + 8192 * 10.0) * 1e-6)
    assert est.cost_min_usd == pytest.approx(est.input_tokens * 2.0 * 1e-6)
    est = await estimate_request(client, hour)
    assert est.cost_max_usd == pytest.approx((est.input_tokens * 4.0 + 8192 * 10.0) * 1e-6)
    # More expected cache reads than the prompt has cannot make the minimum negative.
    est = await estimate_request(client, cached, expected_cache_read_tokens=10**6)
    assert est.expected_cache_read_tokens == est.input_tokens
    assert est.cost_min_usd == pytest.approx(est.input_tokens * 0.2 * 1e-6)
    await client.close()


async def test_a_real_conversation_costs_within_the_range() -> None:
    """Each turn: estimate with what the previous call read or wrote as the expected cache read, then send."""
    backend = OfflineBackend(responder=lambda req: Turn(text="A fairly short answer. " * 8))
    chat = ck.Chat(offline=backend, system="You are a careful analyst. " * 200, render=False)
    previous_cached = 0
    for i in range(4):
        request = build_request(
            chat.settings,
            [*chat.history.to_params(), {"role": "user", "content": [{"type": "text", "text": f"Q{i}?"}]}],
            previous_message_id=chat._last_message_id,
        )
        est = await estimate_request(chat.client, request, expected_cache_read_tokens=previous_cached)
        await chat(f"Q{i}?")
        record = chat.usage[-1]
        assert record.prompt_tokens == est.input_tokens
        if i:  # the cache holds exactly what the previous call sent
            assert record.cache_read_input_tokens == est.expected_cache_read_tokens
        assert record.cost_usd is not None and est.cost_min_usd is not None and est.cost_max_usd is not None
        assert est.cost_min_usd <= record.cost_usd <= est.cost_max_usd
        previous_cached = (record.cache_read_input_tokens or 0) + (record.cache_creation_input_tokens or 0)
    await chat.aclose()


async def test_unknown_model_has_no_cost_and_says_so() -> None:
    backend = OfflineBackend()
    client = _client(backend, [])
    request = _requests()[0]
    set_prices({"some-other-model": {"input": 1, "output": 1}}, replace_all=True)  # no price for ours
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = await estimate_request(client, request)
    assert est.cost_min_usd is None and est.cost_max_usd is None and est.input_tokens > 0
    assert any(issubclass(w.category, UnknownPriceWarning) for w in caught)
    assert "cost unknown" in str(est)
    await client.close()


async def test_an_invalid_request_is_one_line_claudekit_error() -> None:
    backend = OfflineBackend()
    client = _client(backend, [])
    bad = {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": []}
    with pytest.raises(ck.BadRequestError) as info:
        await estimate_request(client, bad)
    assert "\n" not in str(info.value) and "messages" in str(info.value)
    await client.close()


def test_estimate_reads_as_one_line() -> None:
    est = Estimate("claude-sonnet-4-6", 1234, 8192, 1000, 0.0012, 0.1268, "count_tokens")
    text = str(est)
    assert "\n" not in text
    for part in ("1,234 input tokens", "8,192 output", "1,000 expected from the cache", "$0.0012", "$0.1268"):
        assert part in text
