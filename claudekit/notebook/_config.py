"""Which renderer a reply gets: live widgets in a Jupyter kernel, plain text elsewhere, or none.

The mode comes from :func:`configure` (``mode=``), else the ``CLAUDEKIT_RENDER`` environment variable
(``0``/``off`` none, ``text``, ``widget``, ``auto``), else ``auto``: widgets when IPython's shell is
ipykernel's ``ZMQInteractiveShell`` (a kernel talking to a frontend) and ipywidgets is installed, plain
text otherwise (scripts, terminal IPython). ``Chat(render=False)`` / ``stream(render=False)`` turn
rendering off for one chat or one reply.
"""

from __future__ import annotations

import os
from typing import Any

from ._where import OFF, headless, in_widget_kernel

__all__ = ["configure", "headless", "in_widget_kernel", "make_renderer", "render_mode"]

_settings: dict[str, Any] = {"mode": None, "rate": 15.0, "static": True, "math": False}


def configure(
    *,
    mode: str | None = None,
    rate: float | None = None,
    static: bool | None = None,
    math: bool | None = None,
) -> dict[str, Any]:
    """Set how replies render; returns the settings in force.

    ``mode``: ``"auto"``, ``"widget"``, ``"text"`` or ``"off"`` (overrides ``CLAUDEKIT_RENDER``; ``"env"``
    goes back to the environment variable). ``rate``: live-view refreshes per second (default 15).
    ``static``: leave a static Markdown rendering when a widget reply finishes (default True).
    ``math``: typeset ``$…$`` in answers as math (default False: ``$5 and $7`` shows as written, as in
    chat UIs).
    """
    if mode is not None:
        if mode not in ("auto", "widget", "text", "off", "env"):
            raise ValueError(f"mode must be 'auto', 'widget', 'text', 'off' or 'env', got {mode!r}")
        _settings["mode"] = None if mode == "env" else mode
    if rate is not None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        _settings["rate"] = float(rate)
    if static is not None:
        _settings["static"] = bool(static)
    if math is not None:
        _settings["math"] = bool(math)
    return dict(_settings)


def render_mode() -> str:
    """``"widget"``, ``"text"`` or ``"off"``: what :func:`make_renderer` builds right now."""
    mode = _settings["mode"]
    if mode is None:
        env = os.environ.get("CLAUDEKIT_RENDER", "auto").strip().lower()
        if env in OFF:
            return "off"
        mode = {"widgets": "widget", "plain": "text"}.get(env, env)
    if mode == "off":
        return "off"
    if mode in ("widget", "text"):
        return str(mode)
    return "widget" if in_widget_kernel() else "text"


def make_renderer(render: bool | None = None) -> Any:
    """The renderer factory registered with the core: a new renderer per reply, or None.

    ``render=True`` (from ``Chat(render=True)`` or ``stream(render=True)``) renders even where the
    configuration or ``CLAUDEKIT_RENDER`` turned rendering off.
    """
    mode = render_mode()
    if mode == "off" and render:
        mode = "widget" if in_widget_kernel() else "text"
    if mode == "off":
        return None
    if mode == "widget":
        from ._widget import WidgetRenderer

        return WidgetRenderer(_settings["rate"], static=_settings["static"], math=_settings["math"])
    from ._text import TextRenderer

    return TextRenderer()
