"""ck.Document and reply.citations through real HTTP against the offline backend.

Every citation's location is checked against the document the test sent (text sliced at the character
range; a PDF page's text as pypdf extracts it), never against values copied from the output.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import pypdf
import pytest

import claudekit as ck
from claudekit.offline import OfflineBackend, make_async_client
from tests.documents.pdfs import make_pdf

PAGES = [
    "Revenue grew 12 percent in the third quarter. Costs were flat.",
    "The main risk is currency exposure in Europe. Hedging covers half of it.",
]
TEXT = "Minutes of the board.\nThe board approved the budget. The next meeting is in March.\n"


def chat_on(backend: OfflineBackend) -> ck.Chat:
    return ck.Chat(client=make_async_client(backend, max_retries=0), render=False, cache=False)


def page_texts(pdf: bytes) -> list[str]:
    return [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def test_document_blocks_from_path_bytes_url_and_text(tmp_path: Path) -> None:
    pdf = make_pdf(PAGES)
    (tmp_path / "q3.pdf").write_bytes(pdf)
    (tmp_path / "notes.md").write_text("# Notes\nsome text")
    block = ck.Document(tmp_path / "q3.pdf", context="Q3 report").to_block()
    assert block["source"]["media_type"] == "application/pdf"
    assert base64.b64decode(block["source"]["data"]) == pdf
    assert (block["title"], block["context"], block["citations"]) == (
        "q3.pdf",
        "Q3 report",
        {"enabled": True},
    )
    assert ck.Document(pdf).pages == 2
    md = ck.Document(str(tmp_path / "notes.md"), citations=False).to_block()
    assert md["source"] == {"type": "text", "media_type": "text/plain", "data": "# Notes\nsome text"}
    assert "citations" not in md
    assert ck.Document(b"a,b\n1,2\n", title="t.csv").to_block()["source"]["data"] == "a,b\n1,2\n"
    assert ck.Document("https://example.org/a.pdf").to_block()["source"] == {
        "type": "url",
        "url": "https://example.org/a.pdf",
    }
    assert ck.Document.from_text("hello").to_block()["source"]["data"] == "hello"


def test_an_unsupported_type_is_one_line_naming_what_is_supported(tmp_path: Path) -> None:
    (tmp_path / "x.docx").write_bytes(b"PK\x03\x04\x00\x00binary\xff\xfe")
    with pytest.raises(ck.ConfigError) as info:
        ck.Document(tmp_path / "x.docx")
    text = str(info.value)
    assert "\n" not in text
    assert "it takes PDF, plain text, Markdown, CSV or JSON" in text
    with pytest.raises(ck.ConfigError, match="is an image"):
        ck.Document(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(ck.ConfigError, match="cannot be read as one"):
        ck.Document(b"%PDF-1.7 not really a pdf")


async def test_a_pdf_is_cited_by_page_and_the_cited_text_is_on_that_page() -> None:
    pdf = make_pdf(PAGES)
    backend = OfflineBackend()
    reply = await chat_on(backend)(["What is the main currency risk?", ck.Document(pdf, title="Q3 report")])
    frame = reply.citations
    assert len(frame) >= 1
    pages = page_texts(pdf)
    for row in frame.itertuples():
        assert row.type == "page_location"
        assert row.document_index == 0 and row.document_title == "Q3 report"
        assert row.end == row.start + 1
        assert row.cited_text in pages[row.start - 1]
        assert reply.message is not None
        assert reply.message.content[row.block].text == row.answer_text
    assert "currency" in frame.cited_text.iloc[0]
    assert frame.location.iloc[0] == "p. 2"


async def test_a_text_document_is_cited_by_characters_that_slice_to_the_cited_text() -> None:
    backend = OfflineBackend()
    doc = ck.Document.from_text(TEXT, title="minutes")
    pdf = ck.Document(make_pdf(PAGES), title="report")
    reply = await chat_on(backend)(["When is the next meeting?", pdf, doc])
    frame = reply.citations
    chars = frame[frame.type == "char_location"]
    assert len(chars) == 1 and (chars.document_index == 1).all()
    for row in chars.itertuples():
        assert TEXT[row.start : row.end] == row.cited_text
    assert "March" in chars.cited_text.iloc[0]


async def test_citations_delta_matches_the_sdks_own_accumulation() -> None:
    pdf = make_pdf(PAGES)
    backend = OfflineBackend()
    client = make_async_client(backend, max_retries=0)
    content: list[dict[str, Any]] = [
        {"type": "text", "text": "Summarise the risks"},
        ck.Document(pdf, title="r").to_block(),
        ck.Document.from_text(TEXT, title="m").to_block(),
    ]
    async with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=1024, messages=[{"role": "user", "content": content}]
    ) as s:
        deltas = [e async for e in s if e.type == "citation"]
        sdk = await s.get_final_message()
    assert len(deltas) == 2
    reply = await chat_on(backend)(
        ["Summarise the risks", ck.Document(pdf, title="r"), ck.Document.from_text(TEXT, title="m")]
    )
    assert reply.message is not None
    assert reply.message.model_dump() | {"id": ""} == sdk.model_dump() | {"id": ""}
    sdk_cites = [c.model_dump() for b in sdk.content for c in (getattr(b, "citations", None) or [])]
    assert sdk_cites == [d.citation.model_dump() for d in deltas]
    assert reply.citations.cited_text.tolist() == [c["cited_text"] for c in sdk_cites]


async def test_a_pdf_over_the_page_limit_fails_before_sending() -> None:
    backend = OfflineBackend()
    chat = chat_on(backend)
    with pytest.raises(ck.ConfigError, match="101 pages: the service takes at most 100"):
        await chat(["Summarise", ck.Document(make_pdf(["page"] * 101))])
    assert backend.requests == []
    assert len(chat.history) == 0


async def test_the_backend_rejects_bad_document_blocks() -> None:
    client = make_async_client(OfflineBackend(), max_retries=0)
    pdf = ck.Document(make_pdf(PAGES)).to_block()

    async def send(*blocks: dict[str, Any]) -> str:
        with pytest.raises(anthropic.BadRequestError) as info:
            await client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=50,
                messages=[{"role": "user", "content": [*blocks, {"type": "text", "text": "q"}]}],  # type: ignore[list-item]
            )
        return str(info.value)

    not_pdf = {**pdf, "source": {**pdf["source"], "data": base64.b64encode(b"hello").decode()}}
    assert "The PDF specified was not valid" in await send(not_pdf)
    bad_b64 = {**pdf, "source": {**pdf["source"], "data": "%%%"}}
    assert "not valid base64" in await send(bad_b64)
    too_long = {**pdf, "source": {**pdf["source"], "data": base64.b64encode(make_pdf(["p"] * 101)).decode()}}
    assert "A maximum of 100 PDF pages" in await send(too_long)
    text_off = ck.Document.from_text(TEXT, citations=False).to_block()
    assert "all documents or on none" in await send(pdf, text_off)


async def test_pdf_tokens_count_text_and_pages() -> None:
    client = make_async_client(OfflineBackend(), max_retries=0)

    async def count(pages: list[str]) -> int:
        block = ck.Document(make_pdf(pages)).to_block()
        res = await client.messages.count_tokens(
            model="claude-sonnet-4-6",
            messages=[{"role": "user", "content": [block, {"type": "text", "text": "q"}]}],
        )
        return res.input_tokens

    one, two, wordy = await count(["a"]), await count(["a", "a"]), await count(["a " * 200])
    assert two - one > 1000  # a page image per page
    assert wordy > one + 100  # and the page's text


async def test_map_with_a_document_per_row() -> None:
    import pandas as pd

    rows = pd.DataFrame({"vendor": [f"V{i}" for i in range(20)], "amount": [100 + i for i in range(20)]})
    docs = {
        r.vendor: make_pdf([f"Invoice from {r.vendor}. Total due {r.amount} euros."])
        for r in rows.itertuples()
    }
    backend = OfflineBackend()
    out = await ck.map(
        rows,
        lambda row: ["What is the total due?", ck.Document(docs[row["vendor"]], title=row["vendor"])],
        client=make_async_client(backend, max_retries=0),
    )
    assert len(backend.requests) == 20
    for req in backend.requests:
        block = next(b for b in req["messages"][0]["content"] if b["type"] == "document")
        vendor = block["title"]
        assert base64.b64decode(block["source"]["data"]) == docs[vendor]
    # Each row's answer is cited from its own invoice.
    for r in out.itertuples():
        assert f"Total due {r.amount} euros." in r.claude_text


def test_importing_claudekit_loads_neither_pandas_nor_pypdf() -> None:
    code = "import sys, claudekit; print(json.dumps(['pandas' in sys.modules, 'pypdf' in sys.modules]))"
    res = subprocess.run(
        [sys.executable, "-c", "import json;" + code], capture_output=True, text=True, check=True
    )
    assert json.loads(res.stdout) == [False, False]


async def test_the_saved_copy_ends_with_numbered_sources_shown_inert() -> None:
    from claudekit.notebook._static import static_html

    hostile = "Note: <img src=x onerror=alert(1)> the budget was approved. Nothing else."
    backend = OfflineBackend()
    pdf = ck.Document(make_pdf(PAGES), title="Q3 <b>report</b>")
    reply = await chat_on(backend)(["Was the budget approved? currency", pdf, ck.Document.from_text(hostile)])
    html = static_html(reply, timings=False)
    sources = html[html.index("<b>Sources:</b>") :]
    items = sources.split("<li>")[1:]
    assert len(items) == 2
    assert "Q3 &lt;b&gt;report&lt;/b&gt;, p. 2: “The main risk is currency exposure in Europe.”" in items[0]
    assert "document 2, chars 0–" in items[1] and "&lt;img src=x onerror=alert(1)&gt;" in items[1]
    assert "<img" not in html and "onerror=alert(1)>" not in html


async def test_a_cited_answer_goes_back_in_the_next_turn() -> None:
    backend = OfflineBackend()
    chat = chat_on(backend)
    first = await chat(["When is the next meeting?", ck.Document.from_text(TEXT, title="minutes")])
    second = await chat("And was the budget approved?")
    assert second.status == "ok"
    sent = backend.requests[-1]["messages"][1]["content"]
    sent_cites = [c["cited_text"] for b in sent for c in b.get("citations", [])]
    assert sent_cites == first.citations.cited_text.tolist()
    assert "the budget" in second.citations.cited_text.iloc[0]


async def test_a_pdf_over_the_size_limit_fails_before_sending() -> None:
    backend = OfflineBackend()
    chat = chat_on(backend)
    big = b"%PDF-1.7\n" + b"0" * (25 * 1024 * 1024)  # 25 MB is over 32 MB once base64
    with pytest.raises(ck.ConfigError, match=r"over the service's 32 MB request limit"):
        await chat(["Summarise", ck.Document(big)])
    assert backend.requests == [] and len(chat.history) == 0


async def test_streamed_citation_events_and_the_json_reply_agree() -> None:
    backend = OfflineBackend()
    chat = chat_on(backend)
    prompt: list[Any] = ["What is the currency risk?", ck.Document(make_pdf(PAGES), title="r")]
    events = [e async for e in chat.stream(prompt)]
    cited = [e.citation for e in events if isinstance(e, ck.Citation)]
    reply = chat.last_reply
    assert reply is not None
    client = make_async_client(backend, max_retries=0)
    plain = await client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=1024,
        messages=[{"role": "user", "content": [{"type": "text", "text": prompt[0]}, prompt[1].to_block()]}],
    )
    json_cites = [c.cited_text for b in plain.content for c in (getattr(b, "citations", None) or [])]
    assert len(json_cites) == 1
    assert [c.cited_text for c in cited] == json_cites == reply.citations.cited_text.tolist()


def invoices(rows: Any) -> dict[str, bytes]:
    return {
        r.vendor: make_pdf([f"Invoice from {r.vendor}. Total due {r.amount} euros."])
        for r in rows.itertuples()
    }


async def test_batch_with_a_pdf_per_row_and_its_estimate(tmp_path: Path) -> None:
    import pandas as pd

    rows = pd.DataFrame({"vendor": ["Acme", "Globex", "Initech"], "amount": [120, 75, 310]})
    docs = {
        r.vendor: make_pdf([f"Invoice from {r.vendor}. Total due {r.amount} euros."])
        for r in rows.itertuples()
    }

    def prompt(row: Any) -> list[Any]:
        return ["What is the total due?", ck.Document(docs[row["vendor"]], title=row["vendor"])]

    backend = OfflineBackend()
    one = await ck.batch(rows, prompt, offline=backend, dry_run=True, state=tmp_path / "e1.json")
    docs = {v: make_pdf([f"Invoice from {v}."] * 3) for v in docs}
    three = await ck.batch(rows, prompt, offline=backend, dry_run=True, state=tmp_path / "e3.json")
    # Two more pages per row, three rows: each page costs a page image's worth of tokens at least.
    assert three.input_tokens - one.input_tokens > 6 * 1000  # type: ignore[union-attr]
    docs = {
        r.vendor: make_pdf([f"Invoice from {r.vendor}. Total due {r.amount} euros."])
        for r in rows.itertuples()
    }
    job = await ck.batch(rows, prompt, offline=backend, poll_interval=0.01, state=tmp_path / "b.json")
    out = await job  # type: ignore[misc]
    for r in out.itertuples():
        assert f"Total due {r.amount} euros." in r.claude_text


async def test_a_custom_content_document_is_cited_by_block() -> None:
    chunks = ["Chapter one is about apples.", "Chapter two is about pears and plums."]
    block = {
        "type": "document",
        "source": {"type": "content", "content": [{"type": "text", "text": t} for t in chunks]},
        "title": "fruit",
        "citations": {"enabled": True},
    }
    reply = await chat_on(OfflineBackend())(["Which chapter covers pears?", block])
    (row,) = reply.citations.itertuples()
    assert row.type == "content_block_location" and row.end == row.start + 1
    assert chunks[row.start] == row.cited_text and "pears" in row.cited_text
    assert row.location == f"blocks {row.start}–{row.end}"


async def _live_page(chat: ck.Chat, prompt: Any) -> tuple[Any, Any]:
    """The page a live view of ``prompt``'s reply ends with (ops applied as view.js applies them), and the
    reply. Rate 0.5/s: after the first refresh, text deltas take the renderer's fast lane."""
    from claudekit.notebook._widget import WidgetRenderer
    from tests.notebook.helpers import FakeWidget

    made: list[FakeWidget] = []

    def factory(on_message: Any) -> FakeWidget:
        made.append(FakeWidget(on_message))
        return made[-1]

    renderer = WidgetRenderer(0.5, static=False, display=lambda *a, **k: None, widget_factory=factory)
    stream = chat.stream(prompt)
    renderer.start({"model": "m"})
    async for ev in stream:
        renderer.event(ev)
    renderer.finish(stream.reply, None)
    return made[0].page, stream.reply


async def test_live_view_markers_sit_where_each_cited_block_ends() -> None:
    # Each cited block's marker offset ends its text, and marker n shows the n-th source of reply.citations
    # (the streamed events against the final message).
    second = "Supply risk 🚢 remains in the harbour. Prices rose."
    docs = [ck.Document.from_text(TEXT, title="minutes"), ck.Document.from_text(second, title="memo")]
    page, reply = await _live_page(
        chat_on(OfflineBackend()), ["When is the next meeting? What about supply risk?", *docs]
    )
    frame = reply.citations
    assert len(frame) == 2
    (part,) = [p for p in page.parts if p.get("cites")]
    marks = sorted(part["cites"])
    assert [numbers for _, numbers in marks] == [[1], [2]]
    for (end, _), row in zip(marks, frame.itertuples(), strict=True):
        assert part["text"][:end].rstrip().endswith(" ".join(row.cited_text.split()))
    for n, row in enumerate(frame.itertuples(), 1):
        assert page.sources[n] == {"name": row.document_title, "where": row.location, "cited": row.cited_text}


async def test_a_marker_stays_with_its_block_when_uncited_text_follows() -> None:
    # The service interleaves cited and uncited text blocks; the marker goes where the cited one ends, not
    # after the uncited text streamed behind it (a new block must leave the renderer's fast lane).
    from claudekit.offline import Script, Turn

    cite = {
        "type": "char_location",
        "cited_text": "The board approved the budget.",
        "document_index": 0,
        "document_title": "minutes",
        "start_char_index": 22,
        "end_char_index": 52,
        "file_id": None,
    }
    rest = " The rest of this answer cites nothing at all." * 4
    blocks = [("The budget was approved.", [cite]), (rest, [])]
    backend = OfflineBackend(responder=Script([Turn(text="Answer: ", cited=blocks)]))
    chat = ck.Chat(offline=backend, render=False)
    page, reply = await _live_page(chat, "what happened?")
    (part,) = [p for p in page.parts if p.get("cites")]
    (mark,) = part["cites"]
    assert mark[1] == [1] and reply.citations.cited_text.tolist() == [cite["cited_text"]]
    assert part["text"][: mark[0]].endswith("The budget was approved.")
    assert part["text"].endswith(rest)


async def test_two_passages_of_one_web_page_get_a_marker_each_showing_its_own_passage() -> None:
    # A web result's citations name the same page (title, url) for different passages: each sentence's
    # marker must show the passage that sentence cited, and the saved copy must number them the same way.
    from claudekit.notebook._static import static_html
    from claudekit.offline import Script, Turn

    def web(cited: str) -> dict[str, Any]:
        return {
            "type": "web_search_result_location",
            "cited_text": cited,
            "url": "https://example.org/facts",
            "title": "Facts",
            "encrypted_index": "e" + cited[:4],
        }

    blocks = [("Alpha is one.", [web("Alpha is 1.")]), (" Beta is two.", [web("Beta is 2.")])]
    backend = OfflineBackend(responder=Script([Turn(cited=blocks)]))
    page, reply = await _live_page(ck.Chat(offline=backend, render=False), "alpha and beta?")
    (part,) = [p for p in page.parts if p.get("cites")]
    marks = sorted(part["cites"])
    assert len(marks) == len(blocks)
    for (end, numbers), (sentence, (cite,)) in zip(marks, blocks, strict=True):
        assert part["text"][:end].endswith(sentence)
        (n,) = numbers
        assert page.sources[n]["cited"] == cite["cited_text"]  # what the marker shows on hover and click
        assert page.sources[n]["where"] == cite["url"]
    html = static_html(reply, timings=False)
    items = html[html.index("<b>Sources:</b>") :].split("<li>")[1:]
    assert len(items) == len(blocks)
    for (_, (n,)), (_, (cite,)) in zip(marks, blocks, strict=True):
        # The saved copy's source n (and the live view's list) is the passage marker n shows.
        assert cite["cited_text"] in items[n - 1] and cite["url"] in items[n - 1]
        entry = page.extras.split(f"[{n}] ")[1].split(f"[{n + 1}] ")[0]
        assert cite["cited_text"] in entry
    assert reply.citations.cited_text.tolist() == [b[1][0]["cited_text"] for b in blocks]
