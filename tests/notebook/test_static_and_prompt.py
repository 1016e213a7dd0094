"""The static rendering of finished replies, and filling {fields} of %%claude prompts."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pandas as pd
import pytest

import claudekit as ck
from claudekit.notebook import FOOTER_SANITIZE_REGEX, PromptFieldError, format_prompt, static_bundle
from claudekit.notebook._static import footer_line
from claudekit.offline import Fault, ToolCall, Turn
from tests.notebook.helpers import offline_chat, recorded_chat, tool_chat


def visible(html: str) -> str:
    """The text a reader sees in ``html`` (tags dropped, entities decoded)."""
    from html import unescape

    return unescape(re.sub(r"<[^>]+>", "", html))


# -- static output -------------------------------------------------------------------------------------


async def test_static_bundle_has_answer_collapsed_tools_and_timings_only_in_the_footer() -> None:
    chat = tool_chat()
    reply = await chat("weather?")
    bundle = static_bundle(reply)
    md = bundle["text/html"]
    assert set(bundle) == {"text/html", "text/plain"}
    # Text and the tool card in the order they happened (the live view's order).
    first, card, second = (
        md.index(t) for t in ("Let me check.", "🔧 weather", "It is <strong>sunny</strong> in Paris.")
    )
    assert first < card < second
    assert "<summary>🔧 weather — done: sunny in Paris</summary>" in md
    assert '"city": "Paris"' in md
    # The footer shows the latency; nothing else is timed, and timings=False leaves it out.
    (footer,) = re.findall(FOOTER_SANITIZE_REGEX, md)
    assert " s (first token " in footer
    assert not re.search(r"\d+\.\d s\b", re.sub(FOOTER_SANITIZE_REGEX, "", md))
    untimed = static_bundle(reply, timings=False)["text/html"]
    assert " s (first token" not in untimed and not re.search(r"\d+\.\d s\b", untimed)
    for call in reply.tool_calls:
        assert call.id not in md  # no volatile ids
    assert reply.text in bundle["text/plain"]
    assert "[tool weather: done — sunny in Paris]" in bundle["text/plain"]
    # The footer is the only run-dependent part and the documented regex removes it entirely.
    assert "out" in footer


async def test_static_bundle_is_deterministic_across_identical_runs() -> None:
    a = await tool_chat()("weather?")
    b = await tool_chat()("weather?")
    assert a.latency_s != b.latency_s  # the runs differ in timing; only the footer shows it
    assert static_bundle(a, timings=False) == static_bundle(b, timings=False)
    strip = [re.sub(FOOTER_SANITIZE_REGEX, "", static_bundle(r)["text/html"]) for r in (a, b)]
    assert strip[0] == strip[1]


async def test_thinking_is_collapsed_and_redacted_is_labelled() -> None:
    reply = await offline_chat([Turn(text="42", thinking="step one\nstep two")], thinking=2048)("q")
    md = static_bundle(reply)["text/html"]
    assert md.startswith('<details class="tex2jax_ignore mathjax_ignore"><summary>Thinking</summary>')
    assert "<blockquote>step one<br>\nstep two</blockquote>" in md
    red = await recorded_chat("pydantic-ai__redacted_thinking.sse")("q")
    red_md = static_bundle(red)["text/html"]
    assert "hidden reasoning" in red_md
    assert " ".join(red.text.split()) in " ".join(visible(red_md).split())


async def test_dollars_are_text_unless_math_is_asked_for() -> None:
    # JupyterLab's and nbconvert's MathJax typeset $…$ pairs anywhere in the page. Reasoning, tool results
    # and the footer's costs are claudekit's text; the answer's "$5 and $7" shows as written too, as in
    # chat UIs, unless math=True: every element holding them carries MathJax's ignore classes.
    turns = [Turn(text="Costs $x$ per unit, `$HOME` in code.", thinking="Between $5 and $7.")]
    reply = await offline_chat(turns, thinking=2048, model="claude-sonnet-4-6")("price?")
    md = static_bundle(reply)["text/html"]
    answer = "<p>Costs $x$ per unit, <code>$HOME</code> in code.</p>"
    assert f'<div class="tex2jax_ignore mathjax_ignore">\n{answer}\n</div>' in md
    assert '<details class="tex2jax_ignore mathjax_ignore"><summary>Thinking</summary>' in md
    assert "<blockquote>Between $5 and $7.</blockquote>" in md
    footer = re.findall(FOOTER_SANITIZE_REGEX, md)
    assert len(footer) == 1 and "$" in footer[0] and "mathjax_ignore" in footer[0]
    math = static_bundle(reply, math=True)["text/html"]
    assert '<p>Costs <span class="math inline">$x$</span> per unit, <code>$HOME</code> in code.</p>' in math
    assert '<div class="ck-text">' in math  # the answer's element is left to MathJax
    assert "$" in static_bundle(reply)["text/plain"]  # plain text is not Markdown: unchanged


async def test_an_unclosed_fence_and_raw_html_do_not_swallow_the_footer() -> None:
    text = "Here:\n\n<b>raw</b> and <https://example.org>\n\n```python\nprint('<sub>x</sub>')\n"
    reply = await offline_chat([Turn(text=text)])("q")
    html = static_bundle(reply)["text/html"]
    code = re.findall(r"<code[^>]*>(.*?)</code>", html, re.S)
    assert code == ["print('&lt;sub&gt;x&lt;/sub&gt;')\n"], code  # the code is exactly the answer's
    assert re.search(r'<sub class="tex2jax_ignore mathjax_ignore">claudekit · ', html)  # rendered, not text
    assert "&lt;b&gt;raw&lt;/b&gt;" in html and "<b>raw</b>" not in html  # raw HTML shown as text
    assert '<a href="https://example.org"' in html  # an autolink is not raw HTML


async def test_decisions_and_edited_arguments_are_recorded() -> None:
    reply = await tool_chat()("weather?")
    call = reply.tool_calls[0]
    md = static_bundle(
        reply, decisions={call.id: ("Approved by you (with edited arguments)", {"city": "Rome"})}
    )["text/html"]
    assert (
        "<summary>🔧 weather — done: sunny in Paris · Approved by you (with edited arguments)</summary>" in md
    )
    assert '"city": "Rome"' in md and '"city": "Paris"' not in md


async def test_a_tool_without_arguments_has_no_empty_block() -> None:
    @ck.tool
    def clock() -> str:
        """The time."""
        return "12:00"

    turns = [Turn(tool_calls=[ToolCall("clock", {})]), Turn(text="Noon.")]
    reply = await offline_chat(turns, tools=[clock])("time?")
    md = static_bundle(reply)["text/html"]
    assert "<summary>🔧 clock — done: 12:00</summary>\n<div><b>Result:</b> 12:00</div>" in md
    assert "language-json" not in md


async def test_the_error_line_can_be_left_to_the_cell() -> None:
    chat = offline_chat([Turn(text="partial", fault=Fault.error_event(after_events=4))])
    with pytest.raises(ck.ClaudekitError) as info:
        await chat("q")
    err = info.value
    assert err.reply is not None
    assert "⚠ <b>error:</b>" in static_bundle(err.reply, err)["text/html"]
    assert "⚠" not in static_bundle(err.reply, err, show_error=False)["text/html"]


async def test_claudekit_text_is_shown_literally_not_as_markdown() -> None:
    # Reasoning and tool results are not Markdown: code spans, indentation, headings and blank lines in
    # them must come out as written.
    thinking = "Run `echo $HOME` first.\n    indented <b>x</b>\n\n# not a heading\n- not a list"
    turns = [
        Turn(text="Let me check.", thinking=thinking, tool_calls=[ToolCall("weather", {"city": "P```"})]),
        Turn(text="Done."),
    ]

    @ck.tool
    def weather(city: str) -> str:
        """Weather for a city."""
        return "`rm $X`\n\n# result"

    reply = await offline_chat(turns, thinking=2048, tools=[weather])("q")
    html = static_bundle(reply)["text/html"]
    assert "<h1>" not in html and "<li>not a list" not in html
    assert "&amp;" not in html  # no entity shown as text
    assert "Run `echo $HOME` first.<br>" in html
    assert "&nbsp;" * 4 + "indented &lt;b&gt;x&lt;/b&gt;<br>" in html
    assert "<b>Result:</b> `rm $X` # result</div>" in html  # the tool result, one line
    assert html.count('<code class="language-json">') == 1 and 'P```"\n}</code>' in html


async def test_citations_and_server_tools_are_summarised() -> None:
    reply = await recorded_chat("pydantic-ai__thinking_web_search_citations.sse")("q")
    md = static_bundle(reply)["text/html"]
    assert "<b>Sources:</b><ol><li>" in md
    assert "web_search — done:" in md
    assert md.count("<details ") == 1 + sum(1 for c in reply.tool_calls)


async def test_interrupted_and_failed_replies_say_so() -> None:
    reply = ck.Reply("m", interrupted=True)
    assert "interrupted" in static_bundle(reply)["text/html"]
    assert static_bundle(reply)["text/plain"].endswith("[interrupted]")
    chat = offline_chat([Turn(text="partial answer that breaks", fault=Fault.error_event(after_events=4))])
    with pytest.raises(ck.ClaudekitError) as info:
        await chat("q")
    err = info.value
    assert err.reply is not None
    md = static_bundle(err.reply, err)["text/html"]
    assert "⚠ <b>error:</b>" in md and str(err).split(" — ")[0] in md


async def test_footer_line_sums_steps_and_can_leave_timings_out() -> None:
    reply = await tool_chat()("weather?")
    total_out = sum(s.usage.output_tokens or 0 for s in reply.steps)
    assert len(reply.steps) == 2
    line = footer_line(reply, timings=False)
    assert f"{total_out} out" in line
    assert " s" not in line.replace(" · ", "|")
    assert re.search(r"\d\.\d s", footer_line(reply, timings=True))


# -- prompt fields -------------------------------------------------------------------------------------

NS = {
    "name": "Ada",
    "user": SimpleNamespace(city="Paris", tags=["a", "b"]),
    "d": {"key": "value", "n": 3.14159},
    "xs": [10, 20],
}


def test_fields_fill_from_the_namespace_with_attr_and_index_access() -> None:
    out = format_prompt("Hi {name} from {user.city}; {d[key]} {xs[1]} {user.tags[0]} {d[n]:.2f} {name!r}", NS)
    assert out == "Hi Ada from Paris; value 20 a 3.14 'Ada'"


def test_double_braces_are_literal() -> None:
    assert format_prompt('JSON: {{"a": 1}} for {name}', NS) == 'JSON: {"a": 1} for Ada'


@pytest.mark.parametrize(
    ("template", "needle"),
    [
        ("{missing}", "'missing'"),
        ("{user.country}", "no attribute 'country'"),
        ("{d[nokey]}", "d['nokey']"),
        ("{}", "positional"),
        ("{name.__class__}", "dunder"),
        ('{"a": 1}', "not a variable name"),
        ("{name", "do not parse"),
    ],
)
def test_bad_fields_are_clear_errors(template: str, needle: str) -> None:
    with pytest.raises(PromptFieldError) as info:
        format_prompt(template, NS)
    assert needle in str(info.value)
    assert isinstance(info.value, ck.ClaudekitError)


def test_no_code_is_evaluated() -> None:
    calls: list[int] = []

    class Sneaky:
        def __call__(self) -> str:
            calls.append(1)
            return "ran"

    with pytest.raises(PromptFieldError):
        format_prompt("{f()}", {"f": Sneaky()})
    assert calls == []


def test_dataframes_are_inserted_as_summaries_within_a_budget_and_long_text_is_cut() -> None:
    big = pd.DataFrame({"a": range(500)})
    out = format_prompt("{df}", {"df": big})
    assert out.startswith("DataFrame: 500 rows × 1 column\n")
    assert out.endswith("first 5 rows:\n   a\n0  0\n1  1\n2  2\n3  3\n4  4")
    long = format_prompt("{s}", {"s": "x" * 30_000})
    assert long.startswith("x" * 20_000) and "truncated: 30,000 characters" in long


async def test_a_refusal_is_said_in_the_saved_copy_and_by_the_text_renderer() -> None:
    import io

    from claudekit.notebook._text import TextRenderer
    from tests.conftest import SSE_DIR, sdk_client, sse_transport

    refusal = (SSE_DIR / "sdk-python__refusal_stop_details.sse").read_bytes()
    chat = ck.Chat(client=sdk_client(sse_transport(refusal)), render=False)
    reply = await chat("something refused")
    md = ck.notebook.static_html(reply)
    assert "refused" in md and "cyber: This request was refused due to policy." in md
    assert "taken out of the conversation" in md and "no text; stop reason" not in md
    out = io.StringIO()
    renderer = TextRenderer(out=io.StringIO(), trace=out)  # notes go to the trace stream (stderr)
    renderer.start({"consumer": "reply"})
    renderer.finish(reply, None)
    assert (
        "[refused — Claude declined this prompt (cyber: This request was refused due to policy.)"
        in out.getvalue()
    )


async def test_an_answer_cut_by_max_tokens_says_so_in_the_copy_the_footer_and_the_view() -> None:
    from claudekit.notebook._widget import WidgetRenderer

    reply = await offline_chat([Turn(text="word " * 200)], max_tokens=16)("q")
    assert reply.stop_reason == "max_tokens"
    page = static_bundle(reply)["text/html"]
    assert "✂ <b>cut off: the answer reached max_tokens" in page
    (footer,) = re.findall(FOOTER_SANITIZE_REGEX, page)
    assert "cut off at max_tokens" in footer
    assert "cut off at max_tokens" in footer_line(reply, timings=False)
    assert "cut off" in reply._repr_html_()
    view = WidgetRenderer.__new__(WidgetRenderer)
    view.state = SimpleNamespace(server_blocks=[], citations=[])  # type: ignore[attr-defined]
    assert "cut off: the answer reached max_tokens" in view._extras_html(reply)
    whole = await offline_chat([Turn(text="short")])("q")
    assert "cut off" not in static_bundle(whole)["text/html"] + footer_line(whole)
