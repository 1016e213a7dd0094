"""What request validation needs besides the body (a leaf: ._validation and ._turns both read it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ._signing import ThinkingSigner

__all__ = ["Context"]


@dataclass(frozen=True)
class Context:
    """What validation needs besides the body: the signer, the clock and the request's betas."""

    signer: ThinkingSigner
    today: dt.date = field(default_factory=dt.date.today)
    betas: frozenset[str] = frozenset()
    count_tokens: bool = False
