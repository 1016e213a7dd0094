"""A conversation as Messages API params, kept valid at every step.

The invariants the API enforces are kept here so that every request built from a history is one the
service accepts: the first turn is the user's, roles alternate (same-role turns merge), every
``tool_use`` is answered by a ``tool_result`` in the next user turn (results first, in call order),
thinking blocks keep their signatures, and no text block is empty.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ._content import check_unicode
from ._errors import ConfigError

__all__ = ["History", "block_to_param"]

_FORMAT_VERSION = 1
_TOOL_USE_TYPES = ("tool_use", "server_tool_use", "mcp_tool_use")
# Assistant content the Messages API accepts back. A response block of any other type (one newer than
# this version) stays on the reply but is not replayed: sending it back would fail every later request.
_REPLAYABLE = frozenset(
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


def replayable(block_type: str | None) -> bool:
    """Whether an assistant block of this type can be sent back to the API."""
    return block_type in _REPLAYABLE


def block_to_param(block: Any) -> dict[str, Any]:
    """A response content block as the param to send it back: exactly the fields the service sent."""
    # warnings=False: a malformed stream can leave a field of the wrong type; that is reported as a
    # ClaudekitError elsewhere, not as a pydantic serializer warning in the user's cell.
    data: dict[str, Any] = (
        block.to_dict(mode="json", warnings=False) if hasattr(block, "to_dict") else dict(block)
    )
    data.pop("parsed_output", None)
    if data.get("type") == "text" and data.get("citations") is None:
        data.pop("citations", None)
    return {k: v for k, v in data.items() if v is not None or k in ("content",)}


class History:
    """The system prompt and the list of messages, JSON-serialisable."""

    def __init__(
        self, messages: Iterable[dict[str, Any]] = (), system: str | list[dict[str, Any]] | None = None
    ):
        self.system = system
        self.messages: list[dict[str, Any]] = []
        for m in messages:
            self._append(m["role"], list(_as_blocks(m["content"])))

    # -- adding turns --------------------------------------------------------------------------------

    def _append(self, role: str, blocks: list[dict[str, Any]]) -> None:
        if role not in ("user", "assistant"):
            raise ConfigError(f"unknown role {role!r}", hint="use 'user' or 'assistant'")
        blocks = [b for b in blocks if not (b.get("type") == "text" and not b.get("text"))]
        if not blocks:
            return
        if not self.messages and role != "user":
            raise ConfigError(
                "a conversation must start with a user turn", hint="add the user's message first"
            )
        if self.messages and self.messages[-1]["role"] == role:
            last = self.messages[-1]["content"]
            if role == "user":
                # Tool results must lead the user turn that answers a tool_use.
                results = [b for b in blocks if b.get("type") == "tool_result"]
                others = [b for b in blocks if b.get("type") != "tool_result"]
                n_lead = sum(1 for _ in _leading_results(last))
                last[n_lead:n_lead] = results
                last.extend(others)
            else:
                last.extend(blocks)
        else:
            self.messages.append({"role": role, "content": blocks})

    def add_user(self, blocks: list[dict[str, Any]]) -> None:
        self._append("user", [copy.deepcopy(b) for b in blocks])

    def add_assistant(self, blocks: Iterable[Any]) -> None:
        params = [block_to_param(b) for b in blocks]
        for p in params:
            if p.get("type") in _TOOL_USE_TYPES and not isinstance(p.get("input"), dict):
                p["input"] = {}  # malformed arguments (the call carries the error); the API needs an object
        self._append("assistant", [p for p in params if replayable(p.get("type"))])

    def add_tool_results(self, results: list[dict[str, Any]]) -> None:
        self._append("user", results)

    def pending_tool_uses(self) -> list[dict[str, Any]]:
        """Client tool_use blocks of the last assistant turn that have no result yet."""
        if not self.messages or self.messages[-1]["role"] != "assistant":
            return []
        return [b for b in self.messages[-1]["content"] if b.get("type") == "tool_use"]

    def truncate(self, n_messages: int) -> None:
        """Drop everything after the first ``n_messages`` (used to undo a turn that never got an answer)."""
        del self.messages[n_messages:]

    def snapshot_len(self) -> tuple[int, int]:
        """(number of messages, blocks in the last one): enough to undo a pending user turn."""
        return len(self.messages), len(self.messages[-1]["content"]) if self.messages else 0

    def restore(self, mark: tuple[int, int]) -> None:
        n, k = mark
        del self.messages[n:]
        if n and len(self.messages) == n:
            del self.messages[-1]["content"][k:]

    # -- reading ---------------------------------------------------------------------------------------

    def to_params(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.messages)

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.messages)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.messages[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and (self.system, self.messages) == (other.system, other.messages)

    def __repr__(self) -> str:
        turns = ", ".join(f"{m['role']}[{len(m['content'])}]" for m in self.messages)
        return f"History({turns})"

    def problems(self) -> list[str]:
        """What the API would reject in this history (empty when valid)."""
        out: list[str] = []
        for i, m in enumerate(self.messages):
            if i == 0 and m["role"] != "user":
                out.append("first message is not from the user")
            if i and m["role"] == self.messages[i - 1]["role"]:
                out.append(f"messages {i - 1} and {i} have the same role")
            if not m["content"]:
                out.append(f"message {i} is empty")
            malformed = [(j, _block_problem(b, m["role"])) for j, b in enumerate(m["content"])]
            out += [f"block {j} of message {i} {why}" for j, why in malformed if why]
            prev = self.messages[i - 1] if i else None
            if any(why for _, why in malformed) or (
                prev is not None and any(_block_problem(b, prev["role"]) for b in prev["content"])
            ):
                continue  # the pairing checks below need well-formed blocks
            prev_ids = set()
            if i and self.messages[i - 1]["role"] == "assistant":
                prev_ids = {b["id"] for b in self.messages[i - 1]["content"] if b.get("type") == "tool_use"}
            if m["role"] == "assistant":
                ids = [b["id"] for b in m["content"] if b.get("type") == "tool_use"]
                if ids and i + 1 < len(self.messages):
                    answered = {
                        b.get("tool_use_id")
                        for b in _leading_results(self.messages[i + 1]["content"])
                        if isinstance(b.get("tool_use_id"), str)
                    }
                    missing = [x for x in ids if x not in answered]
                    if missing:
                        out.append(f"tool_use {missing} in message {i} has no tool_result in the next turn")
                for b in m["content"]:
                    if b.get("type") == "thinking" and not b.get("signature"):
                        out.append(f"thinking block in message {i} has no signature")
            else:
                for b in m["content"]:
                    if b.get("type") == "tool_result" and b.get("tool_use_id") not in prev_ids:
                        out.append(f"tool_result {b.get('tool_use_id')} in message {i} answers no tool_use")
        return out

    # -- persistence -------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"version": _FORMAT_VERSION, "system": self.system, "messages": self.to_params()}

    @classmethod
    def from_dict(cls, data: Any) -> History:
        if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
            raise ConfigError("not a saved claudekit conversation", hint="load a file written by Chat.save()")
        system = data.get("system")
        if system is not None and not (
            isinstance(system, str) or (isinstance(system, list) and all(isinstance(b, dict) for b in system))
        ):
            raise ConfigError(
                f"the saved conversation is corrupted (its system prompt is a {type(system).__name__})",
                hint="re-save it from a working chat",
            )
        check_unicode(data, "the saved conversation")
        try:
            hist = cls(data["messages"], system=data.get("system"))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"the saved conversation is corrupted ({type(exc).__name__}: {exc})",
                hint="re-save it from a working chat",
            ) from exc
        problems = hist.problems()
        if problems:
            raise ConfigError(
                f"the saved conversation is invalid: {problems[0]}", hint="re-save it from a working chat"
            )
        return hist

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> History:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"the saved conversation is not valid JSON ({exc})", hint="check the file"
            ) from exc
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> History:
        return cls.from_json(Path(path).read_bytes())


def _block_problem(b: Any, role: str) -> str | None:
    """Why the API would reject this content block's shape (None when it would not)."""
    if not isinstance(b, dict):
        return "is not a content block"
    t = b.get("type")
    if not isinstance(t, str) or not t:
        return "has no type"
    if role == "assistant" and not replayable(t):
        return f"has type {t!r}, which cannot be sent back to the API"
    if t == "text" and not isinstance(b.get("text"), str):
        return "is a text block without text"
    if t == "thinking" and not (isinstance(b.get("thinking"), str) and isinstance(b.get("signature"), str)):
        return "is a thinking block without its text or signature"
    if t in _TOOL_USE_TYPES and not (
        isinstance(b.get("id"), str) and isinstance(b.get("name"), str) and isinstance(b.get("input"), dict)
    ):
        return f"is a {t} block without an id, a name and an object input"
    if t == "tool_result" and not isinstance(b.get("tool_use_id"), str):
        return "is a tool_result without a tool_use_id"
    return None


def _leading_results(blocks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for b in blocks:
        if b.get("type") != "tool_result":
            return
        yield b


def _as_blocks(content: Any) -> Iterator[dict[str, Any]]:
    if isinstance(content, str):
        yield {"type": "text", "text": content}
        return
    for b in content:
        if isinstance(b, str):
            yield {"type": "text", "text": b}
        elif isinstance(b, dict):
            yield copy.deepcopy(b)
        else:
            yield block_to_param(b)
