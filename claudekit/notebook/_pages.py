"""Which views of a widget a page shows now, and what a page reload means for them.

A page reload destroys its views without a word (their ``remove`` never runs), so a count of "shown" and
"hidden" reports would stay above zero for good and an approval card would wait forever. Instead:

- each view reports itself with an id (``{"kind": "view", "shown": true, "view": ID}``), kept in a set;
- a page (re)connecting its widget manager opens ipywidgets' ``jupyter.widget.control`` comm: claudekit
  wraps that comm target and tells every live document, which forgets its views and asks the page's
  views to report again (``{"ping": true}``). A view of a saved output comes back this way; a card
  whose output was not saved does not, and the calls it waits for end with the unattended policy.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Protocol

__all__ = ["ViewSet", "watch_pages"]

_CONTROL = "jupyter.widget.control"
_listeners: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()


class PageListener(Protocol):
    def page_connected(self) -> None: ...


class ViewSet:
    """The views a page shows now: by id, or counted for a front end that sends no id."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.anonymous = 0

    @property
    def count(self) -> int:
        return len(self.ids) + self.anonymous

    def update(self, content: dict[str, Any]) -> int:
        """Apply one ``view`` report; returns how many views there are now."""
        view = content.get("view")
        shown = bool(content.get("shown"))
        if isinstance(view, str):
            if shown:
                self.ids.add(view)
            else:
                self.ids.discard(view)
        else:
            self.anonymous = max(0, self.anonymous + (1 if shown else -1))
        return self.count

    def forget(self) -> None:
        """A page reconnected: the views that are still there will report again."""
        self.ids.clear()
        self.anonymous = 0


def watch_pages(listener: PageListener) -> None:
    """Tell ``listener`` (weakly held) each time a page connects its widget manager to this kernel."""
    with _lock:
        _listeners.add(listener)
    _hook()


def _notify() -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener.page_connected()
        except Exception:  # a broken view must not break the widget manager's connection
            import logging

            logging.getLogger("claudekit.notebook").debug("page listener failed", exc_info=True)


def _hook() -> None:
    """Wrap ipywidgets' control comm target once (it answers the page's ``request_states``)."""
    try:
        import comm
    except ImportError:
        return
    manager = comm.get_comm_manager()
    targets = getattr(manager, "targets", None)
    if not isinstance(targets, dict):
        return
    original = targets.get(_CONTROL)
    if original is None or getattr(original, "claudekit", False):
        return

    def opened(comm_: Any, msg: Any) -> None:
        original(comm_, msg)
        _notify()

    opened.claudekit = True  # type: ignore[attr-defined]
    manager.register_target(_CONTROL, opened)
