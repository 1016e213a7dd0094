"""Footer line and HTML."""

from __future__ import annotations

from datetime import timedelta

from claudekit.usage import UsageRecord, footer_html, footer_text

from ._support import T0


def rec(**kw: object) -> UsageRecord:
    base: dict[str, object] = dict(timestamp=T0, chat_id="c", turn=0, step=0, model="claude-sonnet-4-6")
    base.update(kw)
    return UsageRecord(**base).priced()  # type: ignore[arg-type]


def test_footer_text_has_tokens_cache_cost_latency() -> None:
    r = rec(
        input_tokens=1000,
        cache_read_input_tokens=9000,
        cache_creation_input_tokens=0,
        output_tokens=420,
        latency_s=2.44,
        ttft_s=0.61,
        thinking_tokens=100,
    )
    text = footer_text(r)
    assert "10k in" in text
    assert "420 out (100 thinking)" in text
    assert "cache 90%" in text
    # 1000×3 + 9000×0.3 + 420×15 = 12000 micro-dollars = $0.012; no-cache 30000+6300 → saved $0.0243
    assert "$0.012" in text and "saved $0.024" in text
    assert "2.4 s (first token 0.6 s)" in text
    assert "\n" not in text


def test_footer_text_missing_usage_and_status() -> None:
    text = footer_text(rec(status="interrupted"))
    assert text.startswith("interrupted")
    assert "usage n/a" in text
    assert "$" not in text
    partial = footer_text(rec(input_tokens=5, status="ok"))
    assert "out n/a" in partial and "cost n/a" in partial


def test_footer_shows_cache_write_and_miss_reason() -> None:
    r = rec(
        input_tokens=10,
        output_tokens=1,
        cache_creation_input_tokens=5000,
        cache_read_input_tokens=0,
        cache_miss_reason="tools_changed",
    )
    text = footer_text(r)
    assert "cache 0%, +5.0k written" in text
    assert text.endswith("cache miss: tools changed")


def test_footer_html_escapes_and_colours_errors() -> None:
    r = rec(
        input_tokens=10,
        output_tokens=1,
        client_miss_reason="<script>alert(1)</script>",
        request_id="req_<1>",
        status="overloaded_error",
        timestamp=T0 + timedelta(seconds=1),
    )
    html = footer_html(r)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "req_&lt;1&gt;" in html
    assert html.startswith("<div") and html.endswith("</div>")
    assert "#b91c1c" in html  # error colour
    assert "#b91c1c" not in footer_html(rec(input_tokens=1, output_tokens=1))
