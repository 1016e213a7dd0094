"""Rules about the conversation itself: merging turns, content blocks, images, tool pairing, thinking.

Every message here is the service's own where it is known (see ``docs/offline.md``); paths count
merged turns.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._errors import ApiError

if TYPE_CHECKING:
    from ._context import Context

__all__ = ["blocks_of", "check_messages", "image_type", "merge_turns"]

THINKING = "https://platform.claude.com/docs/en/build-with-claude/extended-thinking"
_IMAGE_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def blocks_of(content: Any) -> list[Any]:
    """A message's content as a list of blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return content
    return []


def merge_turns(messages: Any) -> Any:
    """Consecutive ``user`` (or ``assistant``) messages combined into one turn, as the service does.

    Anything that is not a list of well-formed messages is returned unchanged for the shape check.
    """
    if not isinstance(messages, list):
        return messages
    merged: list[Any] = []
    for msg in messages:
        prev = merged[-1] if merged else None
        if (
            isinstance(msg, Mapping)
            and isinstance(prev, Mapping)
            and msg.get("role") in ("user", "assistant")
            and msg.get("role") == prev.get("role")
            and isinstance(msg.get("content"), (str, list))
            and isinstance(prev.get("content"), (str, list))
        ):
            merged[-1] = {**prev, "content": [*blocks_of(prev["content"]), *blocks_of(msg["content"])]}
        else:
            merged.append(msg)
    return merged


def image_type(raw: bytes) -> str | None:
    """The image media type the bytes' magic says (PNG, JPEG, GIF, WebP), or None."""
    for media, magics in _IMAGE_MAGIC.items():
        if any(raw.startswith(m) for m in magics) and (media != "image/webp" or raw[8:12] == b"WEBP"):
            return media
    return None


def _check_image(block: Mapping[str, Any], path: str) -> None:
    """``path`` ends at the image block (``….image``); base64 data must decode to its media type."""
    source = block["source"]
    if source.get("type") != "base64":
        return
    media = str(source["media_type"])
    try:
        raw = base64.b64decode(str(source["data"]), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{path}.source.base64.data: The image data is not valid base64") from None
    if not raw:
        raise _bad(f"{path}.source.base64.data: The image data is empty")
    actual = image_type(raw)
    if actual is None:
        raise _bad(f"{path}.source.base64.data: Image does not match the provided media type {media}")
    if actual != media:
        raise _bad(
            f"{path}.source.base64: The image was specified using the {media} media type, but the image "
            f"appears to be a {actual} image"
        )


def check_messages(body: Mapping[str, Any], messages: list[dict[str, Any]], ctx: Context) -> None:
    """Content, images, signatures, tool pairing and the thinking-first rule of every turn."""
    last = len(messages) - 1
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if content is None:
            continue  # a beta system message may carry only output_config
        final_assistant = i == last and msg["role"] == "assistant"
        if content in ("", []) and not final_assistant:
            raise _bad(
                f"messages.{i}: all messages must have non-empty content except for the optional final "
                "assistant message"
            )
        blocks = blocks_of(content)
        for j, blk in enumerate(blocks):
            final = "last" if final_assistant and j == len(blocks) - 1 else "yes" if final_assistant else ""
            _check_block(blk, f"messages.{i}.content.{j}", final, ctx, msg["role"])
    _check_tool_pairing(messages)
    _check_thinking_turn(body, messages)


def _check_block(blk: Mapping[str, Any], path: str, final: str, ctx: Context, role: str) -> None:
    """One content block; ``final`` is "yes" inside a final assistant turn, "last" for its last block."""
    kind = blk["type"]
    if kind == "text":
        text = blk["text"]
        if not text and not final:
            raise _bad("messages: text content blocks must be non-empty")
        # User text only: recorded assistant turns with a " " text block are answered 200.
        if text and not text.strip() and role == "user":
            raise _bad("messages: text content blocks must contain non-whitespace text")
        if final == "last" and text != text.rstrip():
            raise _bad("messages: final assistant content cannot end with trailing whitespace")
    elif kind == "image":
        _check_image(blk, f"{path}.image")
    elif kind == "thinking":
        sig = blk["signature"]
        if not sig:
            raise _bad(f"{path}.thinking.signature: Field required")
        # Only this backend's own signatures can be checked; another's (the service's, in a recorded
        # conversation) is unverifiable, not invalid.
        if ctx.signer.issued(sig) and not ctx.signer.verify(blk["thinking"], sig):
            raise _bad(f"{path}: Invalid `signature` in `thinking` block")
    elif kind == "tool_result" and isinstance(blk.get("content"), list):
        for k, sub in enumerate(blk["content"]):
            _check_result_source(sub, f"{path}.tool_result.content.{k}")
            if sub.get("type") == "image":
                _check_image(sub, f"{path}.tool_result.content.{k}.image")


# The sources a tool_result's image / document may have: a Files API ``file`` source is refused there (a real
# 400 quoted in issue 24, although the SDK's types allow it).
_RESULT_SOURCES = {"image": "'base64', 'url'", "document": "'base64', 'content', 'text', 'url'"}


def _check_result_source(sub: Mapping[str, Any], path: str) -> None:
    kind = sub.get("type")
    source = sub.get("source")
    if kind in _RESULT_SOURCES and isinstance(source, Mapping) and source.get("type") == "file":
        raise _bad(
            f"{path}.{kind}.source: Input tag 'file' found using 'type' does not match any of the expected "
            f"tags: {_RESULT_SOURCES[str(kind)]}"
        )


def _check_tool_pairing(messages: list[dict[str, Any]]) -> None:
    for i, msg in enumerate(messages):
        blocks = blocks_of(msg.get("content"))
        if msg["role"] == "assistant":
            _check_assistant_tools(i, blocks, messages)
        elif msg["role"] == "user":
            _check_user_results(i, blocks, messages)


def _check_assistant_tools(i: int, blocks: list[Any], messages: list[dict[str, Any]]) -> None:
    # Unique within a turn: recorded traffic reuses an id in a later turn and is answered 200.
    ids: list[str] = []
    for j, b in enumerate(blocks):
        if b.get("type") == "tool_use":
            if b["id"] in ids:
                raise _bad(f"messages.{i}.content.{j}: tool_use ids must be unique")
            ids.append(b["id"])
    if not ids:
        return
    nxt = messages[i + 1] if i + 1 < len(messages) else None
    answered: set[str] = set()
    if nxt is not None and nxt["role"] == "user":
        results = blocks_of(nxt.get("content"))
        answered = {b.get("tool_use_id") for b in results if b.get("type") == "tool_result"}
    last_use = max(j for j, b in enumerate(blocks) if b.get("type") == "tool_use")
    text_after = any(b.get("type") == "text" for b in blocks[last_use + 1 :])
    missing = [t for t in ids if t not in answered]
    if missing or text_after:
        # Text after the last tool_use means the results cannot come "immediately after" it.
        raise _bad(
            f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
            f"{', '.join(missing or ids)}. Each `tool_use` block must have a corresponding `tool_result` "
            "block in the next message."
        )


def _check_user_results(i: int, blocks: list[Any], messages: list[dict[str, Any]]) -> None:
    prev = messages[i - 1] if i > 0 else None
    prev_ids: set[str] = set()
    if prev is not None and prev["role"] == "assistant":
        prev_ids = {b["id"] for b in blocks_of(prev.get("content")) if b.get("type") == "tool_use"}
    answered: set[str] = set()
    for j, blk in enumerate(blocks):
        if blk.get("type") != "tool_result":
            continue
        tid = blk["tool_use_id"]
        if tid not in prev_ids:
            raise _bad(
                f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {tid}. "
                "Each `tool_result` block must have a corresponding `tool_use` block in the previous "
                "message."
            )
        if tid in answered:
            raise _bad(
                f"messages.{i}.content.{j}: each tool_use must have a single result. Found multiple "
                f"`tool_result` blocks with id: {tid}"
            )
        answered.add(tid)


def _check_thinking_turn(body: Mapping[str, Any], messages: list[dict[str, Any]]) -> None:
    # Budgeted thinking only: with adaptive (interleaved) thinking the service lets a tool-using turn
    # start without a thinking block.
    thinking = body.get("thinking") or {}
    if thinking.get("type") != "enabled":
        return
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] != "assistant":
            continue
        blocks = blocks_of(messages[i].get("content"))
        if not any(b.get("type") == "tool_use" for b in blocks):
            return
        first = blocks[0].get("type") if blocks else None
        if first not in ("thinking", "redacted_thinking"):
            raise _bad(
                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                f"`{first}`. When `thinking` is enabled, a final `assistant` message must start with a "
                "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We "
                "recommend you include thinking blocks from previous turns. To avoid this requirement, "
                f"disable `thinking`. Please consult our documentation at {THINKING}"
            )
        return
