"""The service's request rules that are facts, as data (``service_rules.json``, each entry with its sources).

Which top-level fields ``POST /v1/messages`` and ``/v1/messages/count_tokens`` take (plain, and with a beta
header), which beta names are known, and which betas change a rule. Reading them from data rather than from
the installed SDK keeps what offline accepts the same whichever supported SDK is installed; the SDK's types
are the cross-check (tests/offline/test_offline_rules_data.py) and still give each known field's nested shape.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, Literal

__all__ = ["betas_for", "known_betas", "request_fields", "rules_data"]

Surface = Literal["messages", "count_tokens"]


@functools.lru_cache(maxsize=1)
def rules_data() -> dict[str, Any]:
    """The parsed ``service_rules.json`` (read once)."""
    text = resources.files(__package__).joinpath("service_rules.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def request_fields(surface: Surface, beta: bool) -> frozenset[str]:
    """The top-level fields ``surface`` takes: the plain ones, plus the beta ones when a beta is named."""
    fields = rules_data()["fields"][surface]
    return frozenset(fields["plain"]) | (frozenset(fields["beta"]) if beta else frozenset())


def known_betas() -> frozenset[str]:
    """Beta names known to exist (the SDK's list and those seen in real traffic)."""
    return frozenset(rules_data()["betas"]["known"])


def betas_for(effect: str) -> frozenset[str]:
    """The betas that change one rule (``long_output``, ``interleaved_thinking``, ``skills_container``)."""
    return frozenset(rules_data()["betas"]["effects"][effect]["betas"])
