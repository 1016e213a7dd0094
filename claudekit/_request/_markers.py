"""Prompt-cache breakpoints: claudekit's own, placed within the service's rules beside the user's.

Service rules (prompt-caching documentation and its 400s): at most 4 blocks carry ``cache_control``, the
top-level automatic one included; in prompt order (tools, then system, then messages) a longer TTL
never comes after a shorter one. claudekit adds up to three markers — the last tool, the last system
block and the top-level automatic one (which marks the end of the conversation) — and keeps every
request within the rules: its own least useful markers go first (tools, then system; the automatic one
reads the most), then the user's oldest markers from earlier turns (said once). Its markers take their
TTL from the user's, so a 5-minute marker never precedes a 1-hour one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .._base._errors import ConfigError
from .._base._notes import say_once

__all__ = ["MAX_MARKERS", "place_markers"]

MAX_MARKERS = 4
_RANK = {"5m": 0, "1h": 1}


@dataclass
class _Marker:
    block: dict[str, Any]  # the block (or, for the automatic marker, the request) holding cache_control
    ttl: str
    ours: bool
    history: bool = False  # a user marker in an earlier turn (dropped first when over the limit)


def _marked(block: dict[str, Any]) -> bool:
    return block.get("cache_control") is not None  # ``"cache_control": null`` marks nothing


def _drop(marker: _Marker) -> None:
    del marker.block["cache_control"]
    say_once(
        "cache_control markers from earlier turns are left out of requests where the service's rules "
        "need it (at most 4 markers, the automatic one included; no 1h marker after a 5m one)",
        key="markers-dropped",
    )


def _drop_out_of_order(sequence: list[_Marker]) -> None:
    """A 5m marker of the user's from an earlier turn, ahead of a 1h one, is left out (not refused)."""
    for m in [
        m for i, m in enumerate(sequence) if m.history and _ttl_rank(m) == 0 and _longer_after(sequence, i)
    ]:
        _drop(m)
        sequence.remove(m)


def _longer_after(sequence: list[_Marker], i: int) -> bool:
    return any(not x.ours and _ttl_rank(x) for x in sequence[i + 1 :])


def _ttl_rank(m: _Marker) -> int:
    return _RANK[m.ttl]


def _ttl(cc: Any) -> str:
    ttl = cc.get("ttl") if isinstance(cc, dict) else None
    return ttl if ttl in _RANK else "5m"


def _message_blocks(messages: list[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, m in enumerate(messages):
        content = m.get("content")
        if not isinstance(content, list):
            continue
        for b in content:
            if not isinstance(b, dict):
                continue
            yield i, b
            if b.get("type") == "tool_result" and isinstance(b.get("content"), list):
                for inner in b["content"]:
                    if isinstance(inner, dict):
                        yield i, inner


def _user_markers(req: dict[str, Any]) -> list[_Marker]:
    """The user's own markers, in prompt order."""
    found: list[_Marker] = []
    system = req.get("system")
    for block in [*req.get("tools", []), *(system if isinstance(system, list) else [])]:
        if _marked(block):
            found.append(_Marker(block, _ttl(block["cache_control"]), ours=False))
    messages = req.get("messages", [])
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    for i, block in _message_blocks(messages):
        if _marked(block):
            found.append(_Marker(block, _ttl(block["cache_control"]), ours=False, history=i < last_user))
    return found


def place_markers(req: dict[str, Any], ttl: str | None) -> None:
    """Add claudekit's markers to ``req`` (built without them) and keep it within the rules, in place.

    ``ttl`` is the chat's cache setting (None: caching off, only the user's markers are checked).
    Raises ConfigError when the user's own markers alone break the rules.
    """
    users = _user_markers(req)
    ours: list[_Marker] = []  # in prompt order
    if ttl is not None:
        tools, system = req.get("tools") or [], req.get("system")
        if tools and not any(_marked(t) for t in tools):
            ours.append(_Marker(tools[-1], ttl, ours=True))
        if isinstance(system, list) and system and not any(_marked(b) for b in system):
            ours.append(_Marker(system[-1], ttl, ours=True))
    auto = _Marker(req, ttl, ours=True) if ttl is not None else None
    if not _within_budget(users, ours, auto is not None):
        auto = None
    sequence = _in_prompt_order(req, users, ours)
    _drop_out_of_order(sequence)
    if auto is not None:
        sequence.append(auto)
    _fit_ttls(sequence)
    for m in ours:
        m.block["cache_control"] = {"type": "ephemeral", "ttl": m.ttl}
    if auto is not None:
        req["cache_control"] = {"type": "ephemeral", "ttl": auto.ttl}


def _within_budget(users: list[_Marker], ours: list[_Marker], auto: bool) -> bool:
    """Drop markers until at most MAX_MARKERS remain (``users`` and ``ours`` are trimmed in place);
    returns whether the automatic marker still fits."""
    if len(users) + len(ours) + auto <= MAX_MARKERS:
        return auto
    del ours[: len(users) + len(ours) + auto - MAX_MARKERS]  # tools first, then system
    older = [u for u in users if u.history]  # oldest first
    excess = len(users) + auto - MAX_MARKERS
    for m in older[: max(excess, 0)]:
        _drop(m)
        users.remove(m)
    if len(users) > MAX_MARKERS:
        raise ConfigError(
            f"the request carries {len(users)} cache_control markers of your own; the service allows 4",
            hint="mark fewer blocks; claudekit already caches tools, system prompt and conversation",
        )
    return auto and len(users) < MAX_MARKERS


def _in_prompt_order(req: dict[str, Any], users: list[_Marker], ours: list[_Marker]) -> list[_Marker]:
    by_block = {id(m.block): m for m in [*users, *ours]}
    order: list[dict[str, Any]] = [*req.get("tools", [])]
    if isinstance(req.get("system"), list):
        order += req["system"]
    order += [b for _, b in _message_blocks(req.get("messages", []))]
    return [by_block[id(b)] for b in order if id(b) in by_block]


def _fit_ttls(sequence: list[_Marker]) -> None:
    """Give claudekit's markers TTLs that keep the sequence non-increasing; check the user's."""
    for i, m in enumerate(sequence):
        if not m.ours:
            continue
        floor = max((_RANK[x.ttl] for x in sequence[i + 1 :] if not x.ours), default=0)
        ceiling = min((_RANK[x.ttl] for x in sequence[:i] if not x.ours), default=1)
        rank = min(max(_RANK[m.ttl], floor), ceiling)
        m.ttl = "1h" if rank else "5m"
    ranks = [_RANK[m.ttl] for m in sequence]
    if any(a < b for a, b in itertools.pairwise(ranks)):
        raise ConfigError(
            "a cache_control marker with ttl '1h' comes after one with ttl '5m'; the service refuses that",
            hint="put 1-hour markers before 5-minute ones (tools, then system, then messages)",
        )
