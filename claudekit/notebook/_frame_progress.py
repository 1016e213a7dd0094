"""The progress of a DataFrame job in the notebook: a bar and a line, then a static summary.

Registered with :mod:`claudekit.frame` through its progress seam. Inside a kernel with widgets a job
shows an ``IntProgress`` bar and one line (done / total, ok / errors, cost so far, rate, ETA),
refreshed at most ``rate`` times a second (:class:`Throttle`); when the job ends the widgets are closed,
the live output is emptied and the final summary is displayed as plain text, so a saved notebook shows
it without widget state. Elsewhere the job gets the frame's one-line terminal progress.

A Dask job's progress is driven from the Dask client's event thread. ipykernel sends output with the
parent header of the context it is written from, and that thread's context is copied from the cell that
created the client; so a display from any thread but the kernel's main one is made in an empty context,
where ipykernel falls back to the cell running now (the one computing) (:func:`in_running_cell`).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from html import escape
from typing import Any, TypeVar

from .._base._markup import clean
from ..frame._progress import LineProgress, Progress, Snapshot, summary_line
from ._config import render_mode
from ._throttle import Throttle

__all__ = ["CellLineProgress", "WidgetProgress", "in_running_cell", "make_frame_progress"]

T = TypeVar("T")


def make_frame_progress(setting: Any) -> Progress | None:
    """A job's display for ``progress=setting`` (True follows the rendering mode; "widget" forces it,
    "text" the line)."""
    mode = "widget" if setting == "widget" else "text" if setting == "text" else render_mode()
    if mode == "off":
        return None
    if mode == "widget":
        return WidgetProgress()
    return CellLineProgress()


def in_running_cell(show: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``show(*args, **kwargs)``, its output in the cell running now (see the module docstring)."""
    if threading.current_thread() is threading.main_thread():
        return show(*args, **kwargs)
    return contextvars.Context().run(show, *args, **kwargs)


class CellLineProgress(LineProgress):
    """The one-line progress, written to the cell running now when called from another thread."""

    def _write(self, line: str, end: str) -> None:
        in_running_cell(super()._write, line, end)


class WidgetProgress:
    """A live bar for one job (see the module docstring)."""

    def __init__(self, *, rate: float = 10.0) -> None:
        self.throttle = Throttle(rate)
        self._bar: Any = None
        self._label: Any = None
        self._box: Any = None
        self._handle: Any = None

    def _show(self, snapshot: Snapshot) -> None:
        import ipywidgets as w
        from IPython import display as ipd

        self._bar = w.IntProgress(value=0, min=0, max=max(1, snapshot.total), bar_style="info")
        self._label = w.HTML()
        self._box = w.HBox([self._bar, self._label])
        bundle = {
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self._box.model_id,
            },
            "text/plain": "",
        }
        show: Any = ipd.display
        self._handle = show(bundle, raw=True, display_id=True)

    def update(self, snapshot: Snapshot) -> None:
        if self.throttle.poll():
            in_running_cell(self._update, snapshot)

    def finish(self, snapshot: Snapshot, error: BaseException | None) -> None:
        in_running_cell(self._finish, snapshot, error)

    def _update(self, snapshot: Snapshot) -> None:
        if self._box is None:
            self._show(snapshot)
        self._bar.max = max(1, snapshot.total)  # a Dask job's total grows as its partitions start
        self._bar.value = snapshot.done
        self._bar.bar_style = "warning" if snapshot.errors else "info"
        style = "font-family: var(--jp-ui-font-family); font-size: var(--jp-ui-font-size1);"
        # The line can quote an error from the service or the model: through the one allow-list too.
        self._label.value = clean(f'<span style="{style}">{escape(summary_line(snapshot, live=True))}</span>')

    def _finish(self, snapshot: Snapshot, error: BaseException | None) -> None:
        from IPython import display as ipd

        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)
        for widget in (self._bar, self._label, self._box):
            if widget is not None:
                widget.close()
        line = summary_line(snapshot)
        if error is not None:
            line += f" · stopped ({type(error).__name__})"
        show: Any = ipd.display
        show({"text/plain": line}, raw=True)
