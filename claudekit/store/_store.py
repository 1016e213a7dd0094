"""The store: one SQLite file in WAL mode, written by one background thread per process.

Producers (the event loop, any thread) only put items on a queue: a usage record, a chat's state, a
barrier. The writer thread takes everything that is queued, converts it to rows, scrubs secrets and
writes it in one ``BEGIN IMMEDIATE`` transaction, so a burst of records costs one commit. Several
processes share the file: WAL lets readers run beside the writer, ``busy_timeout`` plus a retry loop
(``_RETRY_FOR_S``, for opening the file as for each batch) makes writers wait their turn instead of losing
rows, or the whole store when a kernel's first write meets another process's long transaction.

What a crash (kill -9) can lose is what is queued and not yet committed, so the queue is kept short in
time and in size. Once a usage record has waited more than ``_BACKLOG_S`` (the writer is behind: the
file is being created, another process holds its lock, the machine is busy), the next record's producer
waits for the writer to catch up, for at most ``_WAIT_S``. While the writer waits for another process's
lock (or opens the file, whose first writes may wait for it), once ``_BACKLOG_N`` records are unwritten the
next producer waits too: on a fast machine many calls
end within ``_BACKLOG_S``, and the time bound alone let the loss grow with the machine's speed. A writer
that is only busy, not locked out, is never waited for on count, so a burst costs no round trips. A
writer that does not catch up in ``_WAIT_S`` (a lock held for long) is not waited for again until it
has, so a kernel is never held for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import queue
import sqlite3
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from .._base._errors import ClaudekitError
from . import _context
from ._paths import Mode
from ._schema import CALL_COLUMNS, SCHEMA_VERSION, NewerSchemaError, migrate, version
from ._scrub import current_secrets, scrub

__all__ = ["ChatState", "Store", "StoreError", "StoreWarning", "now_us"]

_log = logging.getLogger("claudekit.store")
_T = TypeVar("_T")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_CALL_NAMES = tuple(name for name, _ in CALL_COLUMNS)
_CALL_TEXT = tuple(i for i, (_, decl) in enumerate(CALL_COLUMNS) if decl.startswith("TEXT"))
_INSERT_CALL = (
    f"INSERT INTO calls (session, chat, notebook, cell, {', '.join(_CALL_NAMES)}) "
    f"VALUES ({', '.join('?' * (4 + len(_CALL_NAMES)))})"
)
_UPSERT_CHAT = (
    "INSERT INTO chats (id, name, created, updated, model, settings, tools, state, session, notebook) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, "
    "updated = excluded.updated, model = excluded.model, settings = excluded.settings, "
    "tools = excluded.tools, state = excluded.state, session = excluded.session, "
    "notebook = coalesce(excluded.notebook, chats.notebook)"
)
_BATCH = 5000  # items per transaction at most: a huge burst still commits in bounded steps
_BACKLOG_S = 0.05  # a usage record queued longer than this makes the next producer wait (see above)
_BACKLOG_N = 16  # unwritten usage records that make the next producer wait while the writer is locked out
_WAIT_S = 2.0  # how long a producer waits for the writer at most
_RETRY_FOR_S = 60.0  # how long a batch waits for other processes' locks before it is dropped
_BUSY_TIMEOUT_S = 10.0  # sqlite's own wait for a lock, within each attempt of the retry loop


class StoreWarning(UserWarning):
    """The store could not be opened or written; claudekit carries on without it."""


class StoreError(ClaudekitError):
    """The store could not be read (``history()``, ``chats()``, ``search()``, ``Chat.resume``)."""


def _what_to_do(exc: BaseException) -> str:
    """The advice for a file that cannot be opened: a damaged one is moved aside, anything else is
    about the directory (claudekit never overwrites a damaged file: it may be recoverable)."""
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return (
            "it is damaged or not a claudekit database: move it aside (a new one is then made), "
            "or set CLAUDEKIT_HOME"
        )
    return "check that directory, or set CLAUDEKIT_HOME"


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class ChatState:
    """What the store keeps of a chat: written whole at each commit (the messages as JSON texts)."""

    id: str
    name: str
    model: str
    settings: dict[str, Any] | None  # None when content is not kept (CLAUDEKIT_STORE=usage)
    tools: list[dict[str, Any]] | None
    state: dict[str, Any]
    messages: tuple[str, ...] | None  # each message as JSON; None: leave the stored messages alone
    cell: int | None = None


class Store:
    """One database file. ``mode`` is ``"on"`` (everything) or ``"usage"`` (no content)."""

    def __init__(self, path: str | os.PathLike[str], mode: Mode = "on") -> None:
        if mode == "off":
            raise ValueError("a Store is either 'on' or 'usage'; 'off' means no store at all")
        self.path = Path(path)
        self.mode = mode
        self.keep_content = mode == "on"
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if hasattr(os, "register_at_fork"):
            # A weak reference: a store that is gone must not be kept alive by the fork hook.
            ref = weakref.ref(self)

            def after_fork() -> None:
                store = ref()
                if store is not None:
                    store._forked()

            os.register_at_fork(after_in_child=after_fork)
        self._chat_keys: dict[str, str] = {}
        self.broken: str | None = None
        self.dropped = 0
        self._schema_ready = False
        # Usage records queued and not yet committed: (sequence number, when queued), oldest first.
        self._unwritten: deque[tuple[int, float]] = deque()
        self._queued = itertools.count(1)
        self._committed = 0  # the sequence number of the last usage record committed (or dropped)
        self._progress = threading.Condition()  # notified when _committed moves
        self._locked_out = False  # the writer is waiting for another process's write lock
        self._not_waiting = False  # the writer did not catch up within _WAIT_S: do not hold producers

    # -- producers: cheap, any thread ------------------------------------------------------------------

    def add_call(self, record: Any) -> None:
        """Queue one usage record (a :class:`claudekit.usage.UsageRecord`) with where it comes from."""
        if self.broken is None:
            chat = self._chat_keys.get(record.chat_id)
            seq = next(self._queued)
            now = time.monotonic()
            self._unwritten.append((seq, now))
            self._put(("call", record, chat, _context.notebook(), _context.cell(), seq))
            self._keep_up(now)

    def _keep_up(self, now: float) -> None:
        """Bound what a crash can lose: wait for a writer that is too far behind (see the module doc)."""
        unwritten = self._unwritten
        with contextlib.suppress(IndexError):  # another producer thread may empty it meanwhile
            while unwritten and unwritten[0][0] <= self._committed:
                unwritten.popleft()
        if self._not_waiting or threading.current_thread() is self._thread:
            return  # a writer stuck for long is not waited for again; and never wait for oneself
        oldest = unwritten[0][1] if unwritten else now
        if now - oldest > _BACKLOG_S:
            self._not_waiting = not self.flush(_WAIT_S)
        elif self._locked_out and len(unwritten) > _BACKLOG_N:
            with contextlib.suppress(IndexError):
                self._not_waiting = not self._written_up_to(unwritten[-(_BACKLOG_N // 2)][0], _WAIT_S)

    def _written_up_to(self, seq: int, timeout: float) -> bool:
        """Wait until the usage record ``seq`` (and every one before it) is committed or dropped."""
        with self._progress:
            return self._progress.wait_for(lambda: self._committed >= seq, timeout)

    def settle(self) -> None:
        """At a turn's end, wait (at most ``_WAIT_S``) until what it queued is written: a kill after the cell
        then loses nothing of it, however far behind the writer was (a file being created, a busy machine)."""
        if self.broken is None and not self._not_waiting and threading.current_thread() is not self._thread:
            self._not_waiting = not self.flush(_WAIT_S)

    def register_chat(self, name: str, chat_id: str) -> None:
        """Link the usage records of chat ``name`` (their ``chat_id``) to the stored chat ``chat_id``."""
        self._chat_keys[name] = chat_id

    def save_chat(self, chat: ChatState) -> None:
        """Queue a chat's state; its messages replace the stored ones from the first that differs."""
        if self.broken is None:
            if not self.keep_content:
                chat = ChatState(chat.id, chat.name, chat.model, None, None, chat.state, None, chat.cell)
            self._put(("chat", chat))

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until everything queued so far is written (or dropped); False if ``timeout`` passed."""
        if self._thread is None and self._queue.empty():
            return True
        done = threading.Event()
        self._put(("barrier", done.set))
        return done.wait(timeout)

    async def aflush(self) -> None:
        """:meth:`flush` without blocking the event loop."""
        if self._thread is None and self._queue.empty():
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_resolve, future)

        self._put(("barrier", wake))
        await future

    def start(self, timeout: float | None = 10.0) -> bool:
        """Open the database now (create, migrate, note this session) instead of at the first write."""
        done = threading.Event()
        self._put(("barrier", done.set))
        return done.wait(timeout) and self.broken is None

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and stop the writer thread."""
        if self._thread is not None and self._thread.is_alive():
            self.flush(timeout)
            self._queue.put(("stop",))
            self._thread.join(timeout)
        self._thread = None

    def _put(self, item: tuple[Any, ...]) -> None:
        if self._thread is None:
            self._start()
        self._queue.put(item)

    def _forked(self) -> None:
        """In a forked child: the parent's thread is not there, its queue is not ours."""
        self._thread = None
        self._queue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._progress = threading.Condition()
        self._unwritten = deque()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="claudekit-store", daemon=True)
            thread.start()
            self._thread = thread

    # -- reading ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection | None]:
        """A connection for queries, or None when the database does not exist yet."""
        if not self.path.exists():
            yield None
            return
        try:
            db = self._connect()
        except (sqlite3.Error, OSError) as exc:
            raise self._unreadable(exc) from None
        try:
            try:
                if not self._schema_ready and version(db) < SCHEMA_VERSION:
                    migrate(db)  # an older file, not opened for writing yet: bring it up to date first
                self._schema_ready = True
                db.execute("PRAGMA query_only = 1")
            except (sqlite3.Error, OSError) as exc:
                raise self._unreadable(exc) from None
            try:
                yield db
            except sqlite3.DatabaseError as exc:  # a damaged page met by the query itself
                raise self._unreadable(exc) from None
        finally:
            db.close()

    def _unreadable(self, exc: BaseException) -> StoreError:
        return StoreError(f"cannot read the store {self.path}: {exc}", hint=_what_to_do(exc))

    # -- the writer thread --------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        db.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        db.execute("PRAGMA foreign_keys = ON")
        return db

    def _open(self) -> sqlite3.Connection:
        """Open the file for writing; a lock held past busy_timeout is waited for as a write waits for it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return _retry_locked(self._open_once)

    def _open_once(self) -> sqlite3.Connection:
        db = self._connect()
        try:
            self._prepare(db)
        except BaseException:
            db.close()  # a fresh connection per attempt: each step below is safe to repeat
            raise
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Journal mode, schema and this session's row: each step writes, so each may meet a lock."""
        found = version(db)
        if found > SCHEMA_VERSION:  # before anything writes to the file
            raise NewerSchemaError(
                f"its schema version {found} is newer than this claudekit knows ({SCHEMA_VERSION})"
            )
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            _log.debug("claudekit.store: journal_mode is %s (WAL unavailable on this file system)", mode)
        db.execute("PRAGMA synchronous = NORMAL")  # in WAL: safe against a killed process
        migrate(db)
        self._schema_ready = True
        from .._base import __version__

        db.execute(
            "INSERT OR IGNORE INTO sessions (id, started, pid, notebook, version) VALUES (?, ?, ?, ?, ?)",
            (_context.SESSION_ID, now_us(), os.getpid(), _context.notebook(), __version__),
        )

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        # Opening writes (journal mode, migration, the session row), so it too may wait for another
        # process's lock: nothing is written until it is done (see _keep_up).
        self._locked_out = True
        try:
            db = self._open()
        except NewerSchemaError as exc:
            self._give_up(f"not writing to {self.path}: {exc}", "upgrade claudekit, or set CLAUDEKIT_HOME")
        except (sqlite3.Error, OSError) as exc:
            self._give_up(f"could not open {self.path}: {exc}", _what_to_do(exc))
        finally:
            self._locked_out = False
        while True:
            batch = [self._queue.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item[0] == "stop" for item in batch)
            work = [item for item in batch if item[0] in ("call", "chat")]
            if work and db is not None:
                try:
                    self._write(db, work)
                except (sqlite3.Error, OSError) as exc:
                    self.dropped += len(work)
                    _warn_once(f"claudekit.store: could not write {len(work)} item(s) to {self.path}: {exc}")
            elif work:
                self.dropped += len(work)
            self._done(work)
            for item in batch:
                if item[0] == "barrier":
                    item[1]()
            if stop:
                if db is not None:
                    db.close()
                return

    def _done(self, work: Sequence[tuple[Any, ...]]) -> None:
        """The usage records of ``work`` are committed (or dropped): producers need not wait for them."""
        seqs = [item[5] for item in work if item[0] == "call"]
        if seqs:
            with self._progress:
                self._committed = max(self._committed, *seqs)
                self._progress.notify_all()
            self._not_waiting = False  # caught up: waiting makes sense again

    def _give_up(self, why: str, what_to_do: str) -> None:
        self.broken = why
        _warn_once(f"claudekit.store: {why}; usage and conversations are not kept — {what_to_do}")

    def _write(self, db: sqlite3.Connection, work: Sequence[tuple[Any, ...]]) -> None:
        secrets = current_secrets()
        calls = [_call_row(item, secrets) for item in work if item[0] == "call"]
        chats = [_chat_rows(item[1], secrets) for item in work if item[0] == "chat"]
        self._locked_out = True  # until BEGIN IMMEDIATE has the lock (see _keep_up)
        try:
            _retry_locked(lambda: self._transaction(db, calls, chats))
        finally:
            self._locked_out = False

    def _transaction(
        self, db: sqlite3.Connection, calls: list[tuple[Any, ...]], chats: list[_ChatRows]
    ) -> None:
        db.execute("BEGIN IMMEDIATE")
        self._locked_out = False
        try:
            if calls:
                db.executemany(_INSERT_CALL, calls)
            for chat in chats:
                chat.write(db)
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise


def _retry_locked(attempt: Callable[[], _T]) -> _T:
    """``attempt()``, run again while another process holds the write lock past busy_timeout, for up to
    ``_RETRY_FOR_S``: opening the file and writing a batch wait for a long lock alike."""
    deadline = time.monotonic() + _RETRY_FOR_S
    pause = 0.01
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            # "database is locked" after busy_timeout: another process holds the lock for long.
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_warned: set[str] = set()


def _warn_once(text: str) -> None:
    if text not in _warned:
        _warned.add(text)
        # Raised on the writer thread, so no frame is the user's: name the store as the place, which
        # prints as one line (warnings.warn would add a line of claudekit's source under it).
        warnings.warn_explicit(text, StoreWarning, "claudekit.store", 0, module="claudekit.store")


def _call_row(item: tuple[Any, ...], secrets: list[str]) -> tuple[Any, ...]:
    _, record, chat, notebook, cell, _seq = item
    values = [getattr(record, name) for name in _CALL_NAMES]
    values[0] = (values[0] - _EPOCH) // _US
    texts = [values[i] for i in _CALL_TEXT if values[i]]
    joined = "\0".join(texts)
    if "sk-" in joined or any(s in joined for s in secrets):
        for i in _CALL_TEXT:
            if values[i]:
                values[i] = scrub(values[i], secrets)
    return (_context.SESSION_ID, chat, notebook, cell, *values)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def message_text(message: dict[str, Any]) -> str:
    """The searchable text of a message: its text blocks and the text of its tool results."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            parts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_result":
            inner = block.get("content")
            if isinstance(inner, str):
                parts.append(inner)
            elif isinstance(inner, list):
                parts.extend(str(b.get("text") or "") for b in inner if isinstance(b, dict))
    return "\n".join(p for p in parts if p)


@dataclass
class _ChatRows:
    chat: ChatState
    settings: str | None
    tools: str | None
    state: str
    messages: list[tuple[str, str, str]] | None  # (role, content JSON, text)

    def write(self, db: sqlite3.Connection) -> None:
        c = self.chat
        now = now_us()
        db.execute(_UPSERT_CHAT, (c.id, c.name, now, now, c.model, self.settings, self.tools, self.state,
                                  _context.SESSION_ID, _context.notebook()))  # fmt: skip
        if self.messages is None:
            return
        query = "SELECT content FROM messages WHERE chat = ? ORDER BY position"
        stored = [row[0] for row in db.execute(query, (c.id,))]
        first = next(
            (i for i, (old, new) in enumerate(zip(stored, self.messages, strict=False)) if old != new[1]),
            min(len(stored), len(self.messages)),
        )
        if first < len(stored):
            db.execute("DELETE FROM messages WHERE chat = ? AND position >= ?", (c.id, first))
        db.executemany(
            "INSERT INTO messages (chat, position, role, content, text, created, session, cell) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (c.id, i, role, content, text, now, _context.SESSION_ID, c.cell)
                for i, (role, content, text) in enumerate(self.messages[first:], start=first)
            ],
        )


def _chat_rows(chat: ChatState, secrets: list[str]) -> _ChatRows:
    def clean(value: Any) -> str | None:
        return None if value is None else scrub(_dumps(value), secrets)

    messages: list[tuple[str, str, str]] | None = None
    if chat.messages is not None:
        messages = []
        for text in chat.messages:
            data = json.loads(text)
            messages.append((str(data.get("role")), scrub(text, secrets), scrub(message_text(data), secrets)))
    return _ChatRows(chat, clean(chat.settings), clean(chat.tools), clean(chat.state) or "{}", messages)
