"""Where a cell runs: in a kernel a page shows (widgets), or in one nobody watches (nbconvert, nbval).

A leaf of the notebook layer: the configuration and the live view both ask it, and it imports neither.
"""

from __future__ import annotations

import importlib.util
import os
import sys

__all__ = ["OFF", "headless", "in_widget_kernel"]

OFF = ("0", "off", "false", "no", "none")  # what CLAUDEKIT_RENDER / CLAUDEKIT_HEADLESS read as "no"


def in_widget_kernel() -> bool:
    """True inside an ipykernel (``ZMQInteractiveShell``) with ipywidgets importable."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return False
    return "ipywidgets" in sys.modules or importlib.util.find_spec("ipywidgets") is not None


def headless() -> bool:
    """True when the cell being run came from a client that no page shows: nbconvert, nbval, papermill.

    Those clients send ``execute_request`` with ``allow_stdin: false`` (they cannot answer ``input()``);
    JupyterLab, Notebook 7 and VS Code allow stdin. No page there can ever show a widget, so claudekit
    draws no live view and asks nobody to approve: it decides at once instead of waiting for a view.
    ``CLAUDEKIT_HEADLESS=0`` / ``1`` overrides the guess (Voilà, for one, runs cells as nbclient does but
    shows widgets).
    """
    forced = os.environ.get("CLAUDEKIT_HEADLESS", "").strip().lower()
    if forced:
        return forced not in OFF
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        kernel = getattr(ipython.get_ipython(), "kernel", None)
        parent = kernel.get_parent("shell") if kernel is not None else None
    except Exception:
        return False
    if not isinstance(parent, dict) or parent.get("header", {}).get("msg_type") != "execute_request":
        return False
    return parent.get("content", {}).get("allow_stdin", True) is False
