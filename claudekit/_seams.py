"""The seams: where the layers above plug into the core, which imports none of them.

The notebook layer registers a renderer factory (live widgets or plain text), its approval card and its
cell inserter; the store listens to each chat's lifecycle and to the session's usage records, and serves
``Chat.resume`` and ``usage.history()`` (as simonw/llm's ``Response.log_to_db`` hands off to a log store
the model layer never imports). This module imports nothing of claudekit: it is the lowest layer, so
its types are ``Any`` where a claudekit class would be. Nothing here imports IPython.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "ApprovalPresenter",
    "CellInserter",
    "ChatListener",
    "Renderer",
    "RendererFactory",
    "UsageListener",
    "add_chat_listener",
    "add_usage_listener",
    "chat_listeners",
    "get_approval_presenter",
    "get_call_reader",
    "get_cell_inserter",
    "get_renderer_factory",
    "get_resumer",
    "set_approval_presenter",
    "set_call_reader",
    "set_cell_inserter",
    "set_renderer_factory",
    "set_resumer",
    "usage_listeners",
]


class Renderer(Protocol):
    def start(self, info: dict[str, Any]) -> None: ...

    def event(self, event: Any) -> None: ...  # a claudekit.Event

    def finish(self, reply: Any, error: BaseException | None) -> None: ...  # a claudekit.Reply


# Called once per reply with the explicit render setting (None = follow the configuration).
RendererFactory = Callable[[Any], "Renderer | None"]
_factory: RendererFactory | None = None


def set_renderer_factory(factory: RendererFactory | None) -> None:
    """Install the factory used for replies created with ``render=None`` (the default)."""
    global _factory
    _factory = factory


def get_renderer_factory() -> RendererFactory | None:
    return _factory


# Shows tool calls that wait for a person's decision (the notebook's approval card) when no renderer of
# the reply claimed them; it claims what it shows (PendingCall.claim) and leaves the rest to the policy.
ApprovalPresenter = Callable[[tuple[Any, ...]], None]  # the PendingCalls
_presenter: ApprovalPresenter | None = None


def set_approval_presenter(presenter: ApprovalPresenter | None) -> None:
    """Install what shows unclaimed approval requests (the notebook layer registers its card)."""
    global _presenter
    _presenter = presenter


def get_approval_presenter() -> ApprovalPresenter | None:
    return _presenter


# Puts the code of an answer's text into a new notebook cell (``Reply.to_cell``): called with the text
# and which code block (None = the default one); the notebook layer registers IPython's set_next_input.
CellInserter = Callable[[str, "int | None"], None]
_inserter: CellInserter | None = None


def set_cell_inserter(inserter: CellInserter | None) -> None:
    """Install what ``Reply.to_cell`` calls (the notebook layer registers its own)."""
    global _inserter
    _inserter = inserter


def get_cell_inserter() -> CellInserter | None:
    return _inserter


# A chat's lifecycle: called with ("attach", chat) when it starts a conversation and ("commit", chat)
# after each turn (the store keeps it). A listener's failure is said once by the chat, never raised.
ChatListener = Callable[[str, Any], None]
_chat_listeners: list[ChatListener] = []


def add_chat_listener(listener: ChatListener) -> None:
    if listener not in _chat_listeners:
        _chat_listeners.append(listener)


def chat_listeners() -> tuple[ChatListener, ...]:
    return tuple(_chat_listeners)


# Every usage record of the session (a claudekit.usage.UsageRecord), after the session log has it.
UsageListener = Callable[[Any], None]
_usage_listeners: list[UsageListener] = []


def add_usage_listener(listener: UsageListener) -> None:
    if listener not in _usage_listeners:
        _usage_listeners.append(listener)


def usage_listeners() -> tuple[UsageListener, ...]:
    return tuple(_usage_listeners)


# ``Chat.resume``: called with (the Chat class, name or id, keyword overrides); the store registers it.
_resumer: Callable[[Any, str, dict[str, Any]], Any] | None = None


def set_resumer(resumer: Callable[[Any, str, dict[str, Any]], Any] | None) -> None:
    global _resumer
    _resumer = resumer


def get_resumer() -> Callable[[Any, str, dict[str, Any]], Any] | None:
    return _resumer


# ``usage.history()``'s source: the store's ``query_calls`` (keyword filters -> columns of stored calls).
_call_reader: Callable[..., Any] | None = None


def set_call_reader(reader: Callable[..., Any] | None) -> None:
    global _call_reader
    _call_reader = reader


def get_call_reader() -> Callable[..., Any] | None:
    return _call_reader
