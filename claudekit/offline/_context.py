"""What request validation needs besides the body (a leaf: ._validation and ._turns both read it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._signing import ThinkingSigner

__all__ = ["Context"]


@dataclass(frozen=True)
class Context:
    """What validation needs besides the body: the signer, the clock and the request's betas."""

    signer: ThinkingSigner
    today: dt.date = field(default_factory=dt.date.today)
    betas: frozenset[str] = frozenset()
    count_tokens: bool = False
    #: Replaces Files API ``file`` sources with the uploaded bytes (None: left as they are).
    files: Callable[[Sequence[Any]], list[dict[str, Any]]] | None = None
