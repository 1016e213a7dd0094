"""A list that keeps only the most recent items: what a long-lived server remembers of its requests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, SupportsIndex, TypeVar

__all__ = ["RecentList"]

T = TypeVar("T")


class RecentList(list[T]):
    """A ``list`` (tests compare and index it as one) that drops its oldest items beyond ``maxlen`` items
    or ``max_bytes`` of their recorded sizes. Only :meth:`append` records a size."""

    def __init__(self, items: Iterable[T] = (), *, maxlen: int, max_bytes: int | None = None) -> None:
        super().__init__()
        self.maxlen = maxlen
        self.max_bytes = max_bytes
        self._sizes: list[int] = []
        for item in items:
            self.append(item)

    def append(self, item: T, size: int = 0) -> None:  # type: ignore[override]
        super().append(item)
        self._sizes.append(size)
        while len(self) > self.maxlen or (
            self.max_bytes is not None and len(self) > 1 and sum(self._sizes) > self.max_bytes
        ):
            del self[0]

    def __delitem__(self, index: SupportsIndex | slice) -> None:
        super().__delitem__(index)
        del self._sizes[index]

    def clear(self) -> None:
        super().clear()
        self._sizes.clear()

    def __reduce__(self) -> Any:
        return (list, (list(self),))
