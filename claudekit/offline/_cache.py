"""Prompt cache accounted like the service.

Model (https://platform.claude.com/docs/en/build-with-claude/prompt-caching):

* The prompt is the sequence tools → system → messages, one *segment* per tool
  definition, system block and message content block. Each segment has a cumulative
  hash of everything up to and including it (``cache_control`` markers excluded, so
  moving a breakpoint does not change the prefix) and a cumulative token count.
* Breakpoints are the blocks carrying ``cache_control`` plus, with top-level
  ``cache_control`` (automatic caching), the last cacheable block of the request.
* Reads: for every breakpoint the cache is checked at that boundary and at up to
  ``LOOKBACK`` (20) earlier block boundaries; the longest unexpired prefix found is
  read and its TTL refreshed.
* Writes: each breakpoint after the read prefix whose prefix reaches the model's
  minimum cacheable length is written; the tokens between the previous written (or
  read) boundary and it count as ``cache_creation`` under that breakpoint's TTL.
* ``input_tokens`` is what is neither read nor written.
* Entries live for their TTL (5 min or 1 h) on an injectable clock and are keyed by
  model (a model's aliases and dated id share one cache).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._base import _models
from ._tokens import MESSAGE_FRAMING, REQUEST_FRAMING, block_tokens, canonical, tool_tokens

__all__ = [
    "LOOKBACK",
    "TTL_SECONDS",
    "CacheUsage",
    "Prompt",
    "PromptCache",
    "Segment",
    "build_prompt",
    "min_cacheable_tokens",
    "model_key",
]

LOOKBACK = 20
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}

# Minimum cacheable prompt length: the catalog's figure (claudekit/models.json, from the prompt-caching
# page) when it has one. Models whose figure no source gives take their family's rule (our choice):
# opus/fable/mythos 5.x → 512, sonnet 5.x → 1024, haiku 5.x → 2048, anything else → 1024.
_FAMILY_MIN_CACHEABLE: list[tuple[str, int]] = [
    (r"^claude-sonnet-5", 1024),
    (r"^claude-haiku-5", 2048),
    (r"^claude-(opus|fable|mythos)-5", 512),
    (r"^claude-mythos-preview", 512),
]


def min_cacheable_tokens(model: str) -> int:
    """Minimum prefix length (tokens) that a breakpoint must reach to be cached."""
    spec = _models.lookup(model)
    if spec is not None and spec.min_cacheable_tokens is not None:
        return spec.min_cacheable_tokens
    name = spec.id if spec is not None else model
    for pattern, n in _FAMILY_MIN_CACHEABLE:
        if re.match(pattern, name):
            return n
    return 1024


def model_key(model: str) -> str:
    """The cache a model uses: aliases and dated ids of one model share it (``claude-haiku-4-5``)."""
    spec = _models.lookup(model)
    return spec.id if spec is not None else re.sub(r"-\d{8}$", "", model)


@dataclass(frozen=True)
class Segment:
    """One cacheable unit of the prompt."""

    section: str  # "tools" | "system" | "messages"
    tokens: int
    cum_tokens: int
    cum_hash: str
    cache_control: Mapping[str, Any] | None
    message_index: int = -1
    block_index: int = -1
    block_type: str = ""


@dataclass
class Prompt:
    """The linearised prompt of a request."""

    segments: list[Segment]
    tools_tokens: int
    system_tokens: int
    tools_hash: str
    system_hash: str
    message_hashes: list[str]  # cumulative hash after each message
    message_cum_tokens: list[int]  # cumulative tokens (whole prompt) after each message

    @property
    def total(self) -> int:
        """All input tokens: the segments plus the uncacheable request framing."""
        return (
            self.message_cum_tokens[-1] if self.message_cum_tokens else self.prefix_tokens
        ) + REQUEST_FRAMING

    @property
    def prefix_tokens(self) -> int:
        """Tokens of tools and system."""
        return self.tools_tokens + self.system_tokens


def _h(prev: str, value: Any) -> str:
    return hashlib.sha256((prev + "\x00" + canonical(value)).encode()).hexdigest()


def _strip_cc(block: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k != "cache_control"}


def normalised_blocks(content: Any) -> list[dict[str, Any]]:
    """Content as a list of blocks (a string becomes one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, Sequence):
        return [dict(b) for b in content if isinstance(b, Mapping)]
    return []


def build_prompt(body: Mapping[str, Any]) -> Prompt:
    """Linearise tools → system → messages into segments with cumulative hashes and tokens."""
    segs: list[Segment] = []
    cum = 0
    hsh = ""
    tools = body.get("tools") or []
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        if not isinstance(tool, Mapping):
            continue
        n = tool_tokens(tool)
        cum += n
        hsh = _h(hsh, ["tool", _strip_cc(tool)])
        cc = tool.get("cache_control")
        segs.append(Segment("tools", n, cum, hsh, cc if isinstance(cc, Mapping) else None, -1, i, "tool"))
    tools_tokens, tools_hash = cum, hsh
    system = body.get("system")
    if system:
        for i, blk in enumerate(normalised_blocks(system)):
            n = block_tokens(blk)
            cum += n
            hsh = _h(hsh, ["system", _strip_cc(blk)])
            cc = blk.get("cache_control")
            segs.append(
                Segment("system", n, cum, hsh, cc if isinstance(cc, Mapping) else None, -1, i, "text")
            )
    system_tokens, system_hash = cum - tools_tokens, hsh
    message_hashes: list[str] = []
    message_cum: list[int] = []
    messages = body.get("messages") or []
    for mi, msg in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(msg, Mapping):
            continue
        blocks = normalised_blocks(msg.get("content"))
        role = msg.get("role")
        for bi, blk in enumerate(blocks):
            n = block_tokens(blk) + (MESSAGE_FRAMING if bi == 0 else 0)
            cum += n
            hsh = _h(hsh, [role if bi == 0 else "", _strip_cc(blk)])
            cc = blk.get("cache_control")
            segs.append(
                Segment(
                    "messages",
                    n,
                    cum,
                    hsh,
                    cc if isinstance(cc, Mapping) else None,
                    mi,
                    bi,
                    str(blk.get("type", "")),
                )
            )
        if not blocks:
            cum += MESSAGE_FRAMING
        message_hashes.append(hsh)
        message_cum.append(cum)
    return Prompt(segs, tools_tokens, system_tokens, tools_hash, system_hash, message_hashes, message_cum)


_UNCACHEABLE_TYPES = frozenset({"thinking", "redacted_thinking"})


def breakpoints(body: Mapping[str, Any], prompt: Prompt) -> list[tuple[int, str]]:
    """(segment index, ttl) of every breakpoint, automatic one included, in prompt order."""
    out: dict[int, str] = {}
    for i, seg in enumerate(prompt.segments):
        if seg.cache_control is not None:
            out[i] = str(seg.cache_control.get("ttl") or "5m")
    auto = body.get("cache_control")
    if isinstance(auto, Mapping):
        for i in range(len(prompt.segments) - 1, -1, -1):
            if prompt.segments[i].block_type not in _UNCACHEABLE_TYPES:
                out.setdefault(i, str(auto.get("ttl") or "5m"))
                break
    return sorted(out.items())


@dataclass(frozen=True)
class CacheUsage:
    """What one request reads from and writes to the cache."""

    input_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int

    def as_usage(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.ephemeral_5m_input_tokens,
                "ephemeral_1h_input_tokens": self.ephemeral_1h_input_tokens,
            },
        }


@dataclass
class _Entry:
    expires_at: float
    ttl: float


@dataclass
class PromptCache:
    """The backend's cache: prefix hash → expiry, on the backend's clock."""

    clock: Callable[[], float]
    entries: dict[tuple[str, str], _Entry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()

    def account(self, model: str, body: Mapping[str, Any], prompt: Prompt | None = None) -> CacheUsage:
        """Read/write the cache for one request and return its usage split."""
        prompt = prompt or build_prompt(body)
        segs = prompt.segments
        bps = breakpoints(body, prompt)
        mkey = model_key(model)
        minimum = min_cacheable_tokens(model)
        with self._lock:
            now = self.clock()
            read_idx = -1
            hit: _Entry | None = None
            for p, _ttl in bps:
                for q in range(p, max(-1, p - LOOKBACK - 1), -1):
                    if q <= read_idx:
                        break
                    entry = self.entries.get((mkey, segs[q].cum_hash))
                    if entry is not None and entry.expires_at > now:
                        read_idx, hit = q, entry
                        break
            if hit is not None:
                hit.expires_at = now + hit.ttl
            read = segs[read_idx].cum_tokens if read_idx >= 0 else 0
            prev = read
            created = {"5m": 0, "1h": 0}
            for p, ttl in bps:
                if p <= read_idx or segs[p].cum_tokens < minimum:
                    continue
                ttl_key = ttl if ttl in created else "5m"
                created[ttl_key] += segs[p].cum_tokens - prev
                prev = segs[p].cum_tokens
                seconds = TTL_SECONDS[ttl_key]
                existing = self.entries.get((mkey, segs[p].cum_hash))
                if existing is None or existing.expires_at <= now or existing.ttl < seconds:
                    self.entries[(mkey, segs[p].cum_hash)] = _Entry(now + seconds, seconds)
                else:
                    existing.expires_at = max(existing.expires_at, now + seconds)
        creation = created["5m"] + created["1h"]
        return CacheUsage(
            input_tokens=prompt.total - read - creation,
            cache_read_input_tokens=read,
            cache_creation_input_tokens=creation,
            ephemeral_5m_input_tokens=created["5m"],
            ephemeral_1h_input_tokens=created["1h"],
        )
