"""Code from an answer into a new notebook cell: fenced-block extraction and IPython's ``set_next_input``.

The cell is created by the frontend from the ``set_next_input`` payload of the running cell's execute
reply (never run by itself). JupyterLab, Notebook 7, classic Notebook/nbclassic and VS Code honour it;
Google Colab ignores it, so there a one-line note says so (docs/notebook-context.md has the details).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

from .._base._errors import ConfigError
from ._where import headless

__all__ = ["CodeBlock", "code_blocks", "ignoring_frontend", "insert_code", "pick_block", "to_cell"]

_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_PYTHON = ("", "python", "py", "python3", "ipython", "ipython3", "pycon")
_BELOW = " is in a new cell below, not run"


@dataclass(frozen=True)
class CodeBlock:
    """A fenced code block of a Markdown answer: its code (fences stripped) and info-string language."""

    code: str
    language: str


def code_blocks(markdown: str) -> list[CodeBlock]:
    """The fenced code blocks of ``markdown``, in order (CommonMark fences: ``` or ~~~, 3 or more).

    An unclosed fence runs to the end of the text, as CommonMark says (a reply cut off mid-block still
    yields the code that arrived).
    """
    blocks: list[CodeBlock] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        fence = m.group("fence") if m else ""
        info = m.group("info").strip() if m else ""
        if m is None or (fence[0] == "`" and "`" in info):
            i += 1
            continue
        indent = len(m.group("indent"))
        body: list[str] = []
        i += 1
        while i < len(lines) and not _closes(lines[i], fence):
            body.append(_dedent(lines[i], indent))
            i += 1
        i += 1  # past the closing fence
        language = info.split()[0].lower() if info else ""
        blocks.append(CodeBlock("\n".join(body), language))
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return (
        len(line) - len(line.lstrip(" ")) <= 3
        and stripped.startswith(fence[0] * len(fence))
        and set(stripped) == {fence[0]}
    )


def _dedent(line: str, indent: int) -> str:
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(indent, spaces) :]


def pick_block(markdown: str, block: int | None = None) -> tuple[CodeBlock | None, str]:
    """The block to insert and a one-line note saying which it is (or why there is none).

    ``block`` is 1-based among all fenced blocks; None takes the first Python (or untagged) block, else
    the first block of any language.
    """
    blocks = code_blocks(markdown)
    if not blocks:
        return None, "the answer has no fenced code block, so no cell was added"
    if block is not None:
        if not 1 <= block <= len(blocks):
            count = f"{len(blocks)} code block" + ("" if len(blocks) == 1 else "s")
            return None, f"the answer has {count}; there is no block {block}, so no cell was added"
        chosen, index = blocks[block - 1], block
    else:
        python = [n for n, b in enumerate(blocks, 1) if b.language in _PYTHON]
        index = python[0] if python else 1
        chosen = blocks[index - 1]
    lines = chosen.code.count("\n") + 1 if chosen.code else 0
    which = "the answer's code" if len(blocks) == 1 else f"code block {index} of {len(blocks)}"
    more = " (--code N or to_cell(N) picks another)" if len(blocks) > 1 else ""
    return chosen, f"{which} ({lines} line{'s' if lines != 1 else ''}){_BELOW}{more}"


def ignoring_frontend() -> str | None:
    """The name of a frontend known to ignore ``set_next_input`` payloads, if this kernel runs under one."""
    if "google.colab" in sys.modules:
        return "Google Colab"
    return None


def insert_code(shell: Any, markdown: str, block: int | None = None) -> str:
    """Ask the frontend for a new cell below holding the chosen block; returns the one-line note."""
    chosen, note = pick_block(markdown, block)
    if chosen is None:
        return f"claudekit: {note}"
    shell.set_next_input(chosen.code, replace=False)
    ignoring = ignoring_frontend()
    if ignoring is not None:
        return (
            f"claudekit: {ignoring} ignores requests for a new cell (set_next_input), so none was added: "
            "copy the code from the answer above"
        )
    if headless():  # nbconvert, nbval, papermill drop the payload: no page, no new cell
        which = note.partition(_BELOW)[0]
        return (
            f"claudekit: no cell was added: this notebook runs headless (nbconvert, nbval, papermill add no "
            f"cells); {which} stays in the answer"
        )
    return f"claudekit: {note}"


def to_cell(markdown: str, block: int | None = None) -> None:
    """What ``Reply.to_cell`` does in a notebook (registered with the core through ``_render``)."""
    shell = None
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        shell = ipython.get_ipython()
    if shell is None:
        raise ConfigError(
            "reply.to_cell() works inside IPython or Jupyter only, and no IPython shell is running",
            hint="copy the code from reply.text",
        )
    chosen, note = pick_block(markdown, block)
    if chosen is None:
        raise ConfigError(note.replace(", so no cell was added", ""), hint="see reply.text")
    print(insert_code(shell, markdown, block))
