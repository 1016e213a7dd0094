"""Document blocks offline: validation, the text a PDF holds, and answers whose citations are valid.

Citations point where the service's would: ``char_location`` into a text document (``cited_text`` is
``text[start:end]``), ``page_location`` into a PDF (1-based pages, end exclusive; the cited text is
on that page as pypdf extracts it), ``content_block_location`` into a custom-content document.
PDF text comes from pypdf (a well-kept library), never from a PDF parser of our own.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import ApiError

__all__ = [
    "MAX_PDF_PAGES",
    "MAX_REQUEST_BYTES",
    "check_documents",
    "cited_answer",
    "document_blocks",
    "pdf_pages",
]

MAX_PDF_PAGES = 100
MAX_REQUEST_BYTES = 32 * 1024 * 1024
_SENTENCE = re.compile(r"\S[^.!?\n]*[.!?]?")
_WORD = re.compile(r"[a-z0-9]{3,}")


@dataclass(frozen=True)
class PdfPage:
    text: str
    width: float
    height: float


def _bad(message: str) -> ApiError:
    return ApiError(400, message, "invalid_request_error")


def document_blocks(messages: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, block) of every document block, in request order: the order ``document_index`` counts."""
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if not isinstance(content, list):
            continue
        for j, blk in enumerate(content):
            if isinstance(blk, Mapping) and blk.get("type") == "document":
                yield f"messages.{i}.content.{j}", blk


@functools.lru_cache(maxsize=32)
def pdf_pages(data: bytes) -> tuple[PdfPage, ...] | None:
    """Each page's extracted text and size in points, or None if pypdf cannot read the bytes."""
    import pypdf
    from pypdf.errors import PyPdfError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        return tuple(
            PdfPage(p.extract_text() or "", float(p.mediabox.width), float(p.mediabox.height))
            for p in reader.pages
        )
    except (PyPdfError, ValueError, KeyError, TypeError, OSError):
        return None


def pdf_bytes(block: Mapping[str, Any]) -> bytes | None:
    """The decoded bytes of a base64 PDF document block (None for other sources or bad base64)."""
    source = block.get("source")
    if not isinstance(source, Mapping) or source.get("type") != "base64":
        return None
    try:
        return base64.b64decode(str(source.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        return None


def _check_pdf(block: Mapping[str, Any], path: str) -> int:
    """Check a base64 PDF source; return its size in bytes as sent."""
    source = block["source"]
    data = str(source.get("data", ""))
    raw = pdf_bytes(block)
    if raw is None:
        raise _bad(f"{path}.document.source.base64.data: The PDF data is not valid base64")
    pages = pdf_pages(raw) if raw.startswith(b"%PDF-") else None
    if pages is None:
        raise _bad(f"{path}.document.source.base64.data: The PDF specified was not valid.")
    if len(pages) > MAX_PDF_PAGES:
        raise _bad(
            f"{path}.document.source.base64.data: A maximum of {MAX_PDF_PAGES} PDF pages may be provided."
        )
    return len(data)


def check_documents(messages: Sequence[Mapping[str, Any]]) -> None:
    """PDF bytes really PDF, base64 that decodes, the page and size limits, citations on all or none."""
    enabled: set[bool] = set()
    size = 0
    for path, blk in document_blocks(messages):
        cites = blk.get("citations")
        enabled.add(bool(isinstance(cites, Mapping) and cites.get("enabled")))
        source = blk.get("source")
        if isinstance(source, Mapping) and source.get("type") == "base64":
            sent = _check_pdf(blk, path)
            # A Files API document is not in the request's bytes.
            size += 0 if getattr(source, "file_id", None) else sent
    if len(enabled) > 1:
        raise _bad("Citations must be enabled on all documents or on none of them.")
    if size > MAX_REQUEST_BYTES:
        raise ApiError(413, "Request exceeds the maximum allowed number of bytes.", "request_too_large")


# -- answers with citations ------------------------------------------------------------------------


def _units(blk: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(cited text, location fields) for every sentence (or content block) a citation may point at."""
    source = blk.get("source")
    if not isinstance(source, Mapping):
        return []
    kind = source.get("type")
    if kind == "text":
        text = str(source.get("data", ""))
        return [
            (m.group(), {"type": "char_location", "start_char_index": m.start(), "end_char_index": m.end()})
            for m in _SENTENCE.finditer(text)
        ]
    if kind == "content" and isinstance(source.get("content"), list):
        return [
            (
                str(b.get("text", "")),
                {"type": "content_block_location", "start_block_index": k, "end_block_index": k + 1},
            )
            for k, b in enumerate(source["content"])
            if isinstance(b, Mapping) and b.get("type") == "text" and str(b.get("text", "")).strip()
        ]
    raw = pdf_bytes(blk)
    pages = pdf_pages(raw) if raw is not None else None
    return [
        (m.group(), {"type": "page_location", "start_page_number": n, "end_page_number": n + 1})
        for n, page in enumerate(pages or (), 1)
        for m in _SENTENCE.finditer(page.text)
    ]


def _best(units: list[tuple[str, dict[str, Any]]], question: set[str]) -> tuple[str, dict[str, Any]] | None:
    if not units:
        return None
    # Most words shared with the question; the earliest sentence wins a tie.
    return max(units, key=lambda u: len(question & set(_WORD.findall(u[0].lower()))))


def _enabled(blk: Mapping[str, Any]) -> bool:
    return isinstance(blk.get("citations"), Mapping) and bool(blk["citations"].get("enabled"))


def search_results(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Every ``search_result`` block, in the order ``search_result_index`` counts them: across messages
    and inside tool results."""
    found: list[Mapping[str, Any]] = []
    for msg in messages:
        content = msg.get("content")
        for blk in content if isinstance(content, list) else ():
            if not isinstance(blk, Mapping):
                continue
            inner = blk.get("content") if blk.get("type") == "tool_result" else [blk]
            found += [b for b in inner or () if isinstance(b, Mapping) and b.get("type") == "search_result"]
    return found


def _search_units(blk: Mapping[str, Any], index: int) -> list[tuple[str, dict[str, Any]]]:
    where = {"search_result_index": index, "source": blk.get("source"), "title": blk.get("title")}
    return [
        (
            str(b.get("text", "")),
            {"type": "search_result_location", **where, "start_block_index": k, "end_block_index": k + 1},
        )
        for k, b in enumerate(blk.get("content") or [])
        if isinstance(b, Mapping) and b.get("type") == "text" and str(b.get("text", "")).strip()
    ]


def _cited_search_results(
    messages: Sequence[Mapping[str, Any]], question: set[str]
) -> list[tuple[str, list[dict[str, Any]]]]:
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for index, blk in enumerate(search_results(messages)):
        best = _best(_search_units(blk, index), question) if _enabled(blk) else None
        if best is not None:
            cited, location = best
            out.append((f"- {' '.join(cited.split())}\n", [{"cited_text": cited, **location}]))
    return out


def cited_answer(body: Mapping[str, Any], prompt: str) -> list[tuple[str, list[dict[str, Any]]]] | None:
    """Text blocks answering ``prompt`` from the documents and search results, each with its citations;
    None without any document or search result that has citations enabled."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, Mapping)]
    docs = [blk for _path, blk in document_blocks(messages)]
    question = set(_WORD.findall(prompt.lower()))
    found = _cited_search_results(messages, question)
    if not any(_enabled(d) for d in docs):
        return [("(offline) From the search results:\n", []), *found] if found else None
    blocks: list[tuple[str, list[dict[str, Any]]]] = [("(offline) From the documents:\n", [])]
    for index, blk in enumerate(docs):
        best = _best(_units(blk), question)
        if best is None:
            continue
        cited, location = best
        title = blk.get("title")
        file_id = getattr(blk.get("source"), "file_id", None)
        citation = {"cited_text": cited, "document_index": index, "document_title": title, "file_id": file_id}
        blocks.append((f"- {' '.join(cited.split())}\n", [{**citation, **location}]))
    blocks += found
    return blocks if len(blocks) > 1 else None
