"""Secrets: a recognisable fake key must never show up in anything a notebook could display or save.

One random key per session (``sk-ant-api03-FAKEKEY…``). It is used with ``Chat(api_key=…)`` and
through ``ANTHROPIC_API_KEY`` against the loopback server, on the success path and the 401 path; then
every output, log record (all loggers at DEBUG, the SDK's and httpx2's included), repr, DataFrame,
saved file, cassette and the store's database (with its WAL) is scanned for the key or any substring of
it longer than 8 characters. A real kernel started with the key in its environment runs ``%load_ext
claudekit`` and ``%claude config`` (and a prompt); its iopub stream and its store are scanned too.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

import claudekit as ck
from claudekit.offline import Fault, OfflineBackend, OfflineServer, RecordingTransport, Turn
from claudekit.usage import UsageLog

from ._support import count

KEY = "sk-ant-api03-FAKEKEY" + secrets.token_urlsafe(60) + "AA"
GRAMS = {KEY[i : i + 9] for i in range(len(KEY) - 8)}  # every substring longer than 8 contains one


def leaks(text: str) -> list[str]:
    return sorted(g for g in GRAMS if g in text)


class Scanner:
    def __init__(self) -> None:
        self.scanned = 0
        self.found: list[tuple[str, list[str]]] = []

    def __call__(self, what: str, text: Any) -> None:
        s = text if isinstance(text, str) else str(text)
        self.scanned += 1
        hits = leaks(s)
        if hits:
            self.found.append((what, hits[:3]))


def scan_store(scan: Scanner, label: str, home: Path) -> tuple[int, int]:
    """Scan every file of the store (database, WAL, shared memory); returns the numbers of stored calls
    and messages."""
    from claudekit import store

    store.flush()
    files = sorted(home.glob("claudekit.db*"))
    assert files, f"{label}: the store wrote nothing under {home}"
    for f in files:
        scan(f"{label} store file {f.name}", f.read_bytes().decode("latin-1"))
    db = sqlite3.connect(files[0])
    try:
        for table in ("calls", "chats", "messages", "sessions"):
            for row in db.execute(f"SELECT * FROM {table}"):
                scan(f"{label} store {table} row", repr(row))
        calls = int(db.execute("SELECT count(*) FROM calls").fetchone()[0])
        return calls, int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
    finally:
        db.close()


def respond(req: Any) -> Turn | Fault:
    if "fail" in req.last_user_text:
        return Fault.status(401, message="invalid x-api-key")
    return Turn(text="Hello from the loopback server.")


@pytest.fixture(scope="module")
def server() -> Iterator[OfflineServer]:
    with OfflineBackend(respond, signing_key=b"secrets").serve() as srv:
        yield srv


@pytest.fixture
def all_logs() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.DEBUG)
    root = logging.getLogger()
    names = ["", "anthropic", "anthropic._base_client", "httpx2", "httpcore2", "claudekit", "asyncio"]
    saved = {n: logging.getLogger(n).level for n in names}
    root.addHandler(handler)
    for n in names:
        logging.getLogger(n).setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def test_the_scanner_finds_the_key() -> None:
    # The scan is only worth something if it would see a leak, whole or in part.
    assert leaks(f"header x-api-key: {KEY}")
    assert leaks("…" + KEY[20:29] + "…")
    assert not leaks(KEY[:8] + " " + KEY[30:38])


def _scan_chat(scan: Scanner, label: str, chat: ck.Chat, reply: ck.Reply | None, tmp: Path) -> None:
    scan(f"{label} repr(chat)", repr(chat))
    scan(f"{label} str(chat)", str(chat))
    scan(f"{label} vars(chat)", repr(vars(chat)))
    scan(f"{label} repr(client)", repr(chat.client))
    scan(f"{label} settings", repr(chat.settings))
    scan(f"{label} history repr", repr(chat.history))
    scan(f"{label} history json", chat.history.to_json())
    path = tmp / f"{label}-chat.json"
    chat.save(path)
    scan(f"{label} saved chat", path.read_text())
    if reply is not None:
        scan(f"{label} repr(reply)", repr(reply))
        scan(f"{label} reply json", reply.to_json())
        scan(f"{label} reply markdown", reply._repr_html_())
        scan(f"{label} reply steps", repr(reply.steps))
    df = chat.usage.df
    scan(f"{label} usage df", df.to_string())
    scan(f"{label} usage csv", df.to_csv())
    scan(f"{label} usage json", df.to_json(date_format="iso"))
    scan(f"{label} usage repr", repr(chat.usage))
    scan(f"{label} usage html", chat.usage._repr_html_())
    scan(f"{label} usage summary", chat.usage.summary().to_string())


async def _failing_turn(scan: Scanner, label: str, chat: ck.Chat) -> None:
    with pytest.raises(ck.AuthenticationError) as info:
        await chat("please fail")
    err = info.value
    scan(f"{label} str(err)", str(err))
    scan(f"{label} repr(err)", repr(err))
    scan(f"{label} traceback", "".join(traceback.format_exception(err)))
    scan(f"{label} cause", repr(err.__cause__) + str(err.__cause__))
    scan(f"{label} error reply", repr(err.reply))
    count("secrets", "401 errors checked")


async def test_the_key_never_leaks(
    server: OfflineServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    all_logs: list[logging.LogRecord],
) -> None:
    scan = Scanner()
    usage_path = tmp_path / "usage.jsonl"
    store_home = tmp_path / "store"
    monkeypatch.setenv("CLAUDEKIT_HOME", str(store_home))

    # 1. Chat(api_key=…).
    chat = ck.Chat(api_key=KEY, base_url=server.base_url, render=False, usage_log=usage_path)
    assert chat.backend == "anthropic" and chat.client.api_key == KEY  # the key really is in use
    reply = await chat("hello")
    assert reply.text == "Hello from the loopback server."
    await _failing_turn(scan, "api_key", chat)
    _scan_chat(scan, "api_key", chat, reply, tmp_path)
    await chat.aclose()

    # 2. The key from the environment.
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    chat2 = ck.Chat(base_url=server.base_url, render=False, usage_log=UsageLog(path=usage_path))
    assert chat2.client.api_key == KEY
    reply2 = await chat2("hello again")
    await _failing_turn(scan, "env", chat2)
    _scan_chat(scan, "env", chat2, reply2, tmp_path)
    await chat2.aclose()

    # 3. A cassette recording of both (success and 401), over real HTTP.
    cassette = tmp_path / "session.jsonl"
    rec = RecordingTransport(cassette, mode="all", inner=httpx2.AsyncHTTPTransport())
    client = anthropic.AsyncAnthropic(
        api_key=KEY, base_url=server.base_url, max_retries=0, http_client=httpx2.AsyncClient(transport=rec)
    )
    chat3 = ck.Chat(client=client, render=False)
    await chat3("recorded")
    await _failing_turn(scan, "cassette", chat3)
    await client.close()
    recorded = cassette.read_text()
    assert len(recorded.splitlines()) == 2 and "Hello from the loopback server." in recorded
    scan("cassette file", recorded)

    # 4. Files, logs and printed output.
    usage_text = usage_path.read_text()
    assert len(usage_text.splitlines()) == 4  # two calls each for chat and chat2
    scan("usage jsonl", usage_text)
    scan("usage log reloaded", UsageLog(path=usage_path).df.to_string())
    # chat and chat3 feed the session log, hence the store; chat2's own UsageLog has no parent.
    calls, messages = scan_store(scan, "session", store_home)
    assert calls == 4 and messages >= 6  # the three chats' conversations too
    for f in tmp_path.iterdir():
        if f.is_file():
            scan(f"file {f.name}", f.read_text(errors="replace"))
    assert len(all_logs) > 10, "the log capture caught nothing"
    assert any(r.name.startswith("anthropic") for r in all_logs)
    assert any(r.name.startswith(("httpx2", "httpcore2")) for r in all_logs)
    fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for r in all_logs:
        scan(f"log {r.name}", fmt.format(r) + repr(r.args) + repr(r.__dict__.get("extra", "")))
    out = capsys.readouterr()
    scan("stdout", out.out)
    scan("stderr", out.err)

    count("secrets", "texts scanned", scan.scanned)
    count("secrets", "log records scanned", len(all_logs))
    count("secrets", "key occurrences", len(scan.found))
    assert scan.found == [], scan.found


def test_the_key_never_reaches_a_notebook(server: OfflineServer, tmp_path: Path) -> None:
    import claudekit.notebook as nb
    from tests.notebook.kernel import Kernel

    assert hasattr(nb, "load_ipython_extension")
    scan = Scanner()
    store_home = tmp_path / "store"
    kernel = Kernel(
        env={
            "ANTHROPIC_API_KEY": KEY,
            "ANTHROPIC_BASE_URL": server.base_url,
            "CLAUDEKIT_RENDER": "text",
            "CLAUDEKIT_HOME": str(store_home),
        }
    )
    try:
        runs = []
        load = kernel.execute("%load_ext claudekit")
        if "not an IPython extension" in load.stdout:
            # claudekit/__init__.py does not forward load_ipython_extension (yet): use the notebook one.
            count("secrets", "kernel: %load_ext claudekit unavailable, used claudekit.notebook", 1)
            load = kernel.execute("%load_ext claudekit.notebook")
        assert not load.errors and not load.stdout and not load.stderr.strip(), load.messages
        runs.append(load)
        check = kernel.execute("import os; print(len(os.environ['ANTHROPIC_API_KEY']))")
        assert check.stdout.strip() == str(len(KEY))  # the kernel really has the key
        runs.append(kernel.execute("%%claude\nSay hello"))
        runs.append(kernel.execute("%claude config"))
        runs.append(kernel.execute("%claude usage"))
        runs.append(kernel.execute("%%claude\nplease fail"))
        config = runs[2]
        assert not config.errors and "model:" in config.stdout, config.messages
        assert "backend anthropic" in config.stdout  # the key was picked up from the environment
        assert "Hello from the loopback server." in runs[1].stdout
        assert "invalid x-api-key" in runs[4].stdout + runs[4].stderr + json.dumps(
            [m["content"] for m in runs[4].messages]
        )
        for run in runs:
            # Streamed text arrives in pieces: scan the joined streams as well as each message.
            scan("kernel stdout", run.stdout)
            scan("kernel stderr", run.stderr)
            for m in run.messages:
                scan(f"iopub {m['msg_type']}", json.dumps(m["content"], ensure_ascii=False))
    finally:
        kernel.kc.stop_channels()
        kernel.km.shutdown_kernel(now=True)
    calls, messages = scan_store(scan, "kernel", store_home)
    assert calls == 2 and messages == 2  # the prompt and the refused one; the answered exchange
    count("secrets", "kernel messages scanned", scan.scanned)
    count("secrets", "kernel key occurrences", len(scan.found))
    assert scan.found == [], scan.found
