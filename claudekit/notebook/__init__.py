"""claudekit in Jupyter: a live view of each reply, a static rendering for saved notebooks, and the
``%claude`` / ``%%claude`` magics.

Importing this package is cheap (no ipywidgets, no IPython import): it registers the renderer factory
(and the loop waker that lets a kernel interrupt land during an HTTP wait) with the core, which then
builds, per reply, a :class:`WidgetRenderer` inside a Jupyter kernel, a :class:`TextRenderer` elsewhere,
or nothing (``CLAUDEKIT_RENDER=0``, ``configure(mode="off")``, ``Chat(render=False)``). Rendering never
changes the events a stream yields, and a stream whose events the caller iterates is not rendered
(unless ``render=True``): the caller shows them. Under nbconvert, nbval or papermill (:func:`headless`)
no live view is drawn: the saved copy is the reply's one output.

Magics: ``%load_ext claudekit`` (or ``claudekit.notebook``) calls :func:`load_ipython_extension`.

Layer: the top one. It may import every other layer; none imports it (it plugs in through ``_seams``).
"""

from __future__ import annotations

from typing import Any

from .. import _seams as _render
from .._request._template import PromptFieldError, format_prompt, to_prompt_text
from ..frame import _progress as _frame_progress_seam
from ._code import to_cell as _to_cell
from ._config import configure, headless, in_widget_kernel, make_renderer, render_mode
from ._interrupt import keep_awake
from ._state import STATUSES, ToolCard, ViewState
from ._static import FOOTER_SANITIZE_REGEX, footer_line, static_bundle, static_html
from ._text import TextRenderer
from ._throttle import Throttle

__all__ = [
    "FOOTER_SANITIZE_REGEX",
    "STATUSES",
    "PromptFieldError",
    "TextRenderer",
    "Throttle",
    "ToolCard",
    "ViewState",
    "WidgetRenderer",
    "chats",
    "configure",
    "footer_line",
    "format_prompt",
    "get_chat",
    "headless",
    "in_widget_kernel",
    "load_ipython_extension",
    "make_renderer",
    "render_mode",
    "show",
    "static_bundle",
    "static_html",
    "to_prompt_text",
    "unload_ipython_extension",
    "use_chat",
]

_render.set_renderer_factory(make_renderer)


def _present_approvals(pending: tuple[Any, ...]) -> None:
    """Show approval requests no live view claimed as a card of their own (inside a kernel only)."""
    if not in_widget_kernel() or headless():  # nobody could click: the unattended fallback decides
        return
    from IPython import display as ipd

    from ._approval import approval_group_widget

    claimed = tuple(p for p in pending if p.claim())
    if claimed:
        widget = approval_group_widget(claimed)
        view = {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}
        show: Any = ipd.display
        show({"application/vnd.jupyter.widget-view+json": view}, raw=True)


_render.set_approval_presenter(_present_approvals)
_render.set_cell_inserter(_to_cell)
_render.set_loop_waker(keep_awake)


def _frame_progress(setting: Any) -> Any:
    from ._frame_progress import make_frame_progress

    return make_frame_progress(setting)


_frame_progress_seam.set_progress_factory(_frame_progress)


def _one_line_errors() -> None:
    """In a Jupyter kernel claudekit's errors are one line from the first import, not only after
    ``%load_ext`` or a first reply: a bad ``Chat(...)`` is one line too (``%tb`` has the traceback)."""
    import sys

    ipython = sys.modules.get("IPython")  # never imported here: no IPython loaded, no notebook
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    if type(shell).__name__ == "ZMQInteractiveShell":
        from ._errors import install

        install(shell)


_one_line_errors()

_LAZY = {
    "WidgetRenderer": "._widget",
    "chats": "._magic",
    "get_chat": "._magic",
    "use_chat": "._magic",
}


def __getattr__(name: str) -> Any:
    """Lazy attributes: the widget renderer (ipywidgets) and the magic's chat registry (IPython)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'claudekit.notebook' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%claude`` / ``%%claude`` (``%load_ext claudekit``)."""
    from ._magic import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from ._magic import unload_ipython_extension as unload

    unload(ipython)


def show(reply: Any, error: BaseException | None = None) -> None:
    """Display a finished :class:`~claudekit.Reply` statically (safe HTML; works with no widget state)."""
    from IPython import display as ipd

    from ._config import _settings

    show_: Any = ipd.display
    show_(static_bundle(reply, error, math=_settings["math"]), raw=True)
