"""Client-side fingerprint of the cacheable request prefix, to explain cache misses without diagnostics."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["PrefixFingerprint", "PrefixTracker", "canonical_hash", "find_ttl"]

_TTL = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1)}
#: Request keys that change what the API can reuse from the cache besides model/tools/system/messages.
_OTHER_KEYS = ("tool_choice", "thinking")


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list | tuple):
        return [_strip_cache_control(v) for v in value]
    return value


def canonical_hash(value: Any) -> str:
    """SHA-256 of canonical JSON (sorted keys, compact), ignoring every ``cache_control`` marker."""
    text = json.dumps(
        _strip_cache_control(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _normalise_system(system: Any) -> Any:
    if system is None or system == "" or system == []:
        return None
    if isinstance(system, str):
        return [{"type": "text", "text": system}]
    return system


def _normalise_message(message: Any) -> Any:
    if isinstance(message, Mapping):
        content = message.get("content")
        if isinstance(content, str):
            return {**message, "content": [{"type": "text", "text": content}]}
    return message


def find_ttl(value: Any) -> timedelta | None:
    """The longest TTL among the cache_control markers in ``value`` (None when there are none)."""
    best: timedelta | None = None
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            cc = item.get("cache_control")
            if isinstance(cc, Mapping):
                ttl = _TTL.get(str(cc.get("ttl", "5m")), _TTL["5m"])
                best = ttl if best is None or ttl > best else best
            stack.extend(v for k, v in item.items() if k != "cache_control")
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return best


def _tool_names(tools: Any) -> list[str]:
    if not isinstance(tools, Sequence) or isinstance(tools, str):
        return []
    return [str(t.get("name")) for t in tools if isinstance(t, Mapping) and t.get("name")]


@dataclass(frozen=True)
class PrefixFingerprint:
    """Hashes of the pieces of one request, in cache-prefix order: tools, system, messages."""

    model: str | None
    tools: str
    tool_names: tuple[str, ...]
    system: str
    messages: tuple[str, ...]
    other: tuple[tuple[str, str], ...]
    ttl: timedelta | None
    at: datetime

    @classmethod
    def of(cls, params: Mapping[str, Any], at: datetime) -> PrefixFingerprint:
        tools = params.get("tools") or []
        messages = params.get("messages") or []
        return cls(
            model=str(params["model"]) if params.get("model") is not None else None,
            tools=canonical_hash(tools),
            tool_names=tuple(_tool_names(tools)),
            system=canonical_hash(_normalise_system(params.get("system"))),
            messages=tuple(canonical_hash(_normalise_message(m)) for m in messages),
            other=tuple((k, canonical_hash(params.get(k))) for k in _OTHER_KEYS),
            ttl=find_ttl(params),
            at=at,
        )


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def _idle_text(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class PrefixTracker:
    """Remembers the previous request of one conversation and explains why the next one will miss the cache.

    Feed it the exact JSON body the core sends (keys ``model``, ``system``, ``tools``, ``messages``,
    ``cache_control``, ...). Each piece is hashed as canonical JSON with every ``cache_control`` marker
    removed, so moving a breakpoint is not a change. Use one tracker per conversation.
    """

    def __init__(self) -> None:
        self._last: PrefixFingerprint | None = None
        self.calls = 0

    @property
    def last(self) -> PrefixFingerprint | None:
        return self._last

    def reset(self) -> None:
        self._last = None
        self.calls = 0

    def observe(
        self, request_params: Mapping[str, Any], at: datetime, *, turn: int | None = None
    ) -> str | None:
        """Record this request; return a human reason why it should miss the cache, or ``None``.

        Reasons, most fundamental first (several are joined with "; "): "model changed (a → b)",
        "tools changed (added: x)", "system prompt changed", "tool_choice changed", "thinking changed",
        "an earlier message was edited (message 3 of 8)", "earlier messages were removed (10 → 4)",
        "TTL likely expired (idle 6 min > 5m TTL)". ``turn`` only adds "at turn N" to the text.
        """
        at = _utc(at)
        fp = PrefixFingerprint.of(request_params, at)
        prev = self._last
        self._last = fp
        self.calls += 1
        if prev is None:
            return None
        reasons: list[str] = []
        if fp.model != prev.model:
            reasons.append(f"model changed ({prev.model} → {fp.model})")
        if fp.tools != prev.tools:
            reasons.append(_tools_reason(prev.tool_names, fp.tool_names))
        if fp.system != prev.system:
            reasons.append("system prompt changed")
        for (key, old), (_, new) in zip(prev.other, fp.other, strict=True):
            if old != new:
                reasons.append(f"{key} changed")
        n_prev, n_new = len(prev.messages), len(fp.messages)
        common = min(n_prev, n_new)
        first_diff = next((i for i in range(common) if prev.messages[i] != fp.messages[i]), None)
        if first_diff is not None:
            reasons.append(f"an earlier message was edited (message {first_diff + 1} of {n_new})")
        elif n_new < n_prev:
            reasons.append(f"earlier messages were removed ({n_prev} → {n_new})")
        if not reasons and prev.ttl is not None:
            idle = at - prev.at
            if idle > prev.ttl:
                ttl_name = "1h" if prev.ttl >= _TTL["1h"] else "5m"
                reasons.append(f"TTL likely expired (idle {_idle_text(idle)} > {ttl_name} TTL)")
        if not reasons:
            return None
        text = "; ".join(reasons)
        return f"{text} at turn {turn}" if turn is not None else text


def _tools_reason(old: Sequence[str], new: Sequence[str]) -> str:
    added = [n for n in new if n not in old]
    removed = [n for n in old if n not in new]
    detail: list[str] = []
    if added:
        detail.append("added: " + ", ".join(added))
    if removed:
        detail.append("removed: " + ", ".join(removed))
    if not detail:
        reordered = sorted(old) == sorted(new) and list(old) != list(new)
        detail.append("reordered" if reordered else "definitions edited")
    return f"tools changed ({'; '.join(detail)})"
