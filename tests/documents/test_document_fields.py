"""A Document (or another content object) in a prompt template field is sent as its own block."""

from __future__ import annotations

import claudekit as ck
from claudekit._request._template import format_prompt
from tests.documents.pdfs import make_pdf


def test_a_document_field_becomes_an_attachment_named_in_the_text() -> None:
    report = ck.Document(make_pdf(["Revenue grew 12 percent."]), title="q3.pdf")
    hit = ck.SearchResult(source="kb/1", title="Leave", content="25 days.")
    attached: list[object] = []
    text = format_prompt(
        "Summarise {report}, then compare {hit}.", {"report": report, "hit": hit}, attachments=attached
    )
    assert attached == [report, hit]
    assert (
        text == 'Summarise the attached document "q3.pdf", then compare the attached search result "Leave".'
    )
    # Without an attachments list (or with a conversion) a field is text, as before.
    assert "Document(" in format_prompt("{report}", {"report": report})
    kept: list[object] = []
    assert "Document(" in format_prompt("{report!s}", {"report": report}, attachments=kept) and kept == []


def test_a_row_mixing_citations_fails_alone_before_sending() -> None:
    import asyncio

    import pandas as pd

    from claudekit.offline import OfflineBackend

    backend = OfflineBackend()
    rows = pd.DataFrame({"cite": [True, False]})

    def prompt(row: dict[str, object]) -> list[object]:
        other = ck.Document.from_text("Second note.", citations=bool(row["cite"]))
        return [ck.Document.from_text("First note."), other, "Summarise."]

    out = asyncio.run(ck.map(rows, prompt, offline=backend, progress=False))
    assert list(out["claude_status"]) == ["ok", "prompt_error"]
    assert "citations are on" in out["claude_error"].iloc[1]
    assert len([p for m, p in backend.http_log if p == "/v1/messages"]) == 1
