"""Documents for a prompt: PDFs and text files become ``document`` content blocks, checked before sending."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .._base._errors import ConfigError
from ._content import sniff_image

__all__ = ["MAX_PDF_BYTES", "MAX_PDF_PAGES", "SUPPORTED", "Document", "check_citations"]

#: The service's PDF limits (docs "PDF support"): a request of at most 32 MB, at most 100 pages.
MAX_PDF_BYTES = 32 * 1024 * 1024
MAX_PDF_PAGES = 100
SUPPORTED = "PDF, plain text, Markdown, CSV or JSON (UTF-8 text)"


@runtime_checkable
class Uploaded(Protocol):
    """A Files API file (``claudekit.File``, made by ``await claudekit.upload(...)``)."""

    id: str
    filename: str
    media_type: str


def _pdf_pages(data: bytes, name: str) -> int:
    # pypdf is imported here: only a PDF needs it, and `import claudekit` stays light.
    import pypdf
    from pypdf.errors import PyPdfError

    try:
        return len(pypdf.PdfReader(io.BytesIO(data)).pages)
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ConfigError(
            f"{name} starts like a PDF but cannot be read as one ({type(exc).__name__})",
            hint="open and re-save it as a PDF, or pass its text instead",
        ) from None


def _check_pdf(data: bytes, name: str) -> int:
    encoded = (len(data) + 2) // 3 * 4
    if encoded > MAX_PDF_BYTES:
        raise ConfigError(
            f"{name} is {len(data) / 1e6:.1f} MB ({encoded / 1e6:.1f} MB as base64): over the service's "
            f"{MAX_PDF_BYTES // (1024 * 1024)} MB request limit",
            hint="split the PDF, or send the pages you need",
        )
    pages = _pdf_pages(data, name)
    if pages > MAX_PDF_PAGES:
        raise ConfigError(
            f"{name} has {pages} pages: the service takes at most {MAX_PDF_PAGES} pages of PDF per request",
            hint="split the PDF and ask about each part",
        )
    return pages


def _as_text(data: bytes, name: str) -> str:
    if sniff_image(data) is not None:
        raise ConfigError(f"{name} is an image, not a document", hint="pass it as claudekit.Image(...)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = ""
    if not text or "\x00" in text:
        raise ConfigError(
            f"{name} is not a document type the API takes: it takes {SUPPORTED}",
            hint="convert it to PDF or text first",
        )
    return text


class Document:
    """A document for a prompt: a PDF, or text (plain, Markdown, CSV, JSON), with citations on by default.

    ``Document("q3.pdf")`` / ``Document(Path(...))`` read a file, ``Document("https://…/x.pdf")`` refers to a
    URL, ``Document(data)`` takes bytes, ``Document.from_text(text)`` takes a string, ``Document(file)``
    refers to an uploaded :class:`claudekit.File` by its id. The type comes from
    the bytes (``%PDF-``), not the name; the service's PDF limits are checked here, before anything is sent.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes | Uploaded,
        *,
        title: str | None = None,
        context: str | None = None,
        citations: bool = True,
    ) -> None:
        self.title = title
        self.context = context
        self.citations = citations
        self.pages: int | None = None
        if isinstance(source, Uploaded):
            self._take_file(source)
        elif isinstance(source, (bytes, bytearray)):
            self._take(bytes(source), "the document")
        elif isinstance(source, str) and source.startswith(("https://", "http://")):
            self.source: dict[str, Any] = {"type": "url", "url": source}
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read document {path}: {exc.strerror}", hint="check the path"
                ) from None
            self._take(data, str(path))
            if self.title is None:
                self.title = path.name
        else:
            raise ConfigError(
                f"cannot make a document from a {type(source).__name__}",
                hint="pass a file path, a URL, bytes, or use Document.from_text",
            )

    @classmethod
    def from_text(
        cls, text: str, *, title: str | None = None, context: str | None = None, citations: bool = True
    ) -> Document:
        """A text document from a string (a str given to ``Document(...)`` is a path or URL)."""
        return cls(text.encode("utf-8"), title=title, context=context, citations=citations)

    def _take_file(self, file: Uploaded) -> None:
        if file.media_type not in ("application/pdf", "text/plain"):
            raise ConfigError(
                f"{file.filename} is {file.media_type}: a document takes a PDF or plain-text file",
                hint="pass an image file to the prompt as it is (it becomes an image block)",
            )
        self.source = {"type": "file", "file_id": file.id}
        self._media = file.media_type
        if self.title is None:
            self.title = file.filename

    def _take(self, data: bytes, name: str) -> None:
        if data.startswith(b"%PDF-"):
            self.pages = _check_pdf(data, name)
            self.source = {
                "type": "base64",
                "media_type": "application/pdf",
                "data": base64.b64encode(data).decode("ascii"),
            }
        else:
            self.source = {"type": "text", "media_type": "text/plain", "data": _as_text(data, name)}

    @property
    def media_type(self) -> str:
        return str(self.source.get("media_type") or getattr(self, "_media", "application/pdf"))

    def to_block(self) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "document", "source": dict(self.source)}
        if self.title is not None:
            block["title"] = self.title
        if self.context is not None:
            block["context"] = self.context
        if self.citations:
            block["citations"] = {"enabled": True}
        return block

    def __repr__(self) -> str:
        kind = self.source["type"]
        where = (
            self.source.get("url") or self.source.get("file_id")
            if kind in ("url", "file")
            else self.media_type
        )
        pages = f", pages={self.pages}" if self.pages is not None else ""
        return f"Document({where!r}, title={self.title!r}{pages}, citations={self.citations})"


def _documents(blocks: Iterable[Any]) -> Iterator[Mapping[str, Any]]:
    for blk in blocks:
        if isinstance(blk, Mapping) and blk.get("type") == "document":
            yield blk


def check_citations(messages: Iterable[Mapping[str, Any]], prompt: Iterable[Any] = ()) -> None:
    """The service takes citations on every document of a request or on none: say so before sending
    (the history's documents count, since every turn sends them again)."""
    seen: dict[bool, str] = {}
    blocks = [b for m in messages if isinstance(m.get("content"), list) for b in m["content"]]
    for n, blk in enumerate(_documents([*blocks, *prompt]), 1):
        cites = blk.get("citations")
        on = bool(isinstance(cites, Mapping) and cites.get("enabled"))
        seen.setdefault(on, str(blk.get("title") or f"document {n}"))
    if len(seen) > 1:
        raise ConfigError(
            f"citations are on for {seen[True]!r} but off for {seen[False]!r}: the API takes citations on "
            "every document of a conversation or on none",
            hint="pass citations=True (the default) or citations=False to every Document",
        )
