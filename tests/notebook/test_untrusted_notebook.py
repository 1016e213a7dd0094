"""Issue 21 in a real kernel: a notebook whose model writes the payload corpus, executed and saved, then
converted by nbconvert to HTML (which sanitises nothing). Every output — the saved copy of each reply,
the Reply repr, ``%claude history``, the error — must be inert and still show the payloads as text."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from tests.notebook.test_saved_notebook import run
from tests.payloads import NOTEBOOK_CELLS, PAYLOADS, html_problems, missing_markers, notebook_setup

OUTPUT = "jp-OutputArea-output"


def payload_notebook(path: Path, beacon: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(notebook_setup(beacon))]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS]
    nbformat.write(nb, path)


def test_executed_notebook_and_its_nbconvert_html_are_inert(tmp_path: Path) -> None:
    path = tmp_path / "payloads.ipynb"
    payload_notebook(path, "beacon.invalid")
    done = run(
        "jupyter", "nbconvert", "--to", "notebook", "--execute", "--allow-errors", "--inplace", str(path),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    saved = nbformat.read(path, 4)
    html_outputs = [
        o.data["text/html"] for c in saved.cells for o in c.outputs if "text/html" in o.get("data", {})
    ]
    # Two saved copies, the repr and the history; no output is Markdown (which viewers would render raw).
    assert len(html_outputs) >= 4, [c.outputs for c in saved.cells]
    assert not [o for c in saved.cells for o in c.outputs if "text/markdown" in o.get("data", {})]
    for page in html_outputs:
        assert html_problems(page) == [], page

    converted = run("jupyter", "nbconvert", "--to", "html", str(path), cwd=tmp_path)
    assert converted.returncode == 0, converted.stderr[-2000:]
    page = (tmp_path / "payloads.html").read_text()
    assert html_problems(page, within=OUTPUT) == []
    assert not re.search(r"""href\s*=\s*["']?\s*javascript:""", page, re.I)
    assert missing_markers(page, within=OUTPUT) == []
    # The error cell's answer was cut by the error; its payloads are shown by the error line.
    assert "top.__ckx=&#x27;script&#x27;" in page or "top.__ckx='script'" in page
    assert len(PAYLOADS) > 10
