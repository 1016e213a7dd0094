"""List pagination as the service's list endpoints do it: ``limit`` and ``before_id`` / ``after_id`` over a
newest-first list, answered ``{data, has_more, first_id, last_id}`` (batches, and the files beta)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._errors import ApiError

__all__ = ["id_page", "limit_of", "page_view"]


def limit_of(query: Mapping[str, list[str]]) -> int:
    """``limit`` (default 20, 1 to 1000), or the 400 the service answers."""
    try:
        limit = int(query.get("limit", ["20"])[0])
    except ValueError:
        raise ApiError(400, "limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise ApiError(400, "limit: Input should be between 1 and 1000")
    return limit


def id_page(
    ids: list[str], query: Mapping[str, list[str]], unknown: Callable[[str], ApiError]
) -> tuple[int, int, bool]:
    """(start, stop, has_more) of the page ``query`` asks for in ``ids`` (newest first); ``unknown`` is the
    error for a cursor id that is not in the list."""
    limit = limit_of(query)

    def position(wanted: str) -> int:
        try:
            return ids.index(wanted)
        except ValueError:
            raise unknown(wanted) from None

    start, stop = 0, len(ids)
    if "after_id" in query:
        start = position(query["after_id"][0]) + 1
    if "before_id" in query:
        stop = position(query["before_id"][0])
        start = max(start, stop - limit)
    end = min(stop, start + limit)
    return start, end, end < stop


def page_view(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """The list response of one page."""
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
