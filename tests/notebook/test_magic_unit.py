"""The magic's pieces without a kernel: the input transformer, option parsing, the sync fallback runner."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from IPython.core import async_helpers
from IPython.core.error import UsageError

from claudekit.notebook import _magic
from claudekit.notebook._magic import ClaudeCellError, _run_sync, _thinking, make_transformer


class FakeShell:
    autoawait = True
    loop_runner: Any = async_helpers._asyncio_runner


def transform(cell: str, shell: Any = None) -> str:
    lines = cell.splitlines(keepends=True)
    return "".join(make_transformer(shell or FakeShell())(lines))


def test_cell_magic_becomes_one_top_level_await_with_literal_arguments() -> None:
    out = transform("%%claude -m claude-haiku-4-5\nWhat's {x}? \"quoted\" '''triple'''\n")
    assert out.startswith("await __import__('claudekit.notebook._magic'")
    assert out.count("\n") == 1
    call = out[out.index(".run_cell_async(") + len(".run_cell_async") :].strip()
    import ast

    args = ast.literal_eval(call)  # the line and body are plain literals: nothing else is evaluated
    assert args == ("-m claude-haiku-4-5", "What's {x}? \"quoted\" '''triple'''\n")


def test_one_line_magic_cell_becomes_an_await() -> None:
    out = transform("%claude usage\n")
    assert ".run_line_async('usage')" in out


@pytest.mark.parametrize(
    "cell",
    [
        "%%claude?\n",  # help
        "%claude?\n",
        "%claude usage\nx = 1\n",  # more code in the cell: the normal magic runs
        "x = 1\n%%claude\nhi\n",
        "%%claudette\nhi\n",
        "print('%%claude')\n",
    ],
)
def test_other_cells_are_left_alone(cell: str) -> None:
    assert transform(cell) == cell


def test_no_rewrite_without_asyncio_autoawait() -> None:
    off = FakeShell()
    off.autoawait = False
    assert transform("%%claude\nhi\n", off) == "%%claude\nhi\n"
    trio = FakeShell()
    trio.loop_runner = object()
    assert transform("%%claude\nhi\n", trio) == "%%claude\nhi\n"


def test_thinking_option_values() -> None:
    assert _thinking("adaptive") == "adaptive"
    assert _thinking("4,096") == 4096
    assert _thinking("off") is None
    with pytest.raises(UsageError):
        _thinking("lots")


def test_cell_error_renders_as_one_line() -> None:
    err = ClaudeCellError("OverloadedError", "API error — try again")
    (line,) = err._render_traceback_()
    assert "OverloadedError" in line and "try again" in line


def test_run_sync_without_a_loop_uses_asyncio() -> None:
    async def where() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert _run_sync(where()) == threading.current_thread().name


async def test_run_sync_inside_a_running_loop_refuses_and_runs_nothing() -> None:
    ran: list[str] = []

    async def send() -> None:
        ran.append("sent")

    coro = send()
    with pytest.raises(UsageError, match="cannot send from here") as info:
        _run_sync(coro)
    assert "\n" not in str(info.value) and "at the top of its own cell" in str(info.value)
    assert ran == [] and coro.cr_frame is None  # closed, never run (no "never awaited" warning)


def test_use_chat_rejects_non_chats() -> None:
    with pytest.raises(TypeError):
        _magic.use_chat("not a chat")  # type: ignore[arg-type]


async def test_a_bad_tools_option_is_one_line_not_a_traceback() -> None:
    # `--tools x` with x = 5 in the namespace: the ConfigError becomes the magic's one-line cell error.
    shell = type("Shell", (), {"user_ns": {"x": 5}})()
    with pytest.raises(ClaudeCellError) as exc:
        await _magic._ask(shell, _magic._parse("--tools x --new --chat bad-tools"), "hi")
    (line,) = exc.value._render_traceback_()
    assert "ConfigError" in line and "cannot use 5 as a tool" in line
