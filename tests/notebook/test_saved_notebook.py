"""A notebook with a %%claude cell, executed and saved: it shows the answer with no kernel and no widget
state (nbconvert HTML), and strict nbval re-runs it against the saved outputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from tests.notebook.kernel import ROOT

SETUP = """\
import os
os.environ.pop("CLAUDEKIT_RENDER", None)
%load_ext claudekit.notebook
import claudekit, claudekit.notebook as nb
from claudekit.offline import OfflineBackend, Script, Turn
_ = nb.use_chat(claudekit.Chat(offline=OfflineBackend(responder=Script(
    [Turn(text="Sunny in **{city}**.\\n\\n| day | °C |\\n|---|---|\\n| Mon | 21 |",
          thinking="Check the forecast.")]
)), thinking=2048))
city = "Paris"
"""


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """``python -m <args>`` in a clean environment (no CLAUDEKIT_/PYTEST_ settings, no API key)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDEKIT_", "PYTEST_"))}
    env["CLAUDEKIT_HOME"] = os.environ["CLAUDEKIT_HOME"]  # the store writes to the session's temporary home
    env.pop("ANTHROPIC_API_KEY", None)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return finish(start(*args, cwd=cwd))


def test_saved_notebook_renders_without_kernel_and_passes_strict_nbval(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell("%%claude\nWeather in {city}?"),
        nbformat.v4.new_code_cell("print(_claude.status)"),
    ]
    path = tmp_path / "weather.ipynb"
    nbformat.write(nb, path)
    done = run("jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]

    saved = nbformat.read(path, 4)
    outputs = saved.cells[1].outputs
    # nbconvert shows no page (it sends allow_stdin: false), so no live view is drawn: the saved copy is
    # the cell's one output, with no emptied view before it (in JupyterLab the view's own output becomes
    # the saved copy).
    assert [o.output_type for o in outputs] == ["display_data"]
    md = outputs[0].data["text/html"]
    assert "Sunny in <strong>{city}</strong>." in md and "<td>21</td>" in md
    assert "<summary>Thinking</summary>" in md and "Check the forecast." in md

    # The HTML export and the nbval re-run only read the saved notebook: they run side by side.
    converting = start("jupyter", "nbconvert", "--to", "html", str(path), cwd=tmp_path)
    # The footer's latency differs between runs; the repo's sanitize file (what CI uses) masks it.
    sanitize = str(ROOT / "notebooks" / "nbval-sanitize.cfg")
    checking = start(
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--nbval",
        "--nbval-sanitize-with",
        sanitize,
        str(path),
        cwd=tmp_path,
    )
    html, check = finish(converting), finish(checking)
    assert html.returncode == 0, html.stderr[-2000:]
    page = (tmp_path / "weather.html").read_text()
    assert "<strong>{city}</strong>" in page  # the Markdown was rendered
    assert "<td>21</td>" in page
    assert '<details class="tex2jax_ignore mathjax_ignore">' in page

    assert check.returncode == 0, check.stdout[-3000:]
    assert "3 passed" in check.stdout
