"""What makes a list of messages one the service accepts: the rules, in one place.

:class:`~claudekit.History` applies them as turns are added and reports what breaks them
(``History.problems()``); the turn runner uses the same functions to answer tool calls nobody answered.
Rules (Messages API reference and its error messages): no text block is empty or whitespace-only; every
client ``tool_use`` is answered by exactly one ``tool_result`` at the start of the next user turn;
a ``tool_result`` answers a ``tool_use`` of the turn right before it; thinking blocks keep their signature.
Consecutive user or assistant turns are legal (the service combines them) and ``role: "system"``
messages may appear among the others (anthropic >= 2.15).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = [
    "ROLES",
    "TOOL_USE_TYPES",
    "block_problem",
    "clean",
    "is_blank_text",
    "leading_results",
    "problems",
    "unanswered_tool_uses",
]

ROLES = ("user", "assistant", "system")
TOOL_USE_TYPES = ("tool_use", "server_tool_use", "mcp_tool_use")
# Assistant content the Messages API accepts back. A response block of any other type (one newer than
# this version) stays on the reply but is not replayed: sending it back would fail every later request.
REPLAYABLE = frozenset(
    {
        "text",
        "thinking",
        "redacted_thinking",
        "tool_use",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
        "compaction",
        "fallback",
        "advisor_tool_result",
    }
)


def is_blank_text(block: Any) -> bool:
    """A text block the service refuses: empty or whitespace-only ("must contain non-whitespace text")."""
    return (
        isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
        and not block["text"].strip()
    )


def clean(blocks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blocks without blank text blocks."""
    return [b for b in blocks if not is_blank_text(b)]


def leading_results(blocks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for b in blocks:
        if b.get("type") != "tool_result":
            return
        yield b


def unanswered_tool_uses(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Client ``tool_use`` blocks of the last assistant turn that no ``tool_result`` answers yet."""
    last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "assistant"), None)
    if last is None:
        return []
    after = messages[last + 1 :]
    if any(m["role"] == "assistant" for m in after):
        return []
    answered = {
        b.get("tool_use_id") for m in after if m["role"] == "user" for b in leading_results(m["content"])
    }
    return [b for b in messages[last]["content"] if b.get("type") == "tool_use" and b["id"] not in answered]


def block_problem(b: Any, role: str) -> str | None:
    """Why the API would reject this content block's shape (None when it would not)."""
    if not isinstance(b, dict):
        return "is not a content block"
    t = b.get("type")
    if not isinstance(t, str) or not t:
        return "has no type"
    if role == "assistant" and t not in REPLAYABLE:
        return f"has type {t!r}, which cannot be sent back to the API"
    if role == "system" and t != "text":
        return f"has type {t!r}; a system message holds text blocks"
    if t == "text":
        if not isinstance(b.get("text"), str):
            return "is a text block without text"
        if not b["text"].strip():
            return "is a text block with only whitespace (the API refuses it)"
    if t == "thinking" and not (isinstance(b.get("thinking"), str) and isinstance(b.get("signature"), str)):
        return "is a thinking block without its text or signature"
    if t in TOOL_USE_TYPES and not (
        isinstance(b.get("id"), str) and isinstance(b.get("name"), str) and isinstance(b.get("input"), dict)
    ):
        return f"is a {t} block without an id, a name and an object input"
    if t == "tool_result" and not isinstance(b.get("tool_use_id"), str):
        return "is a tool_result without a tool_use_id"
    return None


def problems(messages: list[dict[str, Any]]) -> list[str]:
    """What the API would reject in these messages (empty when valid)."""
    out: list[str] = []
    shapes_ok = True
    for i, m in enumerate(messages):
        if m.get("role") not in ROLES:
            out.append(f"message {i} has role {m.get('role')!r}")
            shapes_ok = False
            continue
        if not m["content"]:
            out.append(f"message {i} is empty")
        for j, b in enumerate(m["content"]):
            why = block_problem(b, m["role"])
            if why:
                out.append(f"block {j} of message {i} {why}")
                shapes_ok = False
    if shapes_ok:  # the pairing checks need well-formed blocks
        out += _pairing_problems(messages)
    return out


def _pairing_problems(messages: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            ids = [b["id"] for b in m["content"] if b.get("type") == "tool_use"]
            for b in m["content"]:
                if b.get("type") == "thinking" and not b.get("signature"):
                    out.append(f"thinking block in message {i} has no signature")
            if not ids or i + 1 >= len(messages):
                continue
            nxt = messages[i + 1]
            answered = (
                [b.get("tool_use_id") for b in leading_results(nxt["content"])]
                if nxt["role"] == "user"
                else []
            )
            missing = [x for x in ids if x not in answered]
            if missing:
                out.append(f"tool_use {missing} in message {i} has no tool_result in the next turn")
        elif m["role"] == "user":
            prev = messages[i - 1] if i else None
            prev_ids = (
                {b["id"] for b in prev["content"] if b.get("type") == "tool_use"}
                if prev is not None and prev["role"] == "assistant"
                else set()
            )
            seen: set[str] = set()
            for b in m["content"]:
                if b.get("type") != "tool_result":
                    continue
                rid = b["tool_use_id"]
                if rid in seen:
                    out.append(f"tool_use {rid} has more than one tool_result in message {i}")
                elif rid not in prev_ids:
                    out.append(f"tool_result {rid} in message {i} answers no tool_use")
                seen.add(rid)
    return out


def partial_content(content: list[Any], open_blocks: set[int]) -> list[Any]:
    """What of an assistant message cut off by an error or an interrupt can be sent back next turn.

    Text that arrived is kept; thinking only when it finished and is signed; tool calls never (they
    never ran and would need results); server tool calls only with their results; blocks still
    streaming are dropped. Thinking may not end a turn that later turns follow, so it is trimmed
    from the end. ``content`` holds the SDK's blocks (branch on ``.type``: the SDK builds unknown
    blocks as whichever model fits).
    """
    result_ids = {getattr(b, "tool_use_id", None) for b in content}
    kept: list[Any] = []
    for i, block in enumerate(content):
        t = block.type
        if t == "text":
            if block.text.strip():
                kept.append(block)
        elif t == "thinking":
            if i not in open_blocks and block.signature:
                kept.append(block)
        elif t == "redacted_thinking":
            kept.append(block)
        elif t in ("tool_use", "mcp_tool_use"):
            continue
        elif t == "server_tool_use":
            if block.id in result_ids:
                kept.append(block)
        elif i not in open_blocks and t in REPLAYABLE:
            kept.append(block)
    while kept and kept[-1].type in ("thinking", "redacted_thinking"):
        kept.pop()
    return kept
