"""The model catalog (``models.json``): which Claude models exist, their limits and their lifecycle.

Standard library only, and data only: the offline backend reads it as well as the core, and the answer
never depends on which anthropic SDK is installed. A ``None`` field means no source gave the fact.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = [
    "ModelSpec",
    "all_models",
    "check_name",
    "did_you_mean",
    "lifecycle",
    "lookup",
    "sources",
]

EFFORTS = ("low", "medium", "high", "xhigh", "max")
_WORDS = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class ModelSpec:
    """One catalog entry (see ``models.json``'s ``about`` for the meaning of each field)."""

    id: str
    display_name: str
    family: str
    aliases: tuple[str, ...]
    released: dt.date | None
    context_window: int | None
    max_output_tokens: int | None
    budgeted_thinking: bool | None
    adaptive_thinking: bool | None
    thinking_always_on: bool | None
    effort_levels: tuple[str, ...] | None
    forced_tool_choice_with_adaptive: bool | None
    min_cacheable_tokens: int | None
    deprecated_on: dt.date | None
    retires_on: dt.date | None
    sources: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the API accepts for this model."""
        return (self.id, *self.aliases)

    def retired(self, on: dt.date) -> bool:
        """Whether requests naming this model fail on ``on``."""
        return self.retires_on is not None and on >= self.retires_on

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ModelSpec:
        levels = raw.get("effort_levels")
        return cls(
            id=str(raw["id"]),
            display_name=str(raw["display_name"]),
            family=str(raw["family"]),
            aliases=tuple(str(a) for a in raw.get("aliases") or ()),
            released=_date(raw.get("released")),
            context_window=raw.get("context_window"),
            max_output_tokens=raw.get("max_output_tokens"),
            budgeted_thinking=raw.get("budgeted_thinking"),
            adaptive_thinking=raw.get("adaptive_thinking"),
            thinking_always_on=raw.get("thinking_always_on"),
            effort_levels=None if levels is None else tuple(str(e) for e in levels),
            forced_tool_choice_with_adaptive=raw.get("forced_tool_choice_with_adaptive"),
            min_cacheable_tokens=raw.get("min_cacheable_tokens"),
            deprecated_on=_date(raw.get("deprecated_on")),
            retires_on=_date(raw.get("retires_on")),
            sources=tuple(str(s) for s in raw.get("sources") or ()),
        )


def _date(value: Any) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(str(value))


@functools.lru_cache(maxsize=1)
def _catalog() -> dict[str, Any]:
    text = resources.files("claudekit").joinpath("models.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@functools.lru_cache(maxsize=1)
def all_models() -> tuple[ModelSpec, ...]:
    """Every catalog model, newest first (retired ones included)."""
    return tuple(ModelSpec.from_mapping(m) for m in _catalog()["models"])


@functools.lru_cache(maxsize=1)
def _by_name() -> dict[str, ModelSpec]:
    return {name: spec for spec in all_models() for name in spec.names}


def sources() -> dict[str, str]:
    """The catalog's source citations, by key."""
    return dict(_catalog()["sources"])


def lookup(name: object) -> ModelSpec | None:
    """The model an id or alias names, or ``None`` (names are exact: the API is case-sensitive)."""
    return _by_name().get(name) if isinstance(name, str) else None


def lifecycle(spec: ModelSpec, on: dt.date) -> str:
    """``active``, ``deprecated`` or ``retired`` on a given day (a scheduled retirement means deprecated)."""
    if spec.retired(on):
        return "retired"
    if spec.retires_on is not None or (spec.deprecated_on is not None and on >= spec.deprecated_on):
        return "deprecated"
    return "active"


@functools.lru_cache(maxsize=1)
def _known_words() -> frozenset[str]:
    return frozenset(w for name in _by_name() for w in _WORDS.findall(name))


def did_you_mean(name: str, *, on: dt.date | None = None) -> list[str]:
    """Catalog names ``name`` is a near miss of; empty when it is known or merely unknown.

    A near miss is a known name in another case or with stray spaces, or a name with a misspelt word
    (``claude-sonet-4``). A name whose words are all real model words (``claude-sonnet-6``) or not close
    to any (``my-proxy-model``) is not a near miss: it may be newer than the catalog, or a proxy's.
    Suggestions prefer models not retired ``on`` that day (today by default).
    """
    if lookup(name) is not None:
        return []
    cleaned = name.strip().lower()
    if lookup(cleaned) is not None:
        return [cleaned]
    known = _known_words()
    fixed = cleaned
    for word in set(_WORDS.findall(cleaned)) - known:
        near = difflib.get_close_matches(word, known, n=1, cutoff=0.75)
        if not near:
            return []
        fixed = re.sub(rf"(?<![a-z]){word}(?![a-z])", near[0], fixed)
    if fixed == cleaned:
        return []
    day = on or dt.date.today()
    live = [n for n, spec in _by_name().items() if not spec.retired(day)]
    if lookup(fixed) is not None:
        return [fixed]
    starting = sorted(n for n in live if n.startswith(fixed))
    return starting[:3] or difflib.get_close_matches(fixed, live, n=3, cutoff=0.6)


def check_name(name: str, error: type[Exception]) -> None:
    """Raise ``error`` for a near miss of a known model name (see :func:`did_you_mean`).

    Anything else passes: the service is the judge of names newer than this catalog.
    """
    near = did_you_mean(name)
    if near:
        raise error(f"unknown model {name!r}: did you mean {' or '.join(near)}?")
