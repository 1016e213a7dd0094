"""The seam between the chat core and whatever displays a reply.

The core knows only this protocol; the notebook layer registers a factory for live widgets or plain
text. Nothing here imports IPython. The store listens here too (see the end), as llm's ``log_to_db``
hands off to a store the model never imports. Nothing of claudekit either: ``Any`` stands for its types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "ApprovalPresenter",
    "CellInserter",
    "Renderer",
    "RendererFactory",
    "chat_listeners",
    "get_approval_presenter",
    "get_cell_inserter",
    "get_renderer_factory",
    "set_approval_presenter",
    "set_cell_inserter",
    "set_renderer_factory",
    "store_hooks",
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


# The store's side, filled by claudekit.store on import (the core and usage never import the store):
# chat listeners get ("attach", chat) at a new conversation and ("commit", chat) after each turn; usage
# listeners each usage record of the session; "resume" serves Chat.resume(cls, name_or_id, overrides)
# and "query_calls" usage.history() (keyword filters -> columns of the stored calls).
chat_listeners: list[Callable[[str, Any], None]] = []
usage_listeners: list[Callable[[Any], None]] = []
store_hooks: dict[str, Callable[..., Any]] = {}
