"""The seam between the chat core and whatever displays a reply.

The core knows only this protocol; the notebook layer registers a factory for live widgets or plain
text. Nothing here imports IPython.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._base._events import Event
    from ._runner._reply import Reply
    from ._tooling._approval import PendingCall

__all__ = [
    "ApprovalPresenter",
    "CellInserter",
    "Renderer",
    "RendererFactory",
    "get_approval_presenter",
    "get_cell_inserter",
    "get_renderer_factory",
    "set_approval_presenter",
    "set_cell_inserter",
    "set_renderer_factory",
]


class Renderer(Protocol):
    def start(self, info: dict[str, Any]) -> None: ...

    def event(self, event: Event) -> None: ...

    def finish(self, reply: Reply, error: BaseException | None) -> None: ...


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
ApprovalPresenter = Callable[["tuple[PendingCall, ...]"], None]
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
