"""The widget with claudekit's own front-end code (anywidget): one model per reply or approval card.

Its JavaScript (``_js/view.js``) and CSS ship inside the package and travel with widget state, so
nothing is fetched from the network. They travel once per kernel: one shared model
(:class:`FrontEndCode`) holds them, and each reply's widget carries only a small loader
(``_js/loader.js``) that imports that code once per page (a reply's widget used to carry all ~62 KB:
most of the bytes of a short reply, and ~0.6 ms of its kernel time). In Colab, whose widget manager
may not resolve other models for anywidget, each widget still carries the whole code.

``_js/marked.esm.js`` is marked 16.4.2 (MIT, see ``_js/LICENSE-marked.md``), the Markdown parser
JupyterLab 4.6 itself uses: the live view renders the answer as the saved Markdown copy will be rendered.

The kernel talks to the page with custom messages only (:meth:`DocWidget.push`); the page answers with
custom messages too (handled by the ``on_message`` callback): typed widget state is held back by the
frontend while a cell runs, custom messages are not (measured; see docs/approval.md).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import anywidget
import ipywidgets
import traitlets

__all__ = ["DocWidget", "FrontEndCode", "front_end_code"]


def _read(name: str) -> str:
    return (resources.files(__package__) / "_js" / name).read_text(encoding="utf-8")


@cache
def front_end_code() -> tuple[str, str]:
    """``(esm, css)``: marked wrapped in a function scope (its minified names stay private), then ours."""
    marked = _read("marked.esm.js")
    found = re.search(r"export\s*\{([^}]*)\}\s*;?\s*$", marked)
    if found is None:
        raise RuntimeError("claudekit: the vendored marked.esm.js has no export list")
    pairs = [p.strip().split(" as ") for p in found.group(1).split(",")]
    exports = ", ".join(f"{alias.strip()}: {local.strip()}" for local, alias in pairs)
    wrapped = f"const markedLib = (() => {{\n{marked[: found.start()]}\nreturn {{ {exports} }};\n}})();\n"
    return wrapped + _read("view.js"), _read("view.css")


class FrontEndCode(ipywidgets.Widget):  # type: ignore[misc]
    """The front end's code and CSS, one model per kernel: every view's loader imports it from here.

    A plain widget model (no view): the page keeps its state and the loader reads ``code`` and ``css``.
    ``version`` (a hash of both) keys the page's cache, so a page that served an older kernel reloads.
    """

    code = traitlets.Unicode("").tag(sync=True)
    css = traitlets.Unicode("").tag(sync=True)
    version = traitlets.Unicode("").tag(sync=True)


_shared: list[FrontEndCode] = []


def _front_end_model() -> FrontEndCode:
    """The kernel's shared code model, opened on first use (again if someone closed all widgets)."""
    if _shared and _shared[0].comm is not None:
        return _shared[0]
    import hashlib

    esm, css = front_end_code()
    version = hashlib.sha256((esm + css).encode()).hexdigest()[:16]
    _shared[:] = [FrontEndCode(code=esm, css=css, version=version)]
    return _shared[0]


@cache
def _loader() -> str:
    return _read("loader.js")


@cache
def _layout() -> Any:
    """One layout model shared by every view: one comm fewer per reply (nothing sets its fields)."""
    return ipywidgets.Layout()


def _in_colab() -> bool:
    import sys

    return "google.colab" in sys.modules


class DocWidget(anywidget.AnyWidget):  # type: ignore[misc]
    """A document the page renders: the live view of a reply, or approval cards on their own."""

    key = traitlets.Unicode("").tag(sync=True)
    lib = traitlets.Unicode("").tag(sync=True)  # the model id of the shared FrontEndCode ("" in Colab)
    init = traitlets.Dict().tag(sync=True)  # the first message ({seq, ops}), applied when the module loads
    # Class traits, not the per-instance traits AnyWidget.__init__ adds (that makes a new class for every
    # widget: 1.1 ms of a reply's fixed cost, measured); everything else is anywidget's own front end.
    _esm = traitlets.Unicode().tag(sync=True)
    _css = traitlets.Unicode().tag(sync=True)
    _anywidget_id = traitlets.Unicode("claudekit.notebook.DocWidget").tag(sync=True)

    @traitlets.default("_esm")
    def _default_esm(self) -> str:  # Colab: the whole front end in each widget
        return front_end_code()[0]

    @traitlets.default("_css")
    def _default_css(self) -> str:
        return front_end_code()[1]

    def __init__(
        self, on_message: Callable[[dict[str, Any]], None], ops: list[list[Any]] | None = None
    ) -> None:
        # ``ops``: the first message, sent in the opening state (``init``) rather than on its own.
        init = {"seq": 1, "ops": ops} if ops else {}
        if _in_colab():
            super().__init__(key=uuid.uuid4().hex, init=init)  # anywidget enables Colab's widget manager
        else:
            lib = _front_end_model().model_id
            ipywidgets.DOMWidget.__init__(
                self, key=uuid.uuid4().hex, lib=lib, init=init, _esm=_loader(), _css="", layout=_layout()
            )
        self.seq = 1 if ops else 0
        self.sent: list[list[Any]] = list(ops or [])  # every op sent, for a page that asks for everything
        self._on_message = on_message
        self.on_msg(self._received)

    def push(self, ops: list[list[Any]]) -> None:
        """Send what changed (one custom message)."""
        if not ops:
            return
        self.seq += 1
        self.sent.extend(ops)
        self.send({"seq": self.seq, "ops": ops})

    def ping(self) -> None:
        """Ask every view the page shows to report itself again (after a page reconnected)."""
        self.send({"ping": True})

    def resend(self) -> None:
        """The page missed messages: send everything so far in one message."""
        self.send({"seq": self.seq, "reset": True, "ops": self.sent})

    def _received(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if content.get("kind") == "sync":
            have = content.get("have")
            if self.seq and not (isinstance(have, int) and have >= self.seq):  # it missed something
                self.resend()
            return
        self._on_message(content)
