"""A conversation as Messages API params, kept valid at every step.

The invariants the API enforces (see :mod:`._hygiene`, which states them once) are kept here so
that every request built from a history is one the service accepts: same-role turns merge, every
``tool_use`` is answered by exactly one ``tool_result`` at the start of the next user turn, thinking
blocks keep their signatures, no text block is empty or whitespace-only. ``role: "system"`` messages
are kept where they are.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .._base._errors import ConfigError
from .._base._secrets import scrub
from . import _hygiene
from ._content import check_unicode

__all__ = ["History", "block_to_param"]

_FORMAT_VERSION = 1
_TOOL_USE_TYPES = _hygiene.TOOL_USE_TYPES


def replayable(block_type: str | None) -> bool:
    """Whether an assistant block of this type can be sent back to the API."""
    return block_type in _hygiene.REPLAYABLE


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
    elif data.get("type") == "text":
        # A citation's file_id (null, or the Files API document's id) is not a field of the param types
        # (CitationPageLocationParam & co.): the document it cites is in the request already.
        data["citations"] = [{k: v for k, v in c.items() if k != "file_id"} for c in data["citations"]]
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
        if role not in _hygiene.ROLES:
            raise ConfigError(f"unknown role {role!r}", hint="use 'user', 'assistant' or 'system'")
        blocks = _hygiene.clean(blocks)
        if not blocks:
            return
        last = self.messages[-1] if self.messages else None
        if last is None or last["role"] != role or role == "system":
            self.messages.append({"role": role, "content": blocks})
        elif role == "user":
            # Tool results must lead the user turn that answers a tool_use.
            content = last["content"]
            results = [b for b in blocks if b.get("type") == "tool_result"]
            others = [b for b in blocks if b.get("type") != "tool_result"]
            n_lead = sum(1 for _ in _hygiene.leading_results(content))
            content[n_lead:n_lead] = results
            content.extend(others)
        else:
            last["content"].extend(blocks)

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
        """Client tool_use blocks of the last assistant turn that no tool_result answers yet."""
        return _hygiene.unanswered_tool_uses(self.messages)

    @property
    def turns(self) -> int:
        """The user's prompts so far (user turns that hold more than tool results)."""
        return sum(
            1
            for m in self.messages
            if m["role"] == "user" and any(b.get("type") != "tool_result" for b in m["content"])
        )

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
        return _hygiene.problems(self.messages)

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
        # Redacted as the store redacts (see claudekit._base._secrets).
        Path(path).write_text(scrub(self.to_json()), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> History:
        return cls.from_json(Path(path).read_bytes())


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
