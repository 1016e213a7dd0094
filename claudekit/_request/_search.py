"""``claudekit.SearchResult``: a search result with its source, for a prompt or a tool's return value.

The API cites it as ``search_result_location`` (the result's index, its source and title, and the range
of its text blocks), so answers built on your own retrieval can be checked like answers on documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._base._errors import ConfigError

__all__ = ["SearchResult"]


@dataclass(frozen=True)
class SearchResult:
    """One search result: ``source`` (a URL or any identifier), ``title`` and ``content`` (a string, or a
    list of strings: each is a block a citation can point at). Citations are on by default."""

    source: str
    title: str
    content: str | Sequence[str]
    citations: bool = True

    def __post_init__(self) -> None:
        parts = [self.content] if isinstance(self.content, str) else list(self.content)
        if not all(isinstance(p, str) for p in parts) or not any(p.strip() for p in parts):
            raise ConfigError(
                "a SearchResult needs content: a non-empty string or a list of strings",
                hint='e.g. SearchResult(source="https://…", title="…", content="the passage")',
            )
        if not self.source or not self.title:
            raise ConfigError("a SearchResult needs a source and a title", hint="pass source=… and title=…")

    def to_block(self) -> dict[str, Any]:
        parts = [self.content] if isinstance(self.content, str) else list(self.content)
        return {
            "type": "search_result",
            "source": self.source,
            "title": self.title,
            "content": [{"type": "text", "text": p} for p in parts if p.strip()],
            "citations": {"enabled": self.citations},
        }
