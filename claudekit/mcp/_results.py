"""An MCP ``CallToolResult`` as tool_result content blocks (text, images, embedded resources)."""

from __future__ import annotations

import base64
import json
from typing import Any

_IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}


def to_blocks(result: Any) -> list[dict[str, Any]]:
    """The content of an MCP tool result as Anthropic content blocks; never empty."""
    blocks = [b for item in (result.content or []) for b in _block(item)]
    structured = getattr(result, "structured_content", None)
    if not blocks and structured is not None:
        blocks.append({"type": "text", "text": json.dumps(structured, ensure_ascii=False, default=str)})
    if not blocks:
        blocks.append({"type": "text", "text": "(the MCP tool returned no content)"})
    return blocks


def _image(data: str, mime: str | None, what: str) -> dict[str, Any]:
    if mime in _IMAGE_TYPES:
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}
    return {"type": "text", "text": f"({what} of type {mime or 'unknown'} that Claude cannot read)"}


def _block(item: Any) -> list[dict[str, Any]]:
    kind = getattr(item, "type", None)
    if kind == "text":
        return [{"type": "text", "text": item.text}]
    if kind == "image":
        return [_image(item.data, item.mime_type, "an image")]
    if kind == "audio":
        return [{"type": "text", "text": f"(audio of type {item.mime_type} that Claude cannot hear)"}]
    if kind == "resource_link":
        return [{"type": "text", "text": f"[resource {item.name}: {item.uri}]"}]
    if kind == "resource":
        res = item.resource
        text = getattr(res, "text", None)
        if text is not None:
            return [{"type": "text", "text": f"[resource {res.uri}]\n{text}"}]
        blob = getattr(res, "blob", "") or ""
        if res.mime_type in _IMAGE_TYPES:
            return [{"type": "text", "text": f"[resource {res.uri}]"}, _image(blob, res.mime_type, "")]
        size = len(base64.b64decode(blob, validate=False)) if blob else 0
        what = res.mime_type or "data"
        return [{"type": "text", "text": f"[resource {res.uri}: {size:,} bytes of {what}]"}]
    return [{"type": "text", "text": f"(MCP content of type {kind!r} not shown)"}]
