"""The live view and the approval card in a real browser: JupyterLab, headless Chromium, Playwright.

One JupyterLab server (the venv's own, on 127.0.0.1, a token, root_dir a tmp dir, autosave off) and one
Chromium serve every browser test file (tests/browser/conftest.py; each test gets its own browser context,
and its kernels are shut down after it). Each test writes a notebook (a name of its own), opens it, runs
its cells as a person would (click the editor, Shift+Enter; text typed key by key, never filled in at
once) and asserts on the DOM and on what the kernel received:

- ``test_quickstart_reply``: ``await ck.Chat(thinking=1024)(...)`` leaves the saved copy (thinking in a
  ``<details>``, the answer, the footer) and no widget error;
- ``test_edited_arguments_run_exactly``: Edit, type ``_v2`` into the JSON key by key (with a typo made
  and undone on the way): the tool runs with exactly the edited arguments, the card and the saved copy
  show them and who approved; the prompt outlived the unattended grace period (the page reported its view);
- ``test_deny_reason_reaches_the_model``: a reason typed key by key and Deny: the tool never runs and the
  model gets the whole reason;
- ``test_interrupts_show_one_line``: a streaming reply interrupted with I,I, a waiting approval
  interrupted, and the view's Stop button: each cell shows one line, no traceback; the next reply works;
- ``test_order_and_unclosed_fence``: text and tool cards in the order they happened, in the live view and
  the saved copy; an answer cut inside a code fence leaves no literal HTML; ``$5 and $7`` stays as written;
- ``test_readable_in_light_and_dark_themes``: WCAG AA contrast of every text claudekit draws.
- ``test_code_block_copy_insert_below_and_code_cells``: while an answer streams, Copy on a code block puts
  exactly its code on the clipboard and Insert below makes it a new cell under the running one when the
  cell ends (not run); a ``%%claude --code`` cell does the same with its answer's block (JupyterLab honours
  the ``set_next_input`` payload).

Screenshots go to each test's ``tmp_path``; with ``CLAUDEKIT_UPDATE_SCREENSHOTS=1`` they are also copied to
``docs/screenshots/``. Needs Debian's chromium (``apt-get install chromium``, never a Playwright browser
download) and the Python packages ``playwright`` and ``jupyterlab``; without chromium or playwright the
tests skip and say so.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CLAUDEKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_S = 60.0  # measured 2-6 s; a cold first start on a busy 2-core machine is slower
OPEN_S = 60.0  # notebook shown and its kernel idle (measured 4-15 s)
CELL_S = 30.0  # one offline cell (measured < 1 s once the kernel is up)
KEY_DELAY_MS = 60  # between keystrokes, as a quick typist
WIDGET_ERRORS = ("Error displaying widget", "Loading widget", "widget model not found")

if not Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is None:
    pytest.skip(
        f"the browser test needs Chromium: {CHROMIUM} not installed: apt-get install chromium",
        allow_module_level=True,
    )
pytest.importorskip(
    "playwright.sync_api",
    reason="the browser test needs playwright (pip install playwright; it uses Debian's chromium)",
)

from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright  # noqa: E402

from claudekit._tooling._approval import DEFAULT_GRACE_S  # noqa: E402

pytestmark = pytest.mark.timeout(240)


# -- the notebooks ------------------------------------------------------------------------------------

TOOLS_CELL = '''\
import claudekit as ck
{configure}
ran = []

@ck.tool
def read_clock() -> str:
    """Return the current time."""
    return "12:00"

@ck.tool(approve=True)
def delete_file(path: str) -> str:
    """Delete a file from the workspace."""
    ran.append(path)
    return f"deleted {{path}}"'''

CHAT_CELL = """\
chat = ck.Chat(tools=[read_clock, delete_file], thinking=1024)
reply = await chat("Use delete_file for path important.txt")"""

CHECK_CELL = """\
print("ran:", ran, reply.tool_calls[0].decision)
print("result:", reply.tool_calls[0].result)
sent = [b for m in chat.history.messages for b in m["content"] if b.get("type") == "tool_result"]
print("sent:", json.dumps(sent[0]["content"]))
print("answer:", reply.text.splitlines()[-1])"""

QUICKSTART_PROMPT = "What can claudekit do in a notebook?"


def write_notebook(path: Path, sources: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def approval_notebook(root: Path, name: str, *, static: bool) -> str:
    # static=False keeps the live view after the reply (so the card's result can be read in the DOM);
    # static=True (the default) replaces it by the saved copy when the reply ends.
    configure = "import json" + ("" if static else "\nck.configure_rendering(static=False)")
    write_notebook(root / name, [TOOLS_CELL.format(configure=configure), CHAT_CELL, CHECK_CELL])
    return name


# -- the server ---------------------------------------------------------------------------------------


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path
    proc: subprocess.Popen[bytes]
    settings: Path
    started_s: float = 0.0

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def _api(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(
            f"{self.url}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End the sessions and kernels open now (the server is shared: they would pile up otherwise).

        The list is taken now; the shutdowns (a second or more each, the kernel exits gracefully) go on
        in a thread while the next test starts, which opens sessions of its own that this leaves alone.
        """
        paths = [f"sessions/{s['id']}" for s in self._api("sessions")]
        paths += [f"kernels/{k['id']}" for k in self._api("kernels")]

        def shut() -> None:
            for path in paths:
                with contextlib.suppress(urllib.error.URLError, OSError):  # e.g. gone with its session
                    self._api(path, "DELETE")

        threading.Thread(target=shut, daemon=True).start()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_settings(settings_dir: Path) -> None:
    """User settings for this server only: autosave off (stale outputs would be written back), no news."""
    files = {
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    }
    for rel, value in files.items():
        p = settings_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(value))


THEME_SETTINGS = "@jupyterlab/apputils-extension/themes.jupyterlab-settings"


@contextlib.contextmanager
def lab_theme(lab: Lab, theme: str) -> Iterator[None]:
    """Pages opened inside use ``theme`` (the server reads user settings per request)."""
    path = lab.settings / THEME_SETTINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"theme": theme}))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


# WCAG 2 contrast of every visible text node under a root, against its composited background.
# Colours with alpha (JupyterLab's font colours are rgba) are blended over what is beneath them.
CONTRAST_JS = """(root) => {
  const parse = (s) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(s || "");
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (fg, bg) => [0, 1, 2].map((i) => fg[i] * fg[3] + bg[i] * (1 - fg[3])).concat([1]);
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [255, 255, 255, 1];
    for (const c of layers.reverse()) bg = over(c, bg);
    return bg;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const out = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    const el = n.parentElement;
    if (!text || !el) continue;
    // WCAG exempts inactive controls (a decided approval card greys its buttons out).
    if (el.closest("button:disabled, .mod-disabled")) continue;
    const box = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    if (!box.width || !box.height || cs.visibility === "hidden") continue;
    const bg = background(el);
    const fg = over(parse(cs.color), bg);
    const a = lum(fg), b = lum(bg);
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    out.push({text: text.slice(0, 50), ratio: Math.round(ratio * 100) / 100, color: cs.color,
              background: "rgb(" + bg.slice(0, 3).map(Math.round).join(", ") + ")"});
  }
  return out;
}"""


def _server_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The test session's settings must not reach the kernel: tests/conftest.py turns rendering off, and CI
    # may choose an unattended approval policy or have a real key.
    for name in (
        "CLAUDEKIT_RENDER",
        "CLAUDEKIT_APPROVAL",
        "CLAUDEKIT_APPROVAL_GRACE",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
    ):
        env.pop(name, None)
    env["CLAUDEKIT_BACKEND"] = "offline"
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    # Keep the server and kernel away from the user's Jupyter/IPython config and runtime files.
    for name, sub in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
    ):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(home / sub)
    # No build check on each page load (JupyterLab's own browser check turns it off too): it asks the
    # server whether the assets need rebuilding, which starts node (yarn config) every time.
    labconfig = home / "config" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps({"buildCheck": False, "buildAvailable": False}))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (it shuts its kernels down), then kill whatever is left in its process group.

    Kernels run in sessions of their own (jupyter_client), but exit when the server dies (JPY_PARENT_PID).
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_lab(base: Path) -> Iterator[Lab]:
    """A JupyterLab server under ``base``; the ``lab`` fixture (tests/browser/conftest.py) shares one."""
    root = base / "notebooks"
    root.mkdir()
    settings = base / "user-settings"
    _write_settings(settings)
    port, token = _free_port(), secrets.token_hex(16)
    log = base / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
    ]
    if os.environ.get("CLAUDEKIT_BROWSER_DEBUG"):
        cmd.append("--debug")
    t0 = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=_server_env(base), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Lab(f"http://127.0.0.1:{port}", token, root, log, proc, settings)
    try:
        status = f"{server.url}/api/status?token={token}"
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{server.log_tail()}")
            if time.monotonic() - t0 > SERVER_START_S:
                pytest.fail(f"JupyterLab not ready after {SERVER_START_S:g} s:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(status, timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        server.started_s = time.monotonic() - t0
        print(f"\nJupyterLab ready in {server.started_s:.1f} s (log: {log})")
        yield server
    finally:
        _stop(proc)


@contextlib.contextmanager
def running_browser() -> Iterator[Browser]:
    """Headless Chromium; the ``browser`` fixture (tests/browser/conftest.py) shares one."""
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _decode_frame(payload: bytes | str) -> dict[str, Any] | None:
    """A kernel message the page sent: JupyterLab's binary websocket protocol (v1), or the JSON one."""
    try:
        if isinstance(payload, str):
            msg = json.loads(payload)
            return {
                "channel": msg.get("channel"),
                "header": msg["header"],
                "content": msg.get("content") or {},
            }
        n = struct.unpack_from("<Q", payload, 0)[0]
        offsets = struct.unpack_from(f"<{n}Q", payload, 8)
        parts = [payload[offsets[i] : offsets[i + 1]] for i in range(n - 1)]
        return {"channel": parts[0].decode(), "header": json.loads(parts[1]), "content": json.loads(parts[4])}
    except (ValueError, KeyError, IndexError, struct.error, UnicodeDecodeError):
        return None


@dataclass
class KernelFrames:
    """What the page sent to its kernels (to show how a click travelled: on a subshell or not)."""

    sent: list[dict[str, Any]] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def on_ws(ws: Any) -> None:
            if "/api/kernels/" in ws.url:
                ws.on("framesent", self._frame)

        page.on("websocket", on_ws)

    def _frame(self, payload: bytes | str) -> None:
        msg = _decode_frame(payload)
        if msg is not None:
            self.sent.append(msg)

    def comm_msgs(self, match: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [
            m
            for m in self.sent
            if m["header"].get("msg_type") == "comm_msg" and match(m["content"].get("data") or {})
        ]

    def custom(self, kind: str) -> list[dict[str, Any]]:
        """claudekit's custom messages of one kind (``decide``, ``view``, ``validate``, ``stop``)."""
        return self.comm_msgs(
            lambda d: d.get("method") == "custom" and (d.get("content") or {}).get("kind") == kind
        )

    def state_updates(self) -> list[dict[str, Any]]:
        """Widget state the page sent (held back by the frontend while a cell runs: claudekit sends none)."""
        return self.comm_msgs(lambda d: d.get("method") == "update")

    @staticmethod
    def route(msg: dict[str, Any]) -> str:
        sub = msg["header"].get("subshell_id")
        return f"subshell {sub}" if sub else "the main shell"


@dataclass
class Session:
    """One page on one notebook, with what the page logged (for failure messages)."""

    page: Page
    lab: Lab
    out: Path
    console: list[str] = field(default_factory=list)
    frames: KernelFrames = field(default_factory=KernelFrames)

    def open(self, name: str) -> None:
        page = self.page
        page.goto(f"{self.lab.url}/lab/tree/{name}?reset&token={self.lab.token}")
        # `?reset` drops the workspace, so exactly one notebook panel is shown; earlier tabs do not reopen.
        expect(self.panel).to_be_visible(timeout=OPEN_S * 1000)
        expect(self.cells.first.locator(".cm-content")).to_be_visible(timeout=OPEN_S * 1000)
        expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=OPEN_S * 1000)
        # Collapse the file browser: wider cells, tidier screenshots.
        current = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if current.count():
            current.first.click()

    @property
    def panel(self) -> Locator:
        return self.page.locator(".jp-NotebookPanel:visible")

    @property
    def cells(self) -> Locator:
        return self.panel.locator(".jp-Cell")

    def cell(self, i: int) -> Locator:
        return self.cells.nth(i)

    def output(self, i: int) -> Locator:
        return self.cell(i).locator(".jp-Cell-outputArea")

    def run(self, i: int) -> None:
        self.cell(i).locator(".cm-content").click()
        self.page.keyboard.press("Shift+Enter")

    def wait_done(self, i: int, timeout_s: float = CELL_S) -> None:
        """The cell has its execution count (not ``[*]``) and the kernel is idle again."""
        expect(self.cell(i).locator(".jp-InputPrompt")).to_have_text(
            re.compile(r"\[\d+\]:"), timeout=timeout_s * 1000
        )
        expect(self.page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=timeout_s * 1000)

    def run_and_wait(self, i: int) -> None:
        self.run(i)
        self.wait_done(i)
        self.no_traceback(i)

    def no_traceback(self, i: int) -> None:
        errors = self.output(i).locator("[data-mime-type='application/vnd.jupyter.stderr']", has_text="Error")
        tb = self.output(i).locator(".jp-RenderedText", has_text="Traceback")
        assert tb.count() == 0 and errors.count() == 0, f"cell {i} failed:\n{self.text(i)}"

    def error_lines(self, i: int) -> list[str]:
        """The lines of the cell's error outputs (stderr-styled), e.g. a one-line claudekit error."""
        areas = self.output(i).locator("[data-mime-type='application/vnd.jupyter.stderr']")
        lines: list[str] = []
        for k in range(areas.count()):
            lines += [x for x in (areas.nth(k).text_content() or "").splitlines() if x.strip()]
        return lines

    def interrupt(self) -> None:
        """I,I in command mode, as a person interrupts the kernel."""
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("i")
        self.page.keyboard.press("i")

    def type_keys(self, text: str) -> None:
        self.page.keyboard.type(text, delay=KEY_DELAY_MS)

    def text(self, i: int) -> str:
        return self.output(i).text_content() or ""

    def shot(self, locator: Locator, name: str) -> Path:
        path = self.out / name
        locator.screenshot(path=str(path))
        self.page.screenshot(path=str(self.out / f"page-{name}"))
        if os.environ.get("CLAUDEKIT_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, SCREENSHOTS / name)
        return path

    def no_widget_errors(self, i: int) -> None:
        text = self.text(i)
        for bad in WIDGET_ERRORS:
            assert bad not in text, f"cell {i} output shows {bad!r}:\n{text}\nconsole:\n{self.logged()}"

    def logged(self) -> str:
        return "\n".join(self.console[-40:]) or "(nothing)"


@pytest.fixture
def session(lab: Lab, browser: Browser, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Session]:
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(CELL_S * 1000)
    s = Session(page, lab, tmp_path)
    s.frames.attach(page)
    page.on("console", lambda m: s.console.append(f"console.{m.type}: {m.text}"))
    page.on("pageerror", lambda e: s.console.append(f"pageerror: {e}"))
    try:
        yield s
    finally:
        failed = getattr(request.node, "rep_call", None)
        with contextlib.suppress(Exception):
            page.screenshot(path=str(tmp_path / "last-page.png"))
        (tmp_path / "console.log").write_text("\n".join(s.console))
        (tmp_path / "server.log").write_text(lab.log_tail(400))
        if failed is not None and failed.failed:
            print(f"\nbrowser console:\n{s.logged()}\nserver log tail:\n{lab.log_tail()}")
        context.close()
        lab.shut_down_kernels()


# -- the tests ----------------------------------------------------------------------------------------


def test_quickstart_reply(session: Session, lab: Lab) -> None:
    name = "quickstart.ipynb"
    write_notebook(
        lab.root / name,
        ["import claudekit as ck", f'reply = await ck.Chat(thinking=1024)("{QUICKSTART_PROMPT}")'],
    )
    session.open(name)
    session.run_and_wait(0)
    session.run_and_wait(1)
    out = session.output(1)
    # The saved copy: thinking in <details>, the answer, the footer (rendered, not literal HTML).
    expect(out.locator("details summary", has_text="Thinking")).to_be_visible()
    expect(out).to_contain_text(f"(offline) You asked: “{QUICKSTART_PROMPT}”")
    expect(out.locator("sub", has_text="claudekit · claude-")).to_have_count(1)
    assert "<sub" not in session.text(1)
    assert out.locator(".claudekit-live").count() == 0, "the live view was not replaced when the reply ended"
    session.no_widget_errors(1)
    out.locator("details summary", has_text="Thinking").click()
    expect(out.locator("details[open]")).to_contain_text("no model is available offline")
    session.cell(2).locator(".jp-InputPrompt").click()  # the new empty cell: cell 1 shown unselected
    session.page.mouse.move(0, 0)
    session.shot(session.cell(1), "quickstart.png")


def _caret_before(session: Session, editor: Locator, suffix_len: int) -> None:
    """The caret on the JSON's second line, ``suffix_len`` characters before its end (arrow keys)."""
    editor.click()
    keys = session.page.keyboard
    keys.press("Control+End")
    keys.press("ArrowUp")
    keys.press("End")
    for _ in range(suffix_len):
        keys.press("ArrowLeft")


def test_edited_arguments_run_exactly(session: Session, lab: Lab) -> None:
    name = approval_notebook(lab.root, "edit.ipynb", static=True)
    session.open(name)
    session.run_and_wait(0)
    session.run(1)
    out = session.output(1)
    view = out.locator(".claudekit-live")
    approve = view.locator("button.ck-approve")
    t0 = time.monotonic()
    expect(approve).to_be_visible(timeout=CELL_S * 1000)
    shown_s = time.monotonic() - t0
    card = view.locator("details.ck-tool")
    expect(card).to_have_count(1)
    expect(card.locator("summary")).to_have_text("🔧 delete_file — awaiting approval")
    expect(card.locator("pre")).to_have_text('{\n  "path": "important.txt"\n}')
    expect(view.locator(".ck-status")).to_contain_text("awaiting approval")
    expect(view.locator("details.ck-thinking summary")).to_contain_text("Thinking")
    for label in ("Approve", "Deny", "Edit", "Always allow this tool"):
        expect(card.locator("button", has_text=re.compile(rf"^{label}$"))).to_be_enabled()
    session.no_widget_errors(1)
    session.page.mouse.move(0, 0)
    session.shot(session.cell(1), "approval.png")

    # Past the grace period the prompt still waits for a person: the page reported its view. (What is
    # checked is that nothing happens, so this cannot be an event wait.)
    session.page.wait_for_timeout((DEFAULT_GRACE_S + 1.0) * 1000)
    expect(approve).to_be_enabled()
    expect(session.cell(1).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\*\]:"))
    assert "no widget frontend" not in session.text(1), session.text(1)

    view.locator("button.ck-edit").click()
    editor = view.locator("textarea.ck-editor")
    expect(editor).to_be_visible()
    _caret_before(session, editor, len('.txt"'))
    session.type_keys('_v2"')  # a stray quote on the way: the JSON is invalid for a moment
    expect(view.locator(".ck-problem")).to_contain_text("Not valid JSON")
    expect(approve).to_be_disabled()
    session.page.keyboard.press("Backspace")
    expect(approve).to_be_enabled()
    edited = '{\n  "path": "important_v2.txt"\n}'
    expect(editor).to_have_value(edited)
    # The page asks the kernel to check the edit against the schema at a pause in typing (250 ms).
    for _ in range(50):
        if session.frames.custom("validate"):
            break
        session.page.wait_for_timeout(100)
    session.page.mouse.move(0, 0)
    session.shot(session.cell(1), "approval-edit.png")
    t1 = time.monotonic()
    approve.click()
    session.wait_done(1)
    click_to_done_s = time.monotonic() - t1

    # The saved copy replaced the view; it records the arguments that ran and who approved them.
    expect(out.locator(".claudekit-live")).to_have_count(0)
    tool = out.locator("details:has(> summary:has-text('🔧 delete_file'))")
    expect(tool.locator("summary")).to_have_text(
        "🔧 delete_file — done: deleted important_v2.txt · Approved by you (with edited arguments)"
    )
    expect(tool.locator("code")).to_have_text(edited + "\n")
    session.no_widget_errors(1)
    session.run_and_wait(2)
    expect(session.output(2)).to_contain_text("ran: ['important_v2.txt'] approved")
    # What the model was sent: the tool's result, with the note that the user edited the arguments.
    note = "Note: the user edited the arguments before approving; the tool ran with "
    note += '{"path": "important_v2.txt"}.'
    assert f"sent: {json.dumps(note + chr(10) * 2 + 'deleted important_v2.txt')}" in session.text(2)
    # One message carried the decision and the final arguments; typing sent no widget state at all.
    (decide,) = session.frames.custom("decide")
    content = decide["content"]["data"]["content"]
    assert content["action"] == "approve" and content["text"] == edited, content
    assert session.frames.custom("view"), "the page never reported the view"
    assert session.frames.custom("validate"), "the kernel was never asked to check the edit"
    assert session.frames.state_updates() == [], session.frames.state_updates()
    print(
        f"\napproval card shown {shown_s:.1f} s after Shift+Enter; click to done {click_to_done_s:.2f} s;"
        f" decision sent on {KernelFrames.route(decide)}"
    )


def test_deny_reason_reaches_the_model(session: Session, lab: Lab) -> None:
    name = approval_notebook(lab.root, "deny.ipynb", static=False)
    session.open(name)
    session.run_and_wait(0)
    session.run(1)
    view = session.output(1).locator(".claudekit-live")
    deny = view.locator("button.ck-deny")
    expect(deny).to_be_visible(timeout=CELL_S * 1000)
    reason_text = "keep my notes, they matter"
    view.locator("input.ck-reason").click()
    session.type_keys(reason_text)
    deny.click()
    session.wait_done(1)
    card = view.locator("details.ck-tool")
    expect(card.locator("summary")).to_contain_text("delete_file — denied")
    expect(card.locator("summary")).to_contain_text(f"Denied by you: {reason_text}")
    shown = card.text_content() or ""
    assert shown.count(reason_text) == 1, shown  # the card says the reason once (issue 21)
    # A decided card is one line: collapsed, no buttons, no empty reason box.
    expect(card).not_to_have_attribute("open", "")
    expect(view.locator("button.ck-approve, input.ck-reason")).to_have_count(0)
    expect(view.locator(".ck-status")).to_be_hidden()
    session.no_widget_errors(1)
    session.run_and_wait(2)
    check = session.output(2)
    expect(check).to_contain_text("ran: [] denied")
    sent = json.dumps(f"The user denied this tool call; it was not run. Reason: {reason_text}")
    assert f"sent: {sent}" in session.text(2), session.text(2)
    assert session.frames.state_updates() == []


INTERRUPT_SETUP = """\
import claudekit as ck
from claudekit.offline import OfflineBackend, Script, ToolCall, Turn
long = " ".join(f"word{i}" for i in range(4000))
slow = ck.Chat(offline=OfflineBackend(responder=Script(
    [Turn(text=long), Turn(text="second answer"), Turn(text=long)]), event_delay=0.02))

@ck.tool(approve=True)
def launch(target: str) -> str:
    \"\"\"Launch a rocket.\"\"\"
    return "launched"

waiting = ck.Chat(tools=[launch], offline=OfflineBackend(responder=Script(
    [Turn(tool_calls=[ToolCall("launch", {"target": "moon"})]), Turn(text="ok")])))"""


def _one_interrupt_line(session: Session, i: int) -> str:
    lines = session.error_lines(i)
    assert len(lines) == 1, f"cell {i}: expected one line, got {lines}"
    text = session.text(i)
    for bad in ("Traceback", "CancelledError", 'File "', "site-packages"):
        assert bad not in text, f"cell {i} shows {bad!r}:\n{text}"
    return lines[0]


def test_interrupts_show_one_line(session: Session, lab: Lab) -> None:
    name = "interrupts.ipynb"
    write_notebook(
        lab.root / name,
        [
            INTERRUPT_SETUP,
            'r1 = await slow("write a lot")',
            'r2 = await slow("next")',
            'await waiting("launch it")',
            'r3 = await slow("again")',
        ],
    )
    session.open(name)
    session.run_and_wait(0)

    # A streaming reply, interrupted from the keyboard.
    session.run(1)
    live = session.output(1).locator(".claudekit-live")
    expect(live).to_contain_text("word20", timeout=CELL_S * 1000)
    expect(live.locator(".ck-status")).to_contain_text("writing")
    session.interrupt()
    session.wait_done(1)
    line = _one_interrupt_line(session, 1)
    assert line.startswith("Interrupted: the reply stopped; the partial answer is kept"), line
    assert "%tb for details" in line
    out1 = session.output(1)
    expect(out1.locator("blockquote", has_text="interrupted")).to_contain_text("the partial answer is kept")
    expect(out1).to_contain_text("word0 word1")
    # The conversation goes on.
    session.run_and_wait(2)
    expect(session.output(2)).to_contain_text("second answer")

    # A waiting approval, interrupted.
    session.run(3)
    expect(session.output(3).locator("button.ck-approve")).to_be_visible(timeout=CELL_S * 1000)
    session.interrupt()
    session.wait_done(3)
    _one_interrupt_line(session, 3)
    expect(session.output(3).locator("summary", has_text="launch")).to_contain_text("interrupted")

    # The view's own Stop button.
    session.run(4)
    live = session.output(4).locator(".claudekit-live")
    expect(live).to_contain_text("word20", timeout=CELL_S * 1000)
    live.locator("button.ck-stop").click()
    session.wait_done(4)
    _one_interrupt_line(session, 4)
    expect(session.output(4)).to_contain_text("word0 word1")
    assert len(session.frames.custom("stop")) == 1


ORDER_SETUP = """\
import claudekit as ck
from claudekit.offline import OfflineBackend, Script, ToolCall, Turn

@ck.tool
def lookup(key: str) -> str:
    \"\"\"Look a key up.\"\"\"
    return "value-" + key

def order_chat():
    return ck.Chat(tools=[lookup], offline=OfflineBackend(responder=Script([
        Turn(text="First I look it up.", tool_calls=[ToolCall("lookup", {"key": "k1"})]),
        Turn(text="It costs $5 and $7.\\n\\n```python\\nprint('cut <b>here</b>')\\n"),
    ])))"""


def _in_order(root: Locator, texts: list[str]) -> None:
    for t in texts:  # rendered (the Markdown renderer works asynchronously)
        expect(root).to_contain_text(t)
    positions = root.evaluate("(el, texts) => texts.map((t) => el.textContent.indexOf(t))", texts)
    found = list(zip(texts, positions, strict=True))
    assert all(p >= 0 for p in positions) and positions == sorted(positions), found


def test_order_and_unclosed_fence(session: Session, lab: Lab) -> None:
    name = "order.ipynb"
    write_notebook(
        lab.root / name,
        [
            ORDER_SETUP,
            'ck.configure_rendering(static=False)\nlive = await order_chat()("go")',
            'ck.configure_rendering(static=True)\nsaved = await order_chat()("go")',
        ],
    )
    session.open(name)
    session.run_and_wait(0)
    expected = ["First I look it up.", "🔧 lookup — done: value-k1", "It costs $5 and $7.", "print('cut"]
    session.run_and_wait(1)
    view = session.output(1).locator(".claudekit-live")
    _in_order(view, expected)
    expect(view.locator("pre code", has_text="print('cut <b>here</b>')")).to_have_count(1)
    session.run_and_wait(2)
    saved = session.output(2)
    _in_order(saved, [*expected, "claudekit · "])
    # The fence cut off by the end of the answer is closed before the footer: the footer is rendered, not
    # shown as literal HTML inside the code block; the answer's dollars are not typeset.
    expect(saved.locator("sub", has_text="claudekit · ")).to_have_count(1)
    expect(saved.locator("pre code.language-python")).to_have_text("print('cut <b>here</b>')\n")
    assert "<sub" not in session.text(2) and "tex2jax_ignore" not in session.text(2)
    expect(saved.locator("mjx-container")).to_have_count(0)
    expect(saved).to_contain_text("It costs $5 and $7.")
    session.no_widget_errors(1)
    session.no_widget_errors(2)


MIN_CONTRAST = 4.5  # WCAG 2 AA for normal-size text; every claudekit text is normal size or smaller
MIN_GRAPHIC = 3.0  # WCAG 2 AA for non-text marks (the status dot, ✔ and ✖): 1.4.11


def _too_faint(m: dict[str, Any]) -> bool:
    return bool(m["ratio"] < (MIN_CONTRAST if re.search(r"\w", m["text"]) else MIN_GRAPHIC))


THEME_TOOLS = """
@ck.tool
def broken_gauge() -> str:
    \"\"\"Read the broken gauge.\"\"\"
    raise RuntimeError("the gauge is broken")

chat = ck.Chat(tools=[read_clock, delete_file, broken_gauge], thinking=1024)
reply = await chat("Use delete_file for path notes.txt, and broken_gauge")"""
THEME_ERROR = 'await ck.Chat(model="claude-no-such-model")("hello")'
# Two cached turns: the second footer reads "$… (saved $…)", two dollar signs that MathJax must not take
# for inline math; the answer has dollars too.
THEME_STATIC = f"""\
ck.configure_rendering(static=True)
quick = ck.Chat(thinking=1024, system="Notes on the sales data, $5 and $7 a unit. " * 200)
first = await quick("{QUICKSTART_PROMPT}")
second = await quick("And the prices, $5 and $7?")"""


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_readable_in_light_and_dark_themes(session: Session, lab: Lab, theme: str) -> None:
    """Every text claudekit draws has WCAG AA contrast (4.5:1; marks 3:1) in both stock themes.

    Measured on the live view (awaiting approval, then finished with a tool error), the saved copy and
    the usage table.
    """
    slug = theme.split()[-1].lower()
    name = f"theme-{slug}.ipynb"
    write_notebook(
        lab.root / name,
        [
            TOOLS_CELL.format(configure="ck.configure_rendering(static=False)") + THEME_TOOLS,
            THEME_ERROR,
            THEME_STATIC,
            "chat.usage",
        ],
    )
    with lab_theme(lab, theme):
        session.open(name)
    shown = session.page.evaluate("document.body.dataset.jpThemeName")
    assert shown == theme, f"JupyterLab shows theme {shown!r}, not {theme!r}"
    bad: dict[str, list[dict[str, Any]]] = {}

    def measure(what: str, root: Locator) -> None:
        measured = session.page.evaluate(CONTRAST_JS, root.element_handle())
        assert len(measured) >= 3, f"{what}: too little text measured: {measured}"
        print(f"\n{theme}, {what}: {len(measured)} texts, lowest {min(m['ratio'] for m in measured):.2f}:1")
        bad[what] = [m for m in measured if _too_faint(m)]

    session.run(0)
    view = session.output(0).locator(".claudekit-live")
    approve = view.locator("button.ck-approve")
    expect(approve).to_be_visible(timeout=CELL_S * 1000)
    measure("live view awaiting approval", view)
    approve.click()
    session.wait_done(0)
    expect(view.locator("details.ck-tool", has_text="delete_file")).to_contain_text("Approved by you")
    expect(view.locator("details.ck-tool", has_text="broken_gauge")).to_contain_text("error")
    view.locator("details.ck-tool summary").first.click()  # open a finished card: its body is measured too
    measure("finished live view with a tool error", view)
    session.run(1)
    session.wait_done(1)
    (line,) = session.error_lines(1)
    assert "NotFoundError" in line or "BadRequestError" in line, line
    session.run_and_wait(2)
    expect(session.output(2).locator("details summary", has_text="Thinking")).to_have_count(2)
    measure("saved copy", session.output(2))
    expect(session.output(2)).to_contain_text("(saved $")
    session.run_and_wait(3)
    measure("usage log", session.output(3).locator(".claudekit-usage-log"))
    expect(session.output(3)).to_contain_text("(without caching $")
    # Costs, reasoning, tool results and (by default) the answer's own dollars are text, not math.
    for i in (0, 2, 3):
        expect(session.output(i).locator("mjx-container")).to_have_count(0)
    static = session.output(2)
    static.locator("details summary", has_text="Thinking").last.click()
    expect(static.locator("details[open]")).to_contain_text("And the prices, $5 and $7?")
    session.shot(session.panel, f"theme-{slug}.png")
    failures = {k: v for k, v in bad.items() if v}
    assert not failures, f"text under {MIN_CONTRAST}:1 contrast in {theme}: " + json.dumps(failures, indent=1)


CODE_SETUP = """\
%load_ext claudekit
import claudekit as ck, claudekit.notebook as nb
from claudekit.offline import OfflineBackend, Script, Turn

LONG = "Two ways:\\n\\n```python\\nfirst = 1\\n```\\n\\n```python\\nsecond = 2\\n```\\n\\n" + " ".join(
    f"word{i}" for i in range(800)
)
PLOT = "Here:\\n\\n```python\\nsales.plot()\\n```"
backend = OfflineBackend(responder=Script([Turn(text=LONG), Turn(text=PLOT)]), event_delay=0.01)
chat = nb.use_chat(ck.Chat(offline=backend))"""


def _source(cell: Locator) -> str:
    return cell.locator(".cm-content").inner_text().strip()


def test_code_block_copy_insert_below_and_code_cells(session: Session, lab: Lab) -> None:
    """A person clicks Copy and Insert below on code blocks while the answer still streams; a --code
    cell's answer: JupyterLab makes each a new cell below (the set_next_input payload), never run."""
    name = "code.ipynb"
    write_notebook(lab.root / name, [CODE_SETUP, "%%claude\ntwo ways please", "%%claude --code\nplot sales"])
    session.page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url)
    session.open(name)
    session.run_and_wait(0)
    session.run(1)
    view = session.output(1).locator(".claudekit-live")
    blocks = view.locator(".ck-code")
    expect(blocks).to_have_count(2, timeout=CELL_S * 1000)
    expect(view.locator(".ck-status")).to_be_visible()  # still streaming: the clicks land mid-reply
    blocks.nth(0).locator("button.ck-copy").click()
    expect(blocks.nth(0).locator("button.ck-copy")).to_have_text("Copied ✓")
    assert session.page.evaluate("navigator.clipboard.readText()") == "first = 1"
    insert = blocks.nth(1).locator("button.ck-insert")
    insert.click()
    expect(insert).to_have_text("Goes below ✓")
    assert view.locator(".ck-status").is_visible(), "the reply ended before the clicks: make it longer"
    session.wait_done(1)
    # The new cell sits right below, holding exactly the block's code; it was not run (no count).
    expect(session.cells).to_have_count(4)
    assert _source(session.cell(2)) == "second = 2"
    expect(session.cell(2).locator(".jp-InputPrompt")).to_have_text(re.compile(r"^\[ \]:$"))
    assert _source(session.cell(3)) == "%%claude --code\nplot sales"
    session.run(3)
    session.wait_done(3)
    expect(session.output(3)).to_contain_text("is in a new cell below, not run")
    # Shift+Enter on the last cell also adds an empty cell, as it always does: the code is right below.
    expect(session.cells).to_have_count(6)
    assert [_source(session.cell(i)) for i in (4, 5)] == ["sales.plot()", ""]
    session.no_widget_errors(1)
    session.no_widget_errors(3)
