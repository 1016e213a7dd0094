"""A new user's first hour, in real kernels (issue 28): what the README shows draws once, options leave the
prompt alone, a misspelt subcommand never stops Run All, and every mistake is one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.notebook.kernel import ROOT, Kernel, started_kernel, value

WIDGET = "application/vnd.jupyter.widget-view+json"

SETUP = """
%load_ext claudekit
import claudekit as ck
import claudekit.notebook as nb
from claudekit.offline import Fault, OfflineBackend, Script, Turn

def get_weather(city: str) -> str:
    '''Current weather for a city.'''
    return f"sunny in {city}"
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with started_kernel(SETUP) as k:
        yield k


def test_iterating_the_events_yourself_draws_nothing(kernel: Kernel) -> None:
    """The README's Quickstart loop prints the answer once: claudekit adds no live view of its own."""
    kernel.ok("chat = ck.Chat(offline=OfflineBackend())")
    run = kernel.ok(
        "async for event in chat.stream('And of Spain?'):\n"
        "    if isinstance(event, ck.TextDelta):\n"
        "        print(event.text, end='')\n"
    )
    assert "And of Spain?" in run.stdout
    assert run.displays == [] and not run.of_type("comm_open", "update_display_data")
    # Asked for, the reply is drawn too.
    drawn = kernel.ok("async for event in chat.stream('Again?', render=True):\n    pass\n")
    assert any("Again?" in d.get("text/html", "") for d in drawn.displays)


def test_tools_option_leaves_the_prompt_words(kernel: Kernel) -> None:
    run = kernel.ok("%claude --chat weather --tools get_weather What's the weather?")
    assert "What's the weather?" in "".join(d.get("text/html", "") for d in run.displays)
    assert value(kernel, "[t.name for t in nb.chats['weather'].tools]") == ["get_weather"]
    sent = "nb.chats['weather'].history.messages[0]['content'][0]['text']"
    assert value(kernel, sent) == "What's the weather?"
    kernel.ok("city = 'Paris'")  # a variable, not a tool: the prompt starts there
    kernel.ok("%claude --chat weather2 --tools get_weather city weather?")
    assert value(kernel, "[t.name for t in nb.chats['weather2'].tools]") == ["get_weather"]
    assert value(kernel, "nb.chats['weather2'].history.messages[0]['content'][0]['text']") == "city weather?"
    typo = kernel.execute("%claude --chat weather --tools get_wether What's the weather?")
    assert typo.status == "error" and "'get_wether' not defined" in typo.stderr
    assert len(typo.stderr.strip().splitlines()) == 1


def test_in_n_sends_what_the_user_typed(kernel: Kernel) -> None:
    typed = kernel.ok("%claude --chat echo hello there")
    n = typed.reply["content"]["execution_count"]
    kernel.ok(f"%%claude --chat echo\nExplain this cell: {{In[{n}]}}\n")
    sent = value(kernel, "nb.chats['echo'].history.messages[-2]['content'][0]['text']")
    assert isinstance(sent, str) and sent.rstrip() == "Explain this cell: %claude --chat echo hello there"


def test_history_reads_as_text_too(kernel: Kernel) -> None:
    kernel.ok("%claude --chat talk tell me something")
    result = kernel.ok("%claude --chat talk history").results[0]
    assert "<b>user</b>:" in result["text/html"] and "tell me something" in result["text/html"]
    assert result["text/plain"].startswith("talk ·") and "tell me something" in result["text/plain"]


def test_usage_of_a_chat_that_does_not_exist_makes_none(kernel: Kernel) -> None:
    for command in ("usage", "plot", "history"):
        run = kernel.ok(f"%claude --chat nobody {command}")
        assert "no calls yet" in run.stdout and run.stderr == ""
    assert value(kernel, "'nobody' in nb.chats") is False


def test_a_failed_reply_says_its_error_once(kernel: Kernel) -> None:
    kernel.ok(
        "broken = ck.Chat(offline=OfflineBackend(Script([Turn(text='half an answer here', "
        "fault=Fault.error_event(after_events=4))])))"
    )
    run = kernel.execute("await broken('q')")
    assert run.status == "error" and len(run.errors[0]["traceback"]) == 1
    assert "OverloadedError" in run.errors[0]["traceback"][0]
    (saved,) = [d for d in run.displays if "text/plain" in d]
    assert "half an" in saved["text/plain"] and "overloaded" not in saved["text/plain"].lower()


def test_a_bad_chat_is_one_line_without_load_ext() -> None:
    with started_kernel("import claudekit as ck") as k:
        run = k.execute("ck.Chat(thinking=2048, max_tokens=1000)")
    assert run.status == "error"
    (err,) = run.errors
    assert err["ename"] == "ConfigError" and len(err["traceback"]) == 1
    assert "raise max_tokens above 2048" in err["traceback"][0]


HEADLESS = [
    "import time\n"
    "import claudekit as ck\n"
    "from claudekit.offline import OfflineBackend, Script, Turn, ToolCall",
    "@ck.tool(approve=True)\n"
    "def delete_rows(table: str) -> str:\n"
    "    '''Delete rows.'''\n"
    "    return 'deleted'\n"
    "calls = [Turn(tool_calls=[ToolCall('delete_rows', {'table': 's'})]), Turn(text='Nothing deleted.')]\n"
    "chat = ck.Chat(offline=OfflineBackend(Script(calls)), tools=[delete_rows])",
    "t0 = time.perf_counter()\n"
    "reply = await chat('Clean up the 2019 rows')\n"
    "waited = time.perf_counter() - t0",
    "print(f'{waited:.1f}', reply.tool_calls[0].decision)",
]


def test_headless_run_decides_approval_at_once_and_says_how_to_change_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nbconvert/nbval/papermill (allow_stdin false): no page can show the card, so no grace period is
    waited (here 30 s, so that a wait cannot pass unnoticed), no view is drawn, nothing empty is left."""
    from nbclient import NotebookClient

    for name in [k for k in os.environ if k.startswith(("CLAUDEKIT_", "PYTEST_"))]:
        if name != "CLAUDEKIT_HOME":
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLAUDEKIT_APPROVAL_GRACE", "30")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in HEADLESS]
    started = time.monotonic()
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert time.monotonic() - started < 25
    waited, decision = nb.cells[3].outputs[0]["text"].split()
    assert float(waited) < 10 and decision == "denied"
    run = nb.cells[2].outputs
    notice = "".join(o.get("text", "") for o in run if o.get("name") == "stderr")
    assert 'Chat(approval="auto")' in notice and "CLAUDEKIT_APPROVAL=auto" in notice
    displays = [o for o in run if o["output_type"] == "display_data"]
    assert len(displays) == 1 and "text/html" in displays[0]["data"]  # the saved copy, nothing empty


SCRIPT = """
import asyncio
import claudekit as ck
from claudekit.offline import Fault, OfflineBackend, Script

async def main():
    chat = ck.Chat(offline=OfflineBackend(Script([Fault.status(500)])), max_retries=0)
    await chat("hi")

asyncio.run(main())
"""


def run_python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDEKIT_", "PYTEST_"))}
    env["CLAUDEKIT_HOME"] = os.environ["CLAUDEKIT_HOME"]
    env.pop("ANTHROPIC_API_KEY", None)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_script_that_fails_says_so_in_one_plain_line_first(tmp_path: Path) -> None:
    (tmp_path / "ask.py").write_text(SCRIPT)
    done = run_python("ask.py", cwd=tmp_path)
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if not ln.startswith("claudekit: no ANTHROPIC_API_KEY")]
    assert lines[0].startswith("claudekit: ServerError: API error (HTTP 500)"), done.stderr[:500]
    assert lines[1] == "Traceback (most recent call last):"


def test_offline_server_help_is_plain_text(tmp_path: Path) -> None:
    done = run_python("-m", "claudekit.offline", "--help", cwd=tmp_path)
    assert done.returncode == 0 and "127.0.0.1" in done.stdout
    assert "``" not in done.stdout


def test_the_recording_notebook_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running notebooks/04 (as nbval does in the test run) used to leave build/demo-session.jsonl."""
    from nbclient import NotebookClient

    for name in [k for k in os.environ if k.startswith(("CLAUDEKIT_", "PYTEST_"))]:
        if name != "CLAUDEKIT_HOME":
            monkeypatch.delenv(name)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    nb = nbformat.read(ROOT / "notebooks" / "04-offline-and-recording.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert list(tmp_path.iterdir()) == []


def test_headless_guess_can_be_overridden() -> None:
    """CLAUDEKIT_HEADLESS=0: a client that sends allow_stdin false but shows widgets (Voilà) gets the view."""
    with started_kernel("import claudekit as ck", env={"CLAUDEKIT_HEADLESS": "0"}) as k:
        k.kc.allow_stdin = False
        k.ok("from claudekit.offline import OfflineBackend\nchat = ck.Chat(offline=OfflineBackend())")
        run = k.ok("import asyncio\nr = await chat('hi')")
    assert any(WIDGET in d for d in run.displays)


TO_CELL = [
    "import claudekit as ck\n"
    "from claudekit.offline import OfflineBackend, Script, Turn\n"
    "answer = Turn(text='Try:\\n```python\\nx = 1\\n```')\n"
    "chat = ck.Chat(offline=OfflineBackend(Script([answer, answer])))",
    "reply = await chat('code please')",
    "reply.to_cell()",
]


def test_to_cell_headless_says_no_cell_was_added(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nbconvert/nbval ignore requests for a new cell: the note must not claim one is below."""
    from nbclient import NotebookClient

    for name in [k for k in os.environ if k.startswith(("CLAUDEKIT_", "PYTEST_"))]:
        if name != "CLAUDEKIT_HOME":
            monkeypatch.delenv(name)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in TO_CELL]
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert len(nb.cells) == len(TO_CELL)  # indeed no cell was added
    note = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert "new cell below" not in note and "no cell was added" in note and "headless" in note, note


def test_a_script_without_a_key_says_so_in_one_plain_line_first(tmp_path: Path) -> None:
    """backend="anthropic" refuses the offline fallback: Chat() raises MissingAPIKeyError at the top level."""
    (tmp_path / "nokey.py").write_text("import claudekit as ck\nchat = ck.Chat(backend='anthropic')\n")
    done = run_python("nokey.py", cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0].startswith("claudekit: MissingAPIKeyError: no Anthropic API key found"), done.stderr[:500]
    assert "set ANTHROPIC_API_KEY" in lines[0] and lines[1] == "Traceback (most recent call last):"
    # An error the script catches says nothing.
    (tmp_path / "caught.py").write_text(
        "import claudekit as ck\ntry:\n    ck.Chat(backend='anthropic')\nexcept ck.MissingAPIKeyError:\n"
        "    print('handled')\n"
    )
    quiet = run_python("caught.py", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stdout == "handled\n" and quiet.stderr == ""
