"""Code-block extraction and secret redaction, without a kernel."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import types
from typing import Any

import pytest

import claudekit as ck
from claudekit.notebook._code import code_blocks, pick_block
from claudekit.notebook._redact import Redactor, looks_secret
from claudekit.offline import OfflineBackend, Script, Turn
from tests.notebook.helpers import FakeWidget

# -- code blocks --------------------------------------------------------------------------------------------

ANSWER = """Two ways.

```python
import math
print(math.pi)
```

Or in the shell:

~~~bash
echo hi
~~~

````
```python
nested = True
```
````
"""


def test_fenced_blocks_in_order_with_fences_stripped() -> None:
    blocks = code_blocks(ANSWER)
    assert [(b.language, b.code) for b in blocks] == [
        ("python", "import math\nprint(math.pi)"),
        ("bash", "echo hi"),
        ("", "```python\nnested = True\n```"),  # a longer fence keeps shorter ones as content
    ]


def test_indented_fence_is_dedented_and_unclosed_block_runs_to_the_end() -> None:
    assert code_blocks("  ```py\n  x = 1\n    y = 2\n  ```") == code_blocks("```py\nx = 1\n  y = 2\n```")
    (cut,) = code_blocks("Here:\n```python\nfor i in range(3):\n    print(i)")
    assert cut.code == "for i in range(3):\n    print(i)"


def test_inline_backticks_are_not_a_fence() -> None:
    assert code_blocks("Use ```x``` inline, or `y`.") == []


def test_default_pick_is_the_first_python_block_and_n_is_one_based() -> None:
    text = "```bash\nls\n```\n```python\nx = 1\n```\n```python\ny = 2\n```"
    chosen, note = pick_block(text)
    assert chosen is not None and chosen.code == "x = 1"
    assert note.startswith("code block 2 of 3 (1 line) is in a new cell below, not run")
    third, _ = pick_block(text, 3)
    assert third is not None and third.code == "y = 2"
    missing, why = pick_block(text, 4)
    assert missing is None and "has 3 code blocks; there is no block 4" in why
    none, why = pick_block("no code here")
    assert none is None and "no fenced code block" in why


def test_to_cell_outside_ipython_is_a_one_line_error() -> None:
    """In a plain Python process (no IPython shell) to_cell says so in one line."""
    script = (
        "import asyncio, claudekit as ck\n"
        "from claudekit.offline import OfflineBackend, Script, Turn\n"
        "chat = ck.Chat(offline=OfflineBackend(responder=Script([Turn(text='```python\\nx = 1\\n```')])), "
        "render=False)\n"
        "reply = asyncio.run(chat('code please'))\n"
        "try:\n    reply.to_cell()\nexcept ck.ConfigError as err:\n    print('ERR', err)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    lines = out.stdout.strip().splitlines()
    assert lines[-1].startswith("ERR reply.to_cell() works inside IPython or Jupyter only"), out
    assert "Traceback" not in out.stdout + out.stderr


def test_to_cell_without_the_notebook_layer_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    from claudekit import _seams as _render

    monkeypatch.setattr(_render, "_inserter", None)
    chat = ck.Chat(
        offline=OfflineBackend(responder=Script([Turn(text="```python\nx = 1\n```")])), render=False
    )
    reply = asyncio.run(chat("code"))
    with pytest.raises(ck.ConfigError) as info:
        reply.to_cell()
    assert "needs claudekit's notebook layer" in str(info.value) and "\n" not in str(info.value)


# -- secrets ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "ANTHROPIC_API_KEY",
        "authToken",
        "db_password",
        "SECRET",
        "aws_secret_access_key",
        "PGPASSWORD",
    ],
)
def test_secret_looking_names(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize("name", ["key", "keys", "author", "monkey", "df", "sales"])
def test_ordinary_names(name: str) -> None:
    assert not looks_secret(name)


def test_key_shaped_values_are_redacted_anywhere() -> None:
    redact = Redactor(environ={})
    text = (
        "header sk-ant-api03-abcdefghij0123456789 and ghp_"
        + "a" * 36
        + " and AKIA"
        + "B" * 16
        + " and Bearer abcdefghijklmnopqrstuvwxyz"
    )
    out = redact(text)
    assert "sk-ant" not in out and "ghp_" not in out and "AKIA" not in out and "abcdefghijklmnop" not in out
    assert out.count("[redacted: looks like a key]") == 4 and redact.count == 4


def test_values_of_secret_environment_variables_are_redacted() -> None:
    redact = Redactor(
        environ={"SERVICE_PASSWORD": "correct-horse-battery", "HOME": "/home/ada", "DEBUG": "1"}
    )
    out = redact("conn = 'correct-horse-battery' in /home/ada with DEBUG=1")
    assert out == "conn = '[redacted: value of $SERVICE_PASSWORD]' in /home/ada with DEBUG=1"


def test_literals_assigned_to_secret_names_are_redacted_in_source() -> None:
    redact = Redactor(environ={})
    src = (
        'api_key = "abc123"\n'
        "os.environ['DB_TOKEN'] = 'tok-1'\n"
        'cfg = {"password": "hunter2", "user": "ada"}\n'
        'if passwd == "letmein": pass\n'
        'name = "not secret"\n'
    )
    assert redact(src) == (
        'api_key = "[redacted]"\n'
        "os.environ['DB_TOKEN'] = '[redacted]'\n"
        'cfg = {"password": "[redacted]", "user": "ada"}\n'
        'if passwd == "[redacted]": pass\n'
        'name = "not secret"\n'
    )


# -- the live view's Insert below -------------------------------------------------------------------------


class Shell:
    def __init__(self) -> None:
        self.inputs: list[tuple[str, bool]] = []

    def set_next_input(self, text: str, replace: bool = False) -> None:
        self.inputs.append((text, replace))


def live_view(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, FakeWidget, Shell]:
    import IPython

    from claudekit.notebook._widget import WidgetRenderer

    shell = Shell()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    made: list[FakeWidget] = []

    def factory(on_message: Any) -> FakeWidget:
        made.append(FakeWidget(on_message))
        return made[-1]

    r = WidgetRenderer(15, display=lambda *a, **k: None, widget_factory=factory, static=False)
    r.start({"model": "m"})
    return r, made[0], shell


def test_insert_below_asks_for_a_new_cell_only_while_the_reply_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    r, page, shell = live_view(monkeypatch)
    assert page.page.can_insert
    page.say(kind="insert", code="df.plot()")
    page.say(kind="insert", code="   ")  # nothing to insert
    page.say(kind="insert", code=["not", "text"])
    assert shell.inputs == [("df.plot()", False)]
    r.finish(ck.Reply("m"), None)
    page.say(kind="insert", code="late = 1")  # the cell has ended: the payload would land elsewhere
    assert shell.inputs == [("df.plot()", False)]


def test_where_the_frontend_ignores_new_cells_the_page_offers_copy_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    _, page, _ = live_view(monkeypatch)
    assert not page.page.can_insert
