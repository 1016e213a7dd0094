"""The seam between the chat core and whatever displays a reply.

The core knows only this protocol; the notebook layer registers a factory for live widgets or plain
text. Nothing here imports IPython.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._events import Event
    from ._reply import Reply

__all__ = ["Renderer", "RendererFactory", "get_renderer_factory", "set_renderer_factory"]


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
