"""The live view and the approval widget in a real browser: JupyterLab, headless Chromium, Playwright.

One JupyterLab server (the venv's own, on 127.0.0.1, a token, root_dir a tmp dir, autosave off) and one
Chromium serve the module. Each test writes a notebook, opens it, runs its cells as a person would (click
the editor, Shift+Enter) and asserts on the DOM:

- ``test_quickstart_reply``: a plain ``await ck.Chat(thinking=1024)(...)`` ends with the static rendering
  (thinking in a ``<details>``, the answer) and no widget error;
- ``test_approve_in_browser``: the live view shows the thinking accordion, a tool card and the approval
  buttons; the prompt outlives the unattended grace period (so the frontend reported its view); a click on
  Approve reaches the cell (JupyterLab 4.6 sends it through a kernel subshell), the tool runs once and
  its result appears in the card;
- ``test_deny_in_browser``: a reason typed in the card and a click on Deny: the tool never runs, the model
  is told the reason, and the live view is replaced by its static rendering.

Screenshots go to each test's ``tmp_path``; with ``CLAUDEKIT_UPDATE_SCREENSHOTS=1`` they are also copied to
``docs/screenshots/`` (quickstart.png, approval.png). Needs Debian's chromium (``apt-get install chromium``,
never a Playwright browser download) and the Python packages ``playwright`` and ``jupyterlab``; without
chromium or playwright the tests skip and say so.
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

from claudekit._approval import DEFAULT_GRACE_S  # noqa: E402

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
reply = await chat("Use delete_file for path notes.txt")"""

CHECK_CELL = """\
print("ran:", ran, reply.tool_calls[0].decision)
print("result:", reply.tool_calls[0].result)
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
    # static=True (the default) replaces it by the static rendering when the reply ends.
    configure = "" if static else "ck.configure_rendering(static=False)"
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


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("jupyterlab")
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
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

    def clicks(self) -> list[dict[str, Any]]:
        return self.comm_msgs(
            lambda d: d.get("method") == "custom" and d.get("content") == {"event": "click"}
        )

    def view_counts(self) -> list[dict[str, Any]]:
        return self.comm_msgs(
            lambda d: d.get("method") == "update" and "_view_count" in (d.get("state") or {})
        )

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
    # The live view was replaced by the static rendering: thinking in <details>, the answer, the footer.
    expect(out.locator("details summary", has_text="Thinking")).to_be_visible()
    expect(out).to_contain_text(f"(offline) You asked: “{QUICKSTART_PROMPT}”")
    expect(out).to_contain_text("claudekit · claude-")
    assert out.locator(".claudekit-view").count() == 0, "the live view was not replaced when the reply ended"
    session.no_widget_errors(1)
    out.locator("details summary", has_text="Thinking").click()
    expect(out.locator("details[open]")).to_contain_text("no model is available offline")
    session.cell(2).locator(".jp-InputPrompt").click()  # the new empty cell: cell 1 shown unselected
    session.page.mouse.move(0, 0)
    session.shot(session.cell(1), "quickstart.png")


def test_approve_in_browser(session: Session, lab: Lab) -> None:
    name = approval_notebook(lab.root, "approve.ipynb", static=False)
    session.open(name)
    session.run_and_wait(0)
    session.run(1)
    out = session.output(1)
    approve = out.locator(".widget-button", has_text=re.compile(r"^Approve$"))
    t0 = time.monotonic()
    expect(approve).to_be_visible(timeout=CELL_S * 1000)
    shown_s = time.monotonic() - t0

    # The live view, not a placeholder: header, thinking accordion, a tool card with the approval card.
    view = out.locator(".claudekit-view")
    expect(view).to_have_count(1)
    expect(view).to_contain_text("awaiting approval")
    expect(view.locator(".widget-accordion")).to_contain_text("Thinking")
    card = view.locator(".claudekit-tool-card")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("delete_file")
    expect(card).to_contain_text("Run it with these arguments?")
    # The arguments are shown once, in the card, not again in the approval part.
    expect(card.locator("pre:visible", has_text='"path": "notes.txt"')).to_have_count(1)
    for label in ("Approve", "Deny", "Edit", "Always allow this tool"):
        expect(card.locator(".widget-button", has_text=re.compile(rf"^{label}$"))).to_be_enabled()
    session.no_widget_errors(1)
    session.shot(session.cell(1), "approval.png")

    # Past the grace period the prompt must still wait for a person: the frontend reported its view
    # (ipywidgets' _view_count). Had it not, the unattended fallback would have denied the call by now.
    # This wait cannot be an event wait: what is checked is that nothing happens.
    session.page.wait_for_timeout((DEFAULT_GRACE_S + 1.5) * 1000)
    expect(approve).to_be_enabled()
    expect(card).to_contain_text("tool · awaiting approval")
    expect(session.cell(1).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\*\]:"))
    assert "no widget frontend" not in session.text(1), session.text(1)

    t1 = time.monotonic()
    approve.click()
    # The click reached the cell: the tool ran and its result is in the card; the reply finished.
    expect(card).to_contain_text("→ deleted notes.txt")
    expect(card).to_contain_text("Approved by you")
    expect(card).to_contain_text("tool · done")
    session.wait_done(1)
    click_to_done_s = time.monotonic() - t1
    expect(approve).to_be_disabled()
    expect(view).to_contain_text("Here is what the tools reported: delete_file returned “deleted notes.txt”")
    expect(view.locator(".widget-html").first).to_contain_text("● done")
    session.no_widget_errors(1)

    session.run_and_wait(2)
    expect(session.output(2)).to_contain_text("ran: ['notes.txt'] approved")
    assert "result: deleted notes.txt" in session.text(2)
    # How the frontend's messages travelled (JupyterLab 4.6 sends comm messages on a kernel subshell).
    clicks, views = session.frames.clicks(), session.frames.view_counts()
    assert len(clicks) == 1, f"expected one click message, the page sent {len(clicks)}"
    assert views, "the page never reported a widget view (_view_count)"
    print(
        f"\napproval card shown {shown_s:.1f} s after Shift+Enter; click to done {click_to_done_s:.2f} s;"
        f" click sent on {KernelFrames.route(clicks[0])}, _view_count on {KernelFrames.route(views[0])}"
    )


def test_deny_in_browser(session: Session, lab: Lab) -> None:
    name = approval_notebook(lab.root, "deny.ipynb", static=True)
    session.open(name)
    session.run_and_wait(0)
    session.run(1)
    out = session.output(1)
    deny = out.locator(".widget-button", has_text=re.compile(r"^Deny$"))
    expect(deny).to_be_visible(timeout=CELL_S * 1000)
    expect(out.locator(".claudekit-view .claudekit-tool-card")).to_contain_text("delete_file")
    session.no_widget_errors(1)

    # A reason typed in the card travels with the denial (the Text widget's value reaches the kernel first).
    reason = out.locator(".widget-text input[placeholder^='reason for denying']")
    reason.fill("keep my notes")
    reason.press("Tab")
    deny.click()
    session.wait_done(1)
    # The live view was replaced by the static rendering, which records the denial.
    expect(out.locator(".claudekit-view")).to_have_count(0)
    expect(out).to_contain_text("delete_file — denied")
    session.no_widget_errors(1)

    session.run_and_wait(2)
    check = session.output(2)
    expect(check).to_contain_text("ran: [] denied")
    text = session.text(2)
    assert "keep my notes" in text, f"the reason did not reach the model:\n{text}"


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
THEME_ERROR = """\
try:
    await ck.Chat(model="claude-no-such-model")("hello")
except ck.ClaudekitError as e:
    print(type(e).__name__)"""
# Two cached turns: the second footer reads "$… (saved $…)", two dollar signs that MathJax must not take
# for inline math; the tool result has dollars too.
THEME_STATIC = f"""\
ck.configure_rendering(static=True)
quick = ck.Chat(thinking=1024, system="Notes on the sales data, $5 and $7 a unit. " * 200)
await quick("{QUICKSTART_PROMPT}")
await quick("And the prices, $5 and $7?")"""


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_readable_in_light_and_dark_themes(session: Session, lab: Lab, theme: str) -> None:
    """Every text claudekit draws has WCAG AA contrast (4.5:1; marks 3:1) in both stock themes.

    Measured on the live view (awaiting approval, then finished with a tool error and a denial-free
    approval), an API error, the static rendering and the usage table.
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
    view = session.output(0).locator(".claudekit-view")
    approve = view.locator(".widget-button", has_text=re.compile(r"^Approve$"))
    expect(approve).to_be_visible(timeout=CELL_S * 1000)
    measure("live view awaiting approval", view)
    approve.click()
    session.wait_done(0)
    expect(view).to_contain_text("Approved by you")
    expect(view.locator(".claudekit-tool-card", has_text="broken_gauge")).to_contain_text("error")
    measure("finished live view with a tool error", view)
    session.run_and_wait(1)
    expect(session.output(1)).to_contain_text("Error")
    measure("API error", session.output(1).locator(".claudekit-view"))
    session.run_and_wait(2)
    expect(session.output(2).locator("details summary", has_text="Thinking")).to_have_count(2)
    measure("static rendering", session.output(2))
    expect(session.output(2)).to_contain_text("(saved $")
    session.run_and_wait(3)
    measure("usage log", session.output(3).locator(".claudekit-usage-log"))
    expect(session.output(3)).to_contain_text("(without caching $")
    # Costs, reasoning and tool results are text, not math: JupyterLab typesets $…$ pairs in HTML and
    # Markdown outputs unless claudekit keeps MathJax out. (The answer is the model's Markdown: there
    # "$5 and $7" renders as a Markdown cell would.)
    for i in (0, 1, 3):
        expect(session.output(i).locator("mjx-container")).to_have_count(0)
    static = session.output(2)
    expect(static.locator("details mjx-container, sub mjx-container")).to_have_count(0)
    static.locator("details summary", has_text="Thinking").last.click()
    expect(static.locator("details[open]")).to_contain_text("And the prices, $5 and $7?")
    session.shot(session.panel, f"theme-{slug}.png")
    failures = {k: v for k, v in bad.items() if v}
    assert not failures, f"text under {MIN_CONTRAST}:1 contrast in {theme}: " + json.dumps(failures, indent=1)
