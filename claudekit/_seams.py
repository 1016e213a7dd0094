"""The seam between the chat core and whatever displays a reply.

The core knows only this protocol; the notebook layer registers a factory for live widgets or plain
text. Nothing here imports IPython. The store listens here too (see the end), as llm's ``log_to_db``
hands off to a store the model never imports. Nothing of claudekit either: ``Any`` stands for its types.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

__all__ = [
    "ApprovalPresenter",
    "CellInserter",
    "LoopWaker",
    "Renderer",
    "RendererFactory",
    "View",
    "chat_listeners",
    "get_approval_presenter",
    "get_cell_inserter",
    "get_loop_waker",
    "get_renderer_factory",
    "set_approval_presenter",
    "set_cell_inserter",
    "set_loop_waker",
    "set_renderer_factory",
    "showing",
    "store_hooks",
    "usage_listeners",
]


class Renderer(Protocol):
    def start(self, info: dict[str, Any]) -> None: ...  # info["reply"]: the Reply it shows

    def event(self, event: Any) -> None: ...  # a claudekit.Event

    def finish(self, reply: Any, error: BaseException | None) -> None: ...  # a claudekit.Reply


class View:
    """What makes a renderer a context manager, as rich's ``Live`` is: leaving ``with renderer:``
    finishes it, once, with the error that ended the block (None when it ended well or was
    interrupted), so no path between start and end can skip the finish. ``start`` keeps the reply.
    """

    reply: Any = None
    finished = False

    def __enter__(self) -> View:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        if not self.finished:
            self.finished = True
            self.finish(self.reply, error)

    def finish(self, reply: Any, error: BaseException | None) -> None:  # the renderer's own
        raise NotImplementedError


def showing(renderer: Renderer, reply: Any) -> AbstractContextManager[Any]:
    """The context that finishes ``renderer`` on exit: the renderer itself when it is a :class:`View`;
    one around its ``finish`` for a renderer that is only the protocol's three methods."""
    if isinstance(renderer, AbstractContextManager):
        return renderer
    return _finishing(renderer, reply)


@contextlib.contextmanager
def _finishing(renderer: Renderer, reply: Any) -> Iterator[Renderer]:
    try:
        yield renderer
    except BaseException as error:
        renderer.finish(reply, error)
        raise
    renderer.finish(reply, None)


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


# Held by a turn on the main thread while it runs: called at its start, it returns what to call at its
# end. The notebook layer registers one that keeps the loop waking so a kernel interrupt lands at once.
LoopWaker = Callable[[], Callable[[], None]]
_waker: LoopWaker | None = None


def set_loop_waker(waker: LoopWaker | None) -> None:
    """Install what keeps the event loop awake while a turn runs (the notebook layer registers it)."""
    global _waker
    _waker = waker


def get_loop_waker() -> LoopWaker | None:
    return _waker


# The store's side, filled by claudekit.store on import (the core and usage never import the store):
# chat listeners get ("attach", chat) at a new conversation and ("commit", chat) after each turn; usage
# listeners each usage record of the session; "resume" serves Chat.resume(cls, name_or_id, overrides)
# and "query_calls" usage.history() (keyword filters -> columns of the stored calls); "upload_recall",
# "upload_remember", "upload_forget" and "upload_list" keep Files API uploads (claudekit.upload).
chat_listeners: list[Callable[[str, Any], None]] = []
usage_listeners: list[Callable[[Any], None]] = []
store_hooks: dict[str, Callable[..., Any]] = {}
