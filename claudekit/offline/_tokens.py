"""One deterministic token counter, used for usage, caching and ``count_tokens``.

Claude's tokenizer is not public, so this approximates it with a regex split and a
"~4 characters per token" rule:

* the text is cut into pieces: a run of letters, a run of digits, or one other
  non-space character, each with the whitespace in front of it;
* a run of letters costs ``ceil(len / 4)`` tokens, a run of digits ``ceil(len / 3)``,
  any other character 1 token; whitespace is free.

Splitting a text at piece boundaries never changes the total, which is what lets a
stream's deltas add up exactly to ``usage.output_tokens``.

Structure costs fixed framing tokens (see the constants below), and an image costs
``ceil(width * height / 750)`` tokens after the documented resize to a long edge of at
most 1568 px and at most ~1.15 megapixels
(https://platform.claude.com/docs/en/build-with-claude/vision).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._documents import pdf_bytes, pdf_pages

__all__ = [
    "BLOCK_FRAMING",
    "IMAGE_FALLBACK_TOKENS",
    "MESSAGE_FRAMING",
    "REQUEST_FRAMING",
    "TOOL_FRAMING",
    "block_tokens",
    "canonical",
    "count_text",
    "image_size",
    "image_tokens",
    "text_pieces",
    "tool_tokens",
]

_PIECE_RE = re.compile(r"\s*(?:[^\W\d_]+|\d+|\S)|\s+", re.UNICODE)

#: Tokens added for each message (role header).
MESSAGE_FRAMING = 3
#: Tokens added for each content block / system block.
BLOCK_FRAMING = 1
#: Tokens added for each tool definition on top of its JSON.
TOOL_FRAMING = 4
#: Uncacheable tokens after the prompt (the turn header the model answers after); this is
#: why a fully cached request still reports a few ``input_tokens``, as the service does.
REQUEST_FRAMING = 3
#: Cost of an image whose size cannot be read from its header (URL or file sources).
IMAGE_FALLBACK_TOKENS = 1600


def text_pieces(text: str) -> list[str]:
    """Cut ``text`` into the counter's pieces; ``"".join(pieces) == text``."""
    return _PIECE_RE.findall(text)


def _piece_tokens(piece: str) -> int:
    core = piece.strip()
    if not core:
        return 0
    if core.isdigit():
        return math.ceil(len(core) / 3)
    if len(core) == 1:
        return 1
    return math.ceil(len(core) / 4)


def count_text(text: str) -> int:
    """Approximate Claude tokens in ``text`` (see the module docstring)."""
    return sum(_piece_tokens(p) for p in _PIECE_RE.findall(text))


def canonical(value: Any) -> str:
    """Stable JSON used for hashing and for counting structured values."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height read from a PNG, GIF, JPEG or WebP header, or None."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
            w, h = struct.unpack(">II", data[16:24])
            return int(w), int(h)
        if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
            w, h = struct.unpack("<HH", data[6:10])
            return int(w), int(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            kind = data[12:16]
            if kind == b"VP8X":
                w = int.from_bytes(data[24:27], "little") + 1
                h = int.from_bytes(data[27:30], "little") + 1
                return w, h
            if kind == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return int(w) & 0x3FFF, int(h) & 0x3FFF
            if kind == b"VP8L":
                b = data[21:25]
                w = 1 + (((b[1] & 0x3F) << 8) | b[0])
                h = 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
                return w, h
            return None
        if data[:2] == b"\xff\xd8":
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    i += 1
                    continue
                marker = data[i + 1]
                if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                    h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                    return int(w), int(h)
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                    i += 2
                    continue
                (seg_len,) = struct.unpack(">H", data[i + 2 : i + 4])
                i += 2 + int(seg_len)
    except (struct.error, IndexError):
        return None
    return None


def image_tokens(width: int, height: int) -> int:
    """Documented vision estimate: resize to ≤1568 px long edge and ≤1.15 MP, then w·h/750."""
    if width <= 0 or height <= 0:
        return 0
    scale = min(1.0, 1568 / max(width, height), math.sqrt(1_150_000 / (width * height)))
    w, h = width * scale, height * scale
    return max(1, math.ceil(w * h / 750))


def _image_block_tokens(block: Mapping[str, Any]) -> int:
    source = block.get("source")
    if isinstance(source, Mapping) and source.get("type") == "base64":
        try:
            raw = base64.b64decode(str(source.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            return IMAGE_FALLBACK_TOKENS
        size = image_size(raw)
        if size is not None:
            return image_tokens(*size)
    return IMAGE_FALLBACK_TOKENS


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return count_text(content)
    if isinstance(content, Sequence):
        return sum(block_tokens(b) for b in content if isinstance(b, Mapping))
    return 0


def block_tokens(block: Mapping[str, Any] | str) -> int:
    """Tokens of one content block (or plain string), framing included, cache_control excluded."""
    if isinstance(block, str):
        return BLOCK_FRAMING + count_text(block)
    kind = block.get("type")
    n = BLOCK_FRAMING
    if kind == "text":
        n += count_text(str(block.get("text", "")))
    elif kind == "thinking":
        n += count_text(str(block.get("thinking", "")))
    elif kind == "redacted_thinking":
        n += math.ceil(len(str(block.get("data", ""))) / 16)
    elif kind == "image":
        n += _image_block_tokens(block)
    elif kind in ("tool_use", "server_tool_use"):
        n += count_text(str(block.get("name", ""))) + count_text(canonical(block.get("input", {})))
    elif kind == "tool_result":
        n += _content_tokens(block.get("content", ""))
    elif kind == "document":
        source = block.get("source")
        if isinstance(source, Mapping):
            if source.get("type") == "text":
                n += count_text(str(source.get("data", "")))
            elif source.get("type") == "content":
                n += _content_tokens(source.get("content", []))
            else:
                n += pdf_tokens(block)
    else:
        rest = {k: v for k, v in block.items() if k not in ("cache_control", "type")}
        n += count_text(canonical(rest))
    return n


def pdf_tokens(block: Mapping[str, Any]) -> int:
    """A PDF: its extracted text's tokens plus one page image per page (the service sends both);
    a URL or file source, or bytes pypdf cannot read, costs the image fallback."""
    raw = pdf_bytes(block)
    pages = pdf_pages(raw) if raw is not None else None
    if not pages:
        return IMAGE_FALLBACK_TOKENS
    # A page rendered at 150 dpi, then the documented image resize.
    dpi = 150 / 72
    return sum(count_text(p.text) + image_tokens(int(p.width * dpi), int(p.height * dpi)) for p in pages)


def tool_tokens(tool: Mapping[str, Any]) -> int:
    """Tokens of one tool definition."""
    rest = {k: v for k, v in tool.items() if k != "cache_control"}
    return TOOL_FRAMING + count_text(canonical(rest))


def sum_tokens(values: Iterable[int]) -> int:
    return sum(values)
