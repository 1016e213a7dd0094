"""User content: prompts, images and tool results turned into Messages API content blocks."""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Union, runtime_checkable

from .._base._errors import ConfigError

__all__ = ["Image", "Prompt", "check_unicode", "to_blocks"]

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_MEDIA_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


def sniff_image(data: bytes) -> str | None:
    """The media type from the file's magic bytes, or None if it is not an image the API takes."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True)
class Image:
    """An image for a prompt: from bytes, a file, base64 text or a URL. Checked before anything is sent.

    ``Image("chart.png")`` / ``Image(Path(...))`` read a file, ``Image("https://…")`` refers to a URL,
    ``Image(data)`` takes bytes; the class methods say which one explicitly.
    """

    source: dict[str, Any]

    def __post_init__(self) -> None:
        src: Any = self.source
        if isinstance(src, dict):
            return
        if isinstance(src, (bytes, bytearray)):
            made = Image.from_bytes(bytes(src))
        elif isinstance(src, str) and src.startswith(("https://", "http://")):
            made = Image.from_url(src)
        elif isinstance(src, (str, os.PathLike)):
            made = Image.from_path(src)
        else:
            raise ConfigError(
                f"cannot make an image from a {type(src).__name__}",
                hint="pass a file path, a URL, bytes, or use Image.from_base64",
            )
        object.__setattr__(self, "source", made.source)

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str | None = None) -> Image:
        sniffed = sniff_image(data)
        if sniffed is None:
            raise ConfigError(
                "these bytes are not a PNG, JPEG, GIF or WebP image",
                hint="pass an image file, or convert it to one of those formats",
            )
        if media_type is not None and media_type != sniffed:
            raise ConfigError(
                f"the image data is {sniffed}, not {media_type}", hint="drop media_type or pass the right one"
            )
        return cls({"type": "base64", "media_type": sniffed, "data": base64.b64encode(data).decode("ascii")})

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Image:
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read image {p}: {exc.strerror}", hint="check the path") from exc
        guessed = mimetypes.guess_type(p.name)[0]
        if sniff_image(data) is None:
            named = f" (its name says {guessed})" if guessed else ""
            raise ConfigError(
                f"{p} is not an image the API takes{named}: it takes PNG, JPEG, GIF and WebP",
                hint="convert the file to one of those formats",
            )
        return cls.from_bytes(data)

    @classmethod
    def from_base64(cls, data: str, media_type: str | None = None) -> Image:
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(
                "the image is not valid base64", hint="pass raw bytes with Image.from_bytes"
            ) from exc
        return cls.from_bytes(raw, media_type)

    @classmethod
    def from_url(cls, url: str) -> Image:
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"not an image URL: {url[:80]!r}", hint="use an http(s) URL or Image.from_path")
        return cls({"type": "url", "url": url})

    def to_block(self) -> dict[str, Any]:
        return {"type": "image", "source": dict(self.source)}

    def _repr_png_(self) -> bytes | None:
        if self.source.get("media_type") == "image/png":
            return base64.b64decode(self.source["data"])
        return None


@runtime_checkable
class Blockish(Protocol):
    """Anything that makes its own content block (claudekit.Document; _documents imports this module)."""

    def to_block(self) -> dict[str, Any]: ...


Prompt = Union[str, Image, Blockish, dict[str, Any], list[Union[str, Image, Blockish, dict[str, Any]]]]  # noqa: UP007 - runtime alias on 3.10


def to_blocks(prompt: Prompt) -> list[dict[str, Any]]:
    """Normalise a prompt to a list of content-block dicts."""
    items = prompt if isinstance(prompt, list) else [prompt]
    blocks: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            if not item.strip():
                continue
            check_unicode(item, "the prompt")
            blocks.append({"type": "text", "text": item})
        elif isinstance(item, (Image, Blockish)):
            blocks.append(item.to_block())
        elif isinstance(item, bytes):
            blocks.append(Image.from_bytes(item).to_block())
        elif isinstance(item, dict) and isinstance(item.get("type"), str):
            check_unicode(item, "the prompt")
            blocks.append(dict(item))
        else:
            raise ConfigError(
                f"cannot send a {type(item).__name__} as part of a prompt",
                hint="pass text, claudekit.Image, claudekit.Document, or a content-block dict",
            )
    if not blocks:
        raise ConfigError("the prompt is empty", hint="type something to ask")
    return blocks


def check_unicode(value: Any, where: str) -> None:
    """Raise ConfigError if any text in ``value`` (str, or dicts/lists of them) cannot be sent as UTF-8.

    Lone surrogates (what ``surrogateescape`` decoding leaves in a str) would otherwise fail deep in
    the HTTP layer, after the prompt had been added to the conversation.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ConfigError(
                f"{where} has text that is not valid Unicode (a lone surrogate at position {exc.start})",
                hint="decode bytes with the right encoding, e.g. data.decode('utf-8', errors='replace')",
            ) from None
    elif isinstance(value, dict):
        for k, v in value.items():
            check_unicode(k, where)
            check_unicode(v, where)
    elif isinstance(value, (list, tuple)):
        for v in value:
            check_unicode(v, where)
