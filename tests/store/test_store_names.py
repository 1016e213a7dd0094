"""Chat names a person can resume by: default names say where a chat came from, and a name that several
stored chats carry is refused with the list (issue 28, item 2), never resolved to the most recent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import claudekit as ck
from claudekit import store
from claudekit.offline import OfflineBackend


def test_default_names_carry_the_notebook_name(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ana/projects/churn analysis.ipynb")
    first, second = ck.Chat(offline=OfflineBackend()), ck.Chat(offline=OfflineBackend())
    assert first.name.startswith("churn analysis-") and second.name.startswith("churn analysis-")
    assert first.name != second.name


async def test_a_name_several_chats_carry_is_an_error_listing_them(home: Path) -> None:
    backend = OfflineBackend()
    stored = []
    for notebook in ("a.ipynb", "b.ipynb"):
        chat = ck.Chat(offline=backend, name="analysis", render=False)
        await chat(f"hello from {notebook}")
        stored.append(chat.store_id)
    assert store.flush()
    with pytest.raises(ck.ConfigError) as exc:
        ck.Chat.resume("analysis", offline=backend, render=False)
    line = str(exc.value)
    assert "\n" not in line and "2 stored chats are named 'analysis'" in line
    assert all(sid is not None and sid in line for sid in stored)
    assert "last used 20" in line and "Chat.resume(ID)" in line
    # Its id resumes exactly that one.
    again = ck.Chat.resume(str(stored[0]), offline=backend, render=False)
    assert again.store_id == stored[0]
    assert again.history.messages[0]["content"][0]["text"] == "hello from a.ipynb"


async def test_a_name_one_chat_carries_still_resumes_by_name(home: Path) -> None:
    chat = ck.Chat(offline=OfflineBackend(), name="solo", render=False)
    await chat("hi")
    assert store.flush()
    assert ck.Chat.resume("solo", offline=OfflineBackend(), render=False).store_id == chat.store_id


_ONE_KERNEL = """
import asyncio, claudekit as ck
from claudekit import store
from claudekit.offline import OfflineBackend

async def main():
    chat = ck.Chat(offline=OfflineBackend(), render=False)
    await chat("hello")
    assert store.flush()
    print(chat.name)

asyncio.run(main())
"""


def test_default_names_differ_across_kernels(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two kernels of the same notebook, one after the other, sharing one store: the second kernel's first
    chat must not take the first one's name, so that ``Chat.resume(name)`` can find either."""
    import subprocess
    import sys

    monkeypatch.setenv("JPY_SESSION_NAME", "analysis.ipynb")
    names = [
        subprocess.run(
            [sys.executable, "-c", _ONE_KERNEL], capture_output=True, text=True, check=True, timeout=120
        ).stdout.strip()
        for _ in range(2)
    ]
    assert all(n.startswith("analysis-") for n in names), names
    assert names[0] != names[1]
    stored = store.chats()
    assert sorted(stored.name) == sorted(names)
    assert ck.Chat.resume(names[1], offline=OfflineBackend(), render=False).name == names[1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_process_names_its_chats_apart(home: Path) -> None:
    """A fork starts with its parent's counter and mark: it must not repeat the parent's next name."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its first default name and leave at once
        os.write(write, ck.Chat(offline=OfflineBackend(), render=False).name.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode()
    os.close(read)
    assert child and child != ck.Chat(offline=OfflineBackend(), render=False).name
