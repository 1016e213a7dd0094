"""``reply.citations``: every citation of an answer as a DataFrame you can check against the documents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import anthropic.types
    import pandas as pd

__all__ = ["COLUMNS", "citation_rows", "citations_frame", "location"]

COLUMNS = [
    "cited_text",
    "document_index",
    "document_title",
    "type",
    "start",
    "end",
    "location",
    "step",
    "block",
    "answer_text",
]

# Location fields per citation type: (start field, end field, how a human reads the range).
_RANGES = {
    "page_location": ("start_page_number", "end_page_number", "p."),
    "char_location": ("start_char_index", "end_char_index", "chars"),
    "content_block_location": ("start_block_index", "end_block_index", "blocks"),
    "search_result_location": ("start_block_index", "end_block_index", "blocks"),
}


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def location(citation: Any) -> str:
    """``p. 3``, ``pp. 3–4``, ``chars 10–52``, ``blocks 0–1``; the URL for a web result. Ends are exclusive
    in the API; pages are shown inclusive, as people number them."""
    kind = str(_get(citation, "type") or "")
    if kind not in _RANGES:
        return str(_get(citation, "url") or "")
    start_f, end_f, word = _RANGES[kind]
    start, end = _get(citation, start_f), _get(citation, end_f)
    if kind == "page_location" and isinstance(start, int) and isinstance(end, int):
        return f"p. {start}" if end - start <= 1 else f"pp. {start}–{end - 1}"
    return f"{word} {start}–{end}"


def citation_rows(messages: list[anthropic.types.Message]) -> list[dict[str, Any]]:
    """One dict per citation: what is cited, where, and which text block of the answer cites it."""
    rows: list[dict[str, Any]] = []
    for step, msg in enumerate(messages):
        for block_index, block in enumerate(msg.content):
            for c in getattr(block, "citations", None) or []:
                kind = _get(c, "type")
                start_f, end_f, _ = _RANGES.get(str(kind), ("", "", ""))
                rows.append(
                    {
                        "cited_text": _get(c, "cited_text"),
                        "document_index": _get(c, "document_index") if start_f else None,
                        "document_title": _get(c, "document_title") or _get(c, "title"),
                        "type": kind,
                        "start": _get(c, start_f) if start_f else None,
                        "end": _get(c, end_f) if end_f else None,
                        "location": location(c),
                        "step": step,
                        "block": block_index,
                        "answer_text": getattr(block, "text", None),
                    }
                )
    return rows


def citations_frame(messages: list[anthropic.types.Message]) -> pd.DataFrame:
    # pandas only when asked for: `import claudekit` must stay light.
    import pandas as pd

    frame: pd.DataFrame = pd.DataFrame(citation_rows(messages), columns=COLUMNS)
    return frame
