"""claudekit.map through real HTTP: the offline backend's in-process transport and its loopback server."""

from __future__ import annotations

import random
import time
from typing import Any, Literal

import pandas as pd
import pytest
from pydantic import BaseModel

import claudekit as ck
from claudekit.offline import Fault, OfflineBackend, OfflineRequest, RateLimits, count_tokens
from claudekit.usage import UsageLog, get_prices

from .conftest import MODEL, EchoResponder, messages_sent

pytestmark = pytest.mark.timeout(60)


def frame(n: int, *, seed: int = 1) -> pd.DataFrame:
    labels = list(range(100, 100 + n))
    random.Random(seed).shuffle(labels)
    return pd.DataFrame(
        {"id": [f"r{i}" for i in range(n)], "text": [f"text {i}" for i in range(n)]}, index=labels
    )


async def test_rows_stay_aligned_with_a_shuffled_index_and_answers_out_of_order(
    server: Any, echo: EchoResponder
):
    done: list[str] = []
    answer = echo.__call__

    def slow(request: OfflineRequest) -> Any:
        ident = request.last_user_text.split()[0]
        time.sleep(random.Random(ident).uniform(0.0, 0.04))  # server threads finish in another order
        done.append(ident)
        return answer(request)

    server.backend.responder = slow
    df = frame(16)
    df.index.name = "key"
    out = await ck.map(df, "id={id} {text}", base_url=server.base_url, api_key="offline", concurrency=8)

    sent = [f"id=r{i}" for i in range(16)]
    assert sorted(done) == sorted(sent) and done != sent, "answers should have finished out of order"
    assert out.index.equals(df.index) and out.index.name == "key"
    assert list(out.columns[:2]) == ["id", "text"]
    pd.testing.assert_frame_equal(out[["id", "text"]], df)
    for key, row in out.iterrows():
        assert row["claude_text"] == f"answer for {df.loc[key, 'id']}"
        assert row["claude_status"] == "ok"


class Review(BaseModel):
    sentiment: Literal["positive", "negative", "neutral"]
    stars: int
    score: float
    recommend: bool
    tags: list[str]
    summary: str
    votes: int | None = None


async def test_structured_output_gives_typed_nullable_columns(backend: OfflineBackend):
    df = pd.DataFrame(
        {
            "text": [
                "negative, stars 2, score 0.25, recommend no, votes 7",
                "positive, stars 5, score 0.75, recommend yes",
                "neutral, stars 3, score 0.5, recommend no",
            ]
        },
        index=["a", "b", "c"],
    )
    out = await ck.map(df, "Review: {text}", output_format=Review, offline=backend, max_tokens=300)

    assert (out["claude_status"] == "ok").all(), out["claude_error"].tolist()
    assert isinstance(out["sentiment"].dtype, pd.CategoricalDtype)
    assert list(out["sentiment"].cat.categories) == ["positive", "negative", "neutral"]
    assert str(out["stars"].dtype) == "Int64" and str(out["votes"].dtype) == "Int64"
    assert str(out["score"].dtype) == "Float64" and str(out["recommend"].dtype) == "boolean"
    assert isinstance(out["summary"].dtype, pd.StringDtype) and out["tags"].dtype == object
    assert out["sentiment"].tolist() == ["negative", "positive", "neutral"]
    assert out["stars"].tolist() == [2, 5, 3]
    assert out["score"].tolist() == [0.25, 0.75, 0.5]
    assert out["recommend"].tolist() == [False, True, False]
    assert out.loc["a", "votes"] == 7 and out["votes"].isna().tolist() == [False, True, True]
    assert all(isinstance(t, list) for t in out["tags"])
    assert "claude_text" not in out.columns


async def test_a_bad_row_among_good_ones_has_its_error_and_the_others_complete(backend: OfflineBackend):
    df = pd.DataFrame({"text": ["one", "BAD IMAGE", "three", "RAISE", "five"]})

    def prompt(row: dict[str, Any]) -> Any:
        if row["text"] == "RAISE":
            raise KeyError("no such thing")
        if row["text"] == "BAD IMAGE":  # valid base64, but not a PNG: the API refuses it
            image = {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "bm90IGFuIGltYWdl"},
            }
            return ["What is this?", image]
        return f"id={row['text']}"

    log = UsageLog()
    out = await ck.map(df, prompt, offline=backend, usage_log=log)

    assert out["claude_status"].tolist() == ["ok", "invalid_request_error", "ok", "prompt_error", "ok"]
    assert out["claude_text"].tolist()[::2] == ["answer for one", "answer for three", "answer for five"]
    bad = out.loc[1, "claude_error"]
    assert "image" in bad and "\n" not in bad
    assert "KeyError" in out.loc[3, "claude_error"]
    assert pd.isna(out.loc[1, "claude_text"]) and pd.isna(out.loc[3, "claude_cost_usd"])
    assert messages_sent(backend) == 4  # the row whose prompt could not be built sent nothing
    statuses = log.df["status"].astype(str).tolist()
    assert statuses.count("ok") == 3 and statuses.count("invalid_request_error") == 1


async def test_a_missing_column_is_an_error_before_anything_is_sent(backend: OfflineBackend):
    with pytest.raises(ck.ConfigError, match="'review'") as err:
        await ck.map(pd.DataFrame({"text": ["a"]}), "Classify {review} by {text}", offline=backend)
    assert "its columns are: text" in str(err.value)
    with pytest.raises(ck.ConfigError, match="claude_status"):
        await ck.map(pd.DataFrame({"text": ["a"], "claude_status": ["ok"]}), "{text}", offline=backend)
    assert backend.http_log == []


async def test_identical_prompts_are_sent_once_and_billed_once(backend: OfflineBackend):
    df = pd.DataFrame({"id": ["x", "y", "x", "z", "y", "x"]})
    log = UsageLog()
    out = await ck.map(df, "id={id}", offline=backend, usage_log=log)

    assert messages_sent(backend) == 3
    assert out["claude_text"].tolist() == [f"answer for {i}" for i in df["id"]]
    assert out["claude_cost_usd"].tolist()[2] == 0.0 and out["claude_input_tokens"].tolist()[5] == 0
    assert out["claude_cost_usd"].sum() == pytest.approx(log.total_cost)
    # A different setting is a different request.
    await ck.map(df, "id={id}", offline=backend, max_tokens=77)
    assert messages_sent(backend) == 6


async def test_the_shared_system_prompt_is_written_once_and_read_by_every_later_row(backend: OfflineBackend):
    system = "Label each review. " + "guideline " * 1500  # above the model's cacheable minimum
    df = pd.DataFrame({"id": [f"r{i}" for i in range(6)]})
    log = UsageLog()
    out = await ck.map(df, "id={id}", system=system, offline=backend, usage_log=log, concurrency=6)

    prefix = count_tokens(
        model=MODEL, system=[{"type": "text", "text": system}], messages=[{"role": "user", "content": "x"}]
    )
    writes = [r for r in log if (r.cache_creation_input_tokens or 0) > 0]
    assert len(writes) == 1, "only the first request should write the prefix"
    reads = out["claude_cache_read_input_tokens"].tolist()
    assert reads[0] == 0 and all(prefix - 20 < r <= prefix for r in reads[1:])
    # No top-level automatic marker: the rows' own text is never written to the cache.
    assert all("cache_control" not in body for body in backend.requests)


async def test_a_429_storm_slows_the_job_down_and_fails_no_row():
    echo = EchoResponder()
    storm = {"left": 15}

    def stormy(request: OfflineRequest) -> Any:
        if storm["left"] > 0:
            storm["left"] -= 1
            return Fault.status(429, retry_after=0)
        return echo(request)

    backend = OfflineBackend(responder=stormy)
    df = pd.DataFrame({"id": [f"r{i}" for i in range(10)]})
    log = UsageLog()
    # No SDK retries at all: every 429 reaches the job, which must queue the row again, not fail it.
    out = await ck.map(df, "id={id}", offline=backend, usage_log=log, max_retries=0, concurrency=8)

    assert (out["claude_status"] == "ok").all()
    assert out["claude_text"].tolist() == [f"answer for r{i}" for i in range(10)]
    assert out.attrs["claudekit"]["rate_limited"] == 15
    assert messages_sent(backend) == 25
    assert log.df["status"].astype(str).tolist().count("rate_limit_error") == 15


async def test_an_enforced_rate_limit_is_paced_with_few_429s():
    backend = OfflineBackend(
        responder=EchoResponder(), rate_limits=RateLimits(requests_per_minute=600, start_full=False)
    )
    df = pd.DataFrame({"id": [f"r{i}" for i in range(20)]})
    out = await ck.map(df, "id={id}", offline=backend, concurrency=16)

    assert (out["claude_status"] == "ok").all()
    # A client firing 16 at once into an empty bucket would be refused ~16 times; pacing from the headers
    # leaves the one refusal that taught it the limit (and perhaps one more at the start).
    assert backend.rate_limiter.refused <= 3
    assert messages_sent(backend) == 20 + backend.rate_limiter.refused


async def test_the_budget_stops_starting_rows_that_could_pass_it(backend: OfflineBackend):
    df = pd.DataFrame({"id": [f"r{i}" for i in range(12)]})
    price = get_prices().lookup(MODEL)
    assert price is not None
    # max_tokens dominates the worst case: one row's worst case fits, a few rows' actual cost exhausts it.
    budget = 150 * price.output * 1e-6 * 1.2
    out = await ck.map(df, "id={id}", offline=backend, max_tokens=150, max_cost_usd=budget, concurrency=4)

    status = out["claude_status"].tolist()
    ok, skipped = status.count("ok"), status.count("skipped_budget")
    assert ok >= 1 and skipped >= 1 and ok + skipped == 12
    assert out["claude_cost_usd"].sum() <= budget
    assert messages_sent(backend) == ok
    assert "max_cost_usd" in out.loc[status.index("skipped_budget"), "claude_error"]


async def test_dry_run_sends_no_message_request_and_prices_live_and_batch(backend: OfflineBackend):
    df = pd.DataFrame({"id": ["a", "b", "a", "c"]})
    est = await ck.map(df, "id={id} please", offline=backend, max_tokens=200, dry_run=True)

    assert messages_sent(backend) == 0
    assert backend.http_log == [("POST", "/v1/messages/count_tokens")] * 3
    expected = sum(
        count_tokens(
            model=MODEL, messages=[{"role": "user", "content": [{"type": "text", "text": f"id={i} please"}]}]
        )
        for i in "abc"
    )
    assert (est.rows, est.requests, est.input_tokens, est.max_output_tokens) == (4, 3, expected, 600)
    price = get_prices().lookup(MODEL)
    assert price is not None
    assert est.live_min_usd == pytest.approx(expected * price.input * 1e-6)
    # No system prompt: nothing of these requests can be written to the cache, so input is at base price.
    assert est.live_max_usd == pytest.approx(expected * price.input * 1e-6 + 600 * price.output * 1e-6)
    assert est.batch_max_usd == pytest.approx(0.5 * est.live_max_usd)
    assert "all 3 requests" in repr(est)

    # With a cached system prompt the upper bound writes every input token (at the batch's 1h TTL).
    est = await ck.batch(
        df, "id={id} please", system="Be brief.", offline=backend, max_tokens=200, dry_run=True
    )
    assert est.batch_max_usd == pytest.approx(
        0.5 * (est.input_tokens * price.cache_write_1h * 1e-6 + 600 * price.output * 1e-6)
    )
    assert messages_sent(backend) == 0 and not any("batches" in p for _m, p in backend.http_log)


async def test_state_skips_rows_that_already_succeeded(
    backend: OfflineBackend, echo: EchoResponder, tmp_path: Any
):
    failing = {"r2"}
    answer = echo.__call__

    def flaky(request: OfflineRequest) -> Any:
        if any(f"id={f}" in request.last_user_text for f in failing):
            return Fault.status(400, error_type="invalid_request_error", message="this row is refused")
        return answer(request)

    backend.responder = flaky
    df = pd.DataFrame({"id": [f"r{i}" for i in range(6)]})
    state = tmp_path / "job.jsonl"
    first = await ck.map(df, "id={id}", offline=backend, state=state)
    assert first["claude_status"].tolist().count("ok") == 5 and messages_sent(backend) == 6

    failing.clear()
    again = await ck.map(df, "id={id}", offline=backend, state=state)
    assert messages_sent(backend) == 7  # only the row that had failed
    assert (again["claude_status"] == "ok").all()
    assert again.attrs["claudekit"]["reused"] == 5
    pd.testing.assert_series_equal(
        again["claude_cost_usd"].iloc[[0, 1, 3]], first["claude_cost_usd"].iloc[[0, 1, 3]]
    )


async def test_a_function_prompt_can_send_content_blocks(backend: OfflineBackend):
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 16
    df = pd.DataFrame({"id": ["a", "b"]})
    out = await ck.map(df, lambda row: [ck.Image.from_bytes(png), f"id={row['id']}"], offline=backend)
    assert out["claude_status"].tolist() == ["ok", "ok"]
    assert backend.requests[0]["messages"][0]["content"][0]["type"] == "image"


async def test_turn_function_errors_are_not_in_the_frame_as_python_tracebacks(backend: OfflineBackend):
    with pytest.raises(ck.ConfigError, match="tools"):
        await ck.map(pd.DataFrame({"id": ["a"]}), "{id}", offline=backend, tools=[])
    with pytest.raises(ck.ConfigError, match="unknown setting"):
        await ck.map(pd.DataFrame({"id": ["a"]}), "{id}", offline=backend, temprature=0.2)
    assert backend.http_log == []


async def test_state_does_not_pay_twice_for_an_answer_cut_off_at_max_tokens(tmp_path: Any):
    backend = OfflineBackend()  # the default responder answers at length
    df = pd.DataFrame({"id": ["a", "b"]})
    state = tmp_path / "cut.jsonl"
    first = await ck.map(df, "Tell me about {id}", offline=backend, max_tokens=5, state=state)
    assert first["claude_status"].tolist() == ["max_tokens", "max_tokens"]
    assert "max_tokens" in first.loc[0, "claude_error"] and first.loc[0, "claude_text"]
    again = await ck.map(df, "Tell me about {id}", offline=backend, max_tokens=5, state=state)
    assert messages_sent(backend) == 2  # billed answers are kept, not bought again
    assert again["claude_text"].tolist() == first["claude_text"].tolist()
