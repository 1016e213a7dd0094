"""Issue 21 in real Chromium: model output that carries page script or a network beacon does nothing.

The offline model writes the payload corpus (tests/payloads.py) as its answer, reasoning, a tool's
arguments and result, and an error; the user's prompt carries it too. Each payload that runs sets
``top.__ckx``; the image beacon points at a local HTTP server on an ordinary free port (Chromium refuses
"unsafe" ports before sending, which would hide a beacon that fired). Surfaces, in one JupyterLab:

- the live view (kept after the reply), then the saved copy left by a run, the Reply repr and
  ``%claude history``; the notebook is saved (signed, so trusted) and the page reloaded;
- the same notebook executed by nbconvert and opened unsaved (untrusted);
- nbconvert's HTML of it, opened as a page of its own.

On each: no payload ran (after opening every ``<details>`` and waiting for the network to settle), no
``javascript:`` href exists, the page is still visible, the beacon counted 0 hits, and the payload text is
visible. Last, clicking a "click to load" placeholder does load the image (the beacon counts it): the
server would have seen a beacon that fired.
"""

# ruff: noqa: F811  (the fixtures of test_jupyterlab.py, imported by name, are the tests' parameters)

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.browser.test_jupyterlab import (  # noqa: F401  (fixtures)
    CELL_S,
    Lab,
    Session,
    _free_port,
    expect,
    session,
    write_notebook,
)
from tests.payloads import NOTEBOOK_CELLS, PAYLOADS, notebook_setup

pytestmark = pytest.mark.timeout(400)

# 1x1 transparent PNG: what the beacon answers, so a loaded image is a loaded image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)
MARKERS = [m for _, _, m in PAYLOADS]

RAN_JS = "() => { try { return window.top.__ckx ?? null; } catch (e) { return 'blocked: ' + e; } }"
JS_HREFS = """() => [...document.querySelectorAll('[href], [src], [action], [formaction]')]
  .map((e) => e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action') || '')
  .filter((u) => /^\\s*javascript:/i.test(u))"""
VISIBLE_JS = """(sel) => {
  const el = document.querySelector(sel);
  if (!el) return 'no ' + sel;
  const cs = getComputedStyle(el), body = getComputedStyle(document.body);
  const box = el.getBoundingClientRect();
  return body.display !== 'none' && cs.display !== 'none' && cs.visibility !== 'hidden' && box.height > 100;
}"""
# What could run or load inside the outputs: script-bearing tags, handlers, remote images. (JupyterLab draws
# its own icons as inline <svg>: an svg counts only with a handler.)
LIVE_PROBLEMS_JS = """(root) => {
  const out = [];
  for (const el of document.querySelectorAll(root + ' *')) {
    const tag = el.tagName.toLowerCase();
    if (['script', 'iframe', 'style', 'object', 'embed', 'form'].includes(tag)) out.push(tag);
    for (const a of el.attributes) {
      if (/^on/i.test(a.name) || a.name === 'srcdoc') out.push(tag + ' ' + a.name);
    }
    if (tag === 'img' && !/^data:image\\//i.test(el.getAttribute('src') || '')) out.push('img ' + el.src);
  }
  return out;
}"""


class Beacon:
    """A local HTTP server that counts every request (the exfiltration an image URL would make)."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(PNG)))
                self.end_headers()
                self.wfile.write(PNG)

            def log_message(self, *args: object) -> None:
                pass

        self.hits = hits
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        # A short poll: close() waits for it (the default 0.5 s, at every test's end).
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def beacon() -> Iterator[Beacon]:
    b = Beacon()
    try:
        yield b
    finally:
        b.close()


def _read_like_a_person(session: Session, root: str) -> None:
    """Open every <details> by clicking its summary, then let images fail and the network settle."""
    page = session.page
    summaries = page.locator(f"{root} details:not([open]) > summary")
    for k in range(min(summaries.count(), 40)):
        item = summaries.nth(k)
        if item.is_visible():
            item.click()
    page.wait_for_timeout(1500)


def _assert_inert(session: Session, beacon: Beacon, root: str, shell: str, markers: list[str]) -> None:
    page = session.page
    _read_like_a_person(session, root)
    assert page.evaluate(RAN_JS) is None, f"a payload ran: {page.evaluate(RAN_JS)}"
    for frame in page.frames:
        assert frame.evaluate(RAN_JS) in (None,) or str(frame.evaluate(RAN_JS)).startswith("blocked")
    assert page.evaluate(JS_HREFS) == []
    assert page.evaluate(LIVE_PROBLEMS_JS, root) == []
    assert page.evaluate(VISIBLE_JS, shell) is True, "the page was hidden"
    assert beacon.hits == [], f"the beacon was fetched: {beacon.hits}"
    text = " ".join(page.locator(root).all_inner_texts())
    seen = " ".join(text.split())
    missing = [m for m in markers if " ".join(m.split()) not in seen]
    assert missing == [], f"payload text not visible: {missing}"


def _trusted(nb: nbformat.NotebookNode) -> bool:
    """Whether the notebook's signature is in the server's trust database (the user's default one)."""
    from nbformat.sign import NotebookNotary

    return bool(NotebookNotary().check_signature(nb))


def _payload_sources(beacon: Beacon, live: bool) -> list[str]:
    setup = notebook_setup(beacon.host)
    if live:
        setup += "\nclaudekit.configure_rendering(static=False)"
    return [setup, *NOTEBOOK_CELLS]


def _html_outputs(nb: nbformat.NotebookNode) -> list[Any]:
    return [o for c in nb.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]


def _saved_with_html(path: Path, timeout_s: float = 20.0) -> nbformat.NotebookNode:
    """The notebook once Ctrl+S wrote it with its HTML outputs (the server signs it before it writes)."""
    deadline = time.monotonic() + timeout_s
    nb = nbformat.read(path, 4)
    while not _html_outputs(nb) and time.monotonic() < deadline:
        time.sleep(0.1)
        nb = nbformat.read(path, 4)  # the server writes atomically: never a half-written file
    return nb


def _run_all(session: Session, n: int) -> None:
    for i in range(n):
        session.run(i)
        session.wait_done(i, CELL_S * 2)


def test_live_view_saved_copy_and_reload_are_inert(session: Session, lab: Lab, beacon: Beacon) -> None:
    sources = _payload_sources(beacon, live=True)
    write_notebook(lab.root / "live.ipynb", sources)
    session.open("live.ipynb")
    _run_all(session, len(sources))
    outputs = ".jp-NotebookPanel .jp-Cell-outputArea"
    assert session.page.locator(".claudekit-live").count() >= 1, "no live view"
    _assert_inert(session, beacon, outputs, ".jp-LabShell", MARKERS)
    live_table = session.page.locator(".claudekit-live table").first
    assert live_table.locator("td", has_text="Paris").count() == 1  # tables still render
    live_margin = live_table.evaluate("(t) => getComputedStyle(t).marginLeft")

    sources = _payload_sources(beacon, live=False)
    write_notebook(lab.root / "saved.ipynb", sources)
    session.open("saved.ipynb")
    _run_all(session, len(sources))
    assert session.page.locator(".claudekit-live").count() == 0, "the live view was not replaced"
    _assert_inert(session, beacon, outputs, ".jp-LabShell", MARKERS)
    # The table sits where the live view had it (JupyterLab puts output tables flush left, and centred
    # them inside the widget): nothing jumps when the view becomes the saved copy.
    saved_table = session.page.locator(".jp-OutputArea-output table", has_text="Paris").first
    assert saved_table.evaluate("(t) => getComputedStyle(t).marginLeft") == live_margin == "0px"
    session.page.keyboard.press("Escape")
    session.page.keyboard.press("Control+s")
    saved = _saved_with_html(lab.root / "saved.ipynb")
    assert _html_outputs(saved)
    assert _trusted(saved), "the saved notebook is not signed: the reload would not test trusted outputs"
    session.page.reload()
    session.open("saved.ipynb")  # trusted: the kernel ran these outputs and the notebook was saved
    _assert_inert(session, beacon, outputs, ".jp-LabShell", MARKERS)

    # The placeholder loads the image only when clicked: the beacon sees that one request.
    session.open("live.ipynb")
    _run_all(session, 2)
    placeholder = session.page.locator(".claudekit-live button.ck-remote-image").first
    assert "image from 127.0.0.1" in (placeholder.text_content() or "")
    placeholder.click()
    deadline = time.monotonic() + 10
    while not beacon.hits and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(beacon.hits) == 1 and "d=secret" in beacon.hits[0]


def test_untrusted_notebook_and_nbconvert_html_are_inert(session: Session, lab: Lab, beacon: Beacon) -> None:
    from tests.notebook.test_saved_notebook import finish, run, start

    path = write_notebook(lab.root / "executed.ipynb", _payload_sources(beacon, live=False))
    done = run(
        "jupyter", "nbconvert", "--to", "notebook", "--execute", "--allow-errors", "--inplace", str(path),
        cwd=lab.root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert beacon.hits == []
    # The HTML export (no kernel: it only reads the executed notebook) runs while the page opens it.
    converting = start("jupyter", "nbconvert", "--to", "html", str(path), cwd=lab.root)

    assert not _trusted(nbformat.read(path, 4))
    session.open("executed.ipynb")  # not signed here: JupyterLab sanitises it too
    outputs = ".jp-NotebookPanel .jp-Cell-outputArea"
    _assert_inert(session, beacon, outputs, ".jp-LabShell", MARKERS)

    converted = finish(converting)
    assert converted.returncode == 0, converted.stderr[-2000:]
    assert beacon.hits == []
    session.page.goto(f"{lab.url}/files/executed.html?token={lab.token}")
    session.page.wait_for_load_state("load")
    _assert_inert(session, beacon, ".jp-OutputArea-output", "body", MARKERS)


# Issue 25: citation markers in the live view. Two text documents; the second's cited sentence carries an
# image whose load is a beacon request and whose onerror would set a global (no dots: the offline model
# cites whole sentences), after an emoji (the kernel counts code points, the page UTF-16 units).
CITE_SETUP = """\
import json
import claudekit as ck
ck.configure_rendering(static=False)
first = ck.Document.from_text(
    "Revenue grew 12 percent in the third quarter. Costs were flat.", title="Q3 report"
)
second = ck.Document.from_text(
    "Supply risk 🚢 <img src=//localhost:{port}/cite onerror=__ckx=1> remains in the harbour. Prices rose.",
    title="Risk memo",
)"""
# What the marks must show is printed from the final message (reply.citations), not read from the view.
CITE_ASK = """\
reply = await ck.Chat()(["How did revenue grow, and the supply risk in harbour?", first, second])
print(json.dumps([[r.location, r.cited_text] for r in reply.citations.itertuples()]))"""
# The model's text may write the marker sentinels (U+E000, U+E001) as HTML character references: the
# Markdown parser passes them through and the page decodes them, so they must not become markers.
CITE_FORGED = """\
from claudekit.offline import OfflineBackend, Script, Turn
cite = {"type": "char_location", "cited_text": "Costs were flat.", "document_index": 0,
        "document_title": "Q3 report", "start_char_index": 46, "end_char_index": 62, "file_id": None}
forged = "Sales doubled&#xE000;1&#xE001; and margins tripled&#57344;2&#57345;. "
script = Script([Turn(text=forged, cited=[("Costs were flat.", [cite])])])
await ck.Chat(offline=OfflineBackend(responder=script))(["How were costs?", first])"""


def test_citation_markers_show_their_sources_and_stay_inert(
    session: Session, lab: Lab, beacon: Beacon
) -> None:
    port = beacon.server.server_address[1]
    requested: list[str] = []
    session.page.on("request", lambda r: requested.append(r.url))
    write_notebook(lab.root / "cites.ipynb", [CITE_SETUP.format(port=port), CITE_ASK, CITE_FORGED])
    session.open("cites.ipynb")
    for i in range(2):
        session.run_and_wait(i)
    printed = session.output(1).locator("[data-mime-type='application/vnd.jupyter.stdout']")
    expected = json.loads((printed.last.text_content() or "").strip())
    assert len(expected) == 2 and "<img src=//localhost" in expected[1][1]
    view = session.output(1).locator(".claudekit-live")
    marks = view.locator("button.ck-cite-mark")
    expect(marks).to_have_count(2)
    assert marks.all_text_contents() == ["[1]", "[2]"]
    for n, (where, cited) in enumerate(expected, 1):
        mark = marks.nth(n - 1)
        # The marker ends its cited sentence (the answer's list item), and names the source on hover.
        item = " ".join(mark.evaluate("(b) => b.closest('li, p').textContent").split())
        assert item.endswith(f"{' '.join(cited.split())}[{n}]"), item
        title = mark.get_attribute("title") or ""
        assert where in title and cited in title and ("Q3 report" if n == 1 else "Risk memo") in title
        mark.click()  # a click shows the source in a note after the marker; a second click hides it
        note = view.locator(".ck-cite-note")
        expect(note).to_have_count(1)
        assert cited in (note.text_content() or "") and where in (note.text_content() or "")
        if n == 1:
            mark.click()
            expect(note).to_have_count(0)
    session.page.wait_for_timeout(1500)  # an image would have failed (onerror) and the network settled
    assert session.page.evaluate(RAN_JS) is None, "the cited text's payload ran"
    assert session.page.evaluate(LIVE_PROBLEMS_JS, ".jp-NotebookPanel .jp-Cell-outputArea") == []
    assert beacon.hits == [] and not [u for u in requested if f":{port}" in u], (beacon.hits, requested)
    session.no_widget_errors(1)
    # Only the marker the kernel placed (after the cited block); the forged ones stay text.
    session.run_and_wait(2)
    forged = session.output(2).locator(".claudekit-live")
    expect(forged.locator("button.ck-cite-mark")).to_have_count(1)
    shown = forged.text_content() or ""
    assert "Sales doubled\ufffd1\ufffd and margins tripled\ufffd2\ufffd." in shown, shown
    title = forged.locator("button.ck-cite-mark").get_attribute("title")
    assert title == "[1] Q3 report, chars 46–62: “Costs were flat.”", title
    session.no_widget_errors(2)
