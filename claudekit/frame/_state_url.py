"""A Dask partition's state on an fsspec URL (``state="s3://bucket/job/"``): chunks, never appends.

Object stores have no append and no lock, so a partition's state is a directory of immutable objects,
each written once: ``<url>/part-00003/<attempt>-<token>-<seq>.jsonl``, each a header line and then
facts in the local state file's format (``_state``). A task run (an *attempt*) lists what earlier
attempts wrote, numbers itself one past them (a random token apart, should two run at once), writes a
header-only chunk when it opens (so an unwritable URL is an error before anything is paid for), then
one chunk per flush. Reading takes every chunk of the partition in (attempt, token, seq) order, so
facts keep the order they were written in, attempt after attempt.

A flush happens every ``flush_rows`` facts or ``flush_s`` seconds after the oldest unwritten one,
whichever comes first, and at once for the facts a rerun must never miss (a batch's intent to create,
its id, ``unsent``, ``collected``). A killed worker therefore loses the rows in flight plus at most
``flush_rows`` answers of its last ``flush_s`` seconds; they are sent again by the rerun. A chunk cut
short (a kill mid-write on a filesystem where a write is not atomic, as ``file://``) keeps its whole
lines: its torn last line is skipped with a warning, as in the local file. Nothing is locked: two runs
writing one partition at once both send its rows (the local path keeps its ``flock``).

fsspec is imported only here, and this module only when a URL is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import warnings
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .._base._errors import ConfigError
from ._state import _KIND, JobState, StateFile, apply_line, fact_line

__all__ = ["ChunkedState", "check_url", "is_url", "public_url"]

FLUSH_S = 1.0  # the longest an answer waits in memory before it is written
# Facts a rerun must find whatever happens: written the moment they are made.
_AT_ONCE = frozenset({"submit", "batch", "unsent", "collected"})
_CHUNK = re.compile(r"^(\d+)-([0-9a-f]+)-(\d+)\.jsonl$")
_HEADER = json.dumps({"t": _KIND, "version": 1}, separators=(",", ":"))
# Stores where a "directory" is only a key prefix: never made (s3fs' makedirs would create a bucket).
_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2", "b2"})


def is_url(state: Any) -> bool:
    """``state=`` is an fsspec URL (``s3://…``, ``file:///…``, ``simplecache::s3://…``), not a path."""
    return isinstance(state, str) and "://" in state


def public_url(url: str) -> str:
    """The URL without any user:password or query, for messages (a credential never is in one)."""
    parts = [urlsplit(p) for p in url.split("::")]
    return "::".join(urlunsplit((s.scheme, s.netloc.rsplit("@", 1)[-1], s.path, "", "")) for s in parts)


def check_url(url: str) -> None:
    """On the driver, before anything is sent: every protocol of ``url`` is known to fsspec and its
    package is installed; otherwise one line that says what to install."""
    import fsspec
    from fsspec.registry import known_implementations

    for part in url.split("::"):
        protocol = fsspec.core.split_protocol(part)[0] or "file"
        try:
            fsspec.get_filesystem_class(protocol)
        except ValueError:
            raise ConfigError(
                f"state={public_url(url)!r}: fsspec knows no protocol {protocol!r}",
                hint="pass a directory every worker can reach: a shared path, or a URL such as "
                "s3://bucket/job/ (pip install s3fs), gs://bucket/job/ (pip install gcsfs), file:///shared/job/",
            ) from None
        except ImportError as exc:
            module = str(known_implementations.get(protocol, {}).get("class", "")).split(".")[0]
            install = f"pip install {module}" if module and module != "fsspec" else str(exc)
            raise ConfigError(
                f"state={public_url(url)!r} needs a package that is not installed for {protocol}:// ({exc})",
                hint=f"{install} (on the driver and on every worker)",
            ) from None


class ChunkedState(StateFile):
    """One partition's state under an fsspec URL: read from all its chunks, written as new chunks."""

    def __init__(self, url: str, *, flush_rows: int = 16, flush_s: float = FLUSH_S) -> None:
        from fsspec.core import url_to_fs

        fs, root = url_to_fs(url)
        super().__init__(root)  # (the base class's path: unused, every method that reads it is ours)
        self.fs, self.root, self.where = fs, str(root).rstrip("/"), public_url(url)
        self.flush_rows, self.flush_s = max(1, int(flush_rows)), float(flush_s)
        self.objects = 0  # chunks written by this object (what a PUT count is)
        self._buffer: list[str] = []
        self._attempt: str | None = None
        self._next_attempt: int | None = None  # one past the highest attempt listed
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
        self._object_store = bool(_OBJECT_STORES.intersection(protocols))

    # -- reading -----------------------------------------------------------------------------------
    def load(self) -> JobState:
        self.flush()  # this run's own facts first: a reload (batch's `_locked`) must see them too
        state, line = JobState(), 0
        for name, text in self._chunks():
            lines = text.splitlines()
            if lines and lines[0].strip() != _HEADER:
                warnings.warn(f"{self.where}: skipping {name}, not a claudekit state chunk", stacklevel=2)
                continue
            for raw in lines[1:]:
                line += 1
                if not raw.strip():
                    continue
                apply_line(state, raw, line, f"{self.where}/{name}")
        state.settle()
        return state

    def _chunks(self) -> list[tuple[str, str]]:
        """(name, text) of every chunk of the partition, in the order they were written."""
        try:
            self.fs.invalidate_cache(self.root)  # another worker's chunks: not a cached listing
            try:
                found = [str(p) for p in self.fs.ls(self.root, detail=False)]
            except FileNotFoundError:  # no chunk yet: a first run
                found = []
            named = sorted((key, p) for p in found if (key := _order(p.rsplit("/", 1)[-1])) is not None)
            self._next_attempt = max([key[0] + 1 for key, _p in named], default=0)
            blobs = self.fs.cat([p for _key, p in named]) if named else {}
        except Exception as exc:  # any store's own error (network, permission): one line
            raise self._failure("read", exc) from None
        return [(p.rsplit("/", 1)[-1], _text(blobs[p])) for _key, p in named]

    # -- writing -----------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lock(self, wait_s: float | None = None) -> AsyncIterator[None]:
        """No lock on an object store (none exists): two runs on one partition at once both send."""
        yield

    def open(self) -> None:
        """Start this attempt with a header-only chunk, so that an unwritable URL is an error before
        any row is paid for."""
        if self._attempt is not None:
            return
        if self._next_attempt is None:
            self._chunks()
        self._attempt = f"{self._next_attempt or 0:05d}-{secrets.token_hex(4)}"
        try:
            self._put([])
        except Exception as exc:
            raise self._failure("write", exc) from None

    def write(self, fact: dict[str, Any]) -> None:
        if self._attempt is None:
            self.open()
        self._buffer.append(fact_line(fact))
        if fact.get("t") in _AT_ONCE or len(self._buffer) >= self.flush_rows:
            self.flush()
        elif self._timer is None:
            with contextlib.suppress(RuntimeError):  # no event loop: written at the next flush or close
                self._timer = asyncio.get_running_loop().call_later(self.flush_s, self.flush)

    def flush(self) -> None:
        """Write what is buffered as one new chunk (kept for the next flush if the store fails)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer or self._attempt is None:
            return
        try:
            self._put(self._buffer)
        except Exception as exc:
            # Mid-job (the store unreachable for a while): the answers already paid for matter more than
            # the state, so the job goes on and this chunk is tried again at the next flush.
            if not self._failed:
                self._failed = True
                warnings.warn(
                    f"could not write the job's state to {self.where} ({type(exc).__name__}: {exc}); the "
                    "job goes on and tries again, but a rerun now would send these rows again",
                    UserWarning,
                    stacklevel=2,
                )
            return
        self._buffer = []

    def close(self) -> None:
        self.flush()

    def _put(self, lines: list[str]) -> None:
        name = f"{self.root}/{self._attempt}-{self._seq:06d}.jsonl"
        data = "\n".join([_HEADER, *lines, ""]).encode("utf-8")
        try:
            self.fs.pipe_file(name, data)
        except FileNotFoundError:
            if self._object_store:
                raise
            self.fs.makedirs(self.root, exist_ok=True)  # a filesystem with directories: made once
            self.fs.pipe_file(name, data)
        self._seq += 1
        self.objects += 1

    def _failure(self, what: str, exc: BaseException) -> ConfigError:
        return ConfigError(
            f"cannot {what} the job's state at {self.where}: {type(exc).__name__}: {exc}",
            hint="pass state= a directory every worker can read and write (credentials in the workers' "
            "environment); nothing of this partition was sent",
        )


def _order(name: str) -> tuple[int, str, int] | None:
    """A chunk's place: (attempt, token, seq); None for anything else found under the directory."""
    m = _CHUNK.match(name)
    return None if m is None else (int(m.group(1)), m.group(2), int(m.group(3)))


def _text(blob: Any) -> str:
    return bytes(blob).decode("utf-8", errors="replace")
