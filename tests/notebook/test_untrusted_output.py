"""Issue 21: model output never runs in the page or loads from the network, on every surface.

The offline backend makes the model write the payload corpus (tests/payloads.py) as its text, its
reasoning, a tool's arguments and result, a tool's name and an error message. Each surface's HTML is
then scanned: no tag or attribute that runs, no ``javascript:`` link, no remote load, nothing that hides
the page, and every payload still visible as text. (The browser test loads the same corpus in Chromium.)
"""

from __future__ import annotations

import pytest

import claudekit as ck
from claudekit._base._markup import markdown_html
from claudekit.notebook import static_bundle
from claudekit.notebook._magic import _history_html
from claudekit.offline import Fault, OfflineBackend, Script, ToolCall, Turn
from tests.payloads import PAYLOADS, SHORT, corpus, html_problems, missing_markers

MARKERS = [m for _, _, m in PAYLOADS]


def echo(q: str) -> str:
    """Give back what it was sent."""
    return q


async def payload_reply() -> tuple[ck.Chat, ck.Reply, BaseException]:
    """A reply whose text, thinking, tool arguments, tool result and error are all the corpus."""
    text = corpus()
    turns = [
        Turn(text=text, thinking=text, tool_calls=[ToolCall("echo", {"q": text})]),
        Turn(text=text, fault=Fault.error_event(after_events=3, message=text)),
    ]
    chat = ck.Chat(
        offline=OfflineBackend(responder=Script(turns)), tools=[ck.tool(echo)], thinking=2048, render=False
    )
    with pytest.raises(ck.ClaudekitError) as info:
        await chat(f"Summarise this document:\n\n{text}")
    assert info.value.reply is not None
    return chat, info.value.reply, info.value


@pytest.mark.parametrize(("name", "markdown", "marker"), PAYLOADS, ids=[p[0] for p in PAYLOADS])
def test_each_payload_is_inert_and_visible(name: str, markdown: str, marker: str) -> None:
    page = markdown_html(markdown.replace("{beacon}", "beacon.invalid"))
    assert html_problems(page) == [], page
    assert missing_markers(page, [marker]) == [], page


async def test_the_saved_copy_is_inert_and_shows_every_payload() -> None:
    _, reply, err = await payload_reply()
    assert "onerror" in reply.text and "onerror" in reply.thinking and reply.tool_calls[0].result
    for math in (False, True):
        page = static_bundle(reply, err, math=math)["text/html"]
        assert html_problems(page) == [], page
        assert missing_markers(page) == []
        assert "image from beacon.invalid" in page
    # Reasoning, arguments and result are shown literally: the raw tags themselves are visible.
    page = static_bundle(reply, err)["text/html"]
    assert (
        page.count("&lt;script&gt;top.__ckx='script'&lt;/script&gt;") >= 5
    )  # text ×2, thinking, args, error


async def test_a_tool_name_from_the_model_is_text() -> None:
    chat = ck.Chat(
        offline=OfflineBackend(
            responder=Script([Turn(tool_calls=[ToolCall(SHORT, {"q": SHORT})]), Turn(text="No such tool.")])
        ),
        render=False,
    )
    reply = await chat("q")
    assert reply.tool_calls[0].name == SHORT
    # A name the chat has no tool for is answered with an error result that repeats it: shown as text too.
    assert reply.tool_calls[0].is_error and SHORT in (reply.tool_calls[0].result or "")
    page = static_bundle(reply)["text/html"]
    assert html_problems(page) == [] and "🔧 <img" not in page
    assert missing_markers(page, ["top.__ckx='short'"]) == []


async def test_the_reply_repr_is_inert_and_shows_every_payload() -> None:
    _, reply, _ = await payload_reply()
    assert not hasattr(reply, "_repr_markdown_")  # a trusted Markdown output would run raw HTML
    page = reply._repr_html_()
    assert html_problems(page) == [], page
    assert missing_markers(page) == []


async def test_history_is_inert_for_prompts_and_answers() -> None:
    chat, _, _ = await payload_reply()
    page = _history_html(chat)
    assert html_problems(page) == [], page
    # The user's prompt (cut at 500 characters) and the answers: what is shown is text.
    assert "<b>user</b>" in page and "<b>assistant</b>" in page
    assert missing_markers(page, MARKERS[:3]) == []


def test_usage_views_take_model_names_as_text() -> None:
    from claudekit.usage import UsageLog, UsageRecord
    from claudekit.usage._display import footer_html, log_html
    from tests.usage._support import T0

    rec = UsageRecord(
        timestamp=T0, chat_id=SHORT, turn=1, step=0, model=SHORT, status="ok", input_tokens=5, output_tokens=5
    )
    log = UsageLog()
    log.append(rec)
    for page in (footer_html(rec), log_html(log)):
        assert html_problems(page) == [], page
        assert "top.__ckx='short'" in page.replace("&#x27;", "'").replace("&#39;", "'")


def test_links_and_images_follow_the_rules() -> None:
    page = markdown_html(
        "[web](https://example.org/a) [mail](mailto:a@example.org) [rel](/etc/passwd)"
        " [data](data:text/html,x)"
        " ![inline](data:image/png;base64,iVBORw0KGgo=) ![svg](data:image/svg+xml;base64,PHN2Zz4=)"
        " ![remote](https://img.example.com/x.png)"
    )
    assert '<a href="https://example.org/a"' in page and '<a href="mailto:a@example.org"' in page
    assert "[rel](/etc/passwd)" in page and "[data](data:text/html,x)" in page  # shown as written
    assert '<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">' in page
    assert "![svg](data:image/svg+xml;base64,PHN2Zz4=)" in page  # SVG can carry script: text
    assert 'href="https://img.example.com/x.png"' in page and "image from img.example.com: remote" in page
    assert html_problems(page) == []


def test_code_tables_lists_headings_and_math_still_render() -> None:
    md = "# Title\n\n- one\n- two\n\n| a | b |\n|:-:|--:|\n| 1 | 2 |\n\n```python\nx = '<b>'\n```\n\n$x^2$"
    page = markdown_html(md)
    for tag in (
        "<h1>Title</h1>",
        "<li>one</li>",
        '<th style="text-align:center">a</th>',
        "<td",
        "<pre><code",
    ):
        assert tag in page, tag
    assert "x = '&lt;b&gt;'" in page and "$x^2$" in page
    assert '<span class="math inline">$x^2$</span>' in markdown_html(md, math=True)
