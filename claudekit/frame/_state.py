"""A job's memory on disk (``state=PATH``): JSON Lines, appended as things happen.

Each line is one fact: the job's rows, a request submitted in a batch, a batch id, a result, a batch
fully collected. Appending (and flushing) one line per fact means a crash or a kernel restart loses
nothing that was written; a torn last line (a kill mid-write) is skipped when reading, and the next
fact starts on a line of its own. Results are keyed by the request's fingerprint, so only identical
requests (same prompt, model and settings) are ever reused.

A batch is created in three facts: the intent (``submit``: its custom_ids, a key, the time) before the
create, then ``batch`` (its id) or ``unsent`` (the create certainly failed). An intent left open by a
crash means "maybe created": the job looks for that batch on the server before submitting again. A
submission recorded after a row's result supersedes the result (``job.retry()``).

One run at a time: :meth:`StateFile.lock` takes an exclusive lock (``flock``) on the file while a job
submits, polls or collects, so two kernels sharing a state file never both send every row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .._base._errors import ConfigError
from .._base._secrets import scrub
from ._outcome import Outcome

__all__ = ["JobState", "StateFile", "apply_line", "fact_line", "state_file"]

_KIND = "claudekit-frame-state"
LOCK_WAIT_S = 15.0  # how long a second run waits for the first to finish submitting before refusing


@dataclass
class JobState:
    """What a state file says."""

    rows: dict[str, Any] | None = None  # keys, fingerprints, errors, fields, name of the job's rows
    results: dict[str, Outcome] = field(default_factory=dict)  # by fingerprint (the latest)
    requests: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # custom_id -> (fp, params)
    batches: dict[str, list[str]] = field(default_factory=dict)  # batch id -> its custom_ids
    collected: set[str] = field(default_factory=set)  # batch ids whose results are all in `results`
    intents: dict[str, Intent] = field(default_factory=dict)  # creates that may or may not have happened
    _seq: dict[str, int] = field(default_factory=dict)  # fp -> line of its latest result
    _sent: list[tuple[int, list[str]]] = field(default_factory=list)  # (line, custom_ids) per submission

    def settle(self) -> None:
        """Drop results that a later submission (a retry, or a create that may have happened) supersedes."""
        live = [(n, cids) for n, cids in self._sent]
        live += [(i.line, i.cids) for i in self.intents.values()]
        for line, cids in live:
            for cid in cids:
                fp = self.requests.get(cid, ("", {}))[0]
                if fp in self.results and self._seq.get(fp, -1) < line:
                    del self.results[fp]


@dataclass
class Intent:
    """A create about to be sent: its custom_ids and when (ISO time, to find it in the batches list)."""

    key: str
    cids: list[str]
    at: str
    line: int = 0


class StateFile:
    """Append facts to, and read them back from, one JSON Lines file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = None
        self._failed = False  # a write failed mid-job: said once, nothing more is written
        self._lock_depth = 0

    def load(self) -> JobState:
        state = JobState()
        if not self.path.exists():
            return state
        try:
            fh = self.path.open(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise self._unusable(exc) from None
        with fh:
            first = True
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                if first:
                    self._check_header(line)
                    first = False
                apply_line(state, line, lineno, f"{self.path}:{lineno}")
        state.settle()
        return state

    def _check_header(self, line: str) -> None:
        """Refuse a file that is not a claudekit state file (a CSV, say): appending would spoil it."""
        try:
            head = json.loads(line)
        except ValueError:
            head = None
        if not (isinstance(head, dict) and head.get("t") == _KIND):
            raise ConfigError(
                f"{str(self.path)!r} is not a claudekit state file (its first line is not one); "
                "nothing was written to it or sent",
                hint="pass state= a new file name (e.g. 'job.jsonl'), or the file a job wrote before",
            )

    @contextlib.asynccontextmanager
    async def lock(self, wait_s: float | None = None) -> AsyncIterator[None]:
        """Hold the run's exclusive lock on the file; wait up to ``wait_s`` for another run, then refuse."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        fd = await self._take_lock(_lock_wait() if wait_s is None else wait_s)
        self._lock_depth = 1
        try:
            yield
        finally:
            self._lock_depth = 0
            if fd is not None:
                os.close(fd)  # closing the descriptor releases the flock

    async def _take_lock(self, wait_s: float) -> int | None:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one run at a time is then the user's to keep
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._unusable(exc) from None
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise ConfigError(
                        f"another run is using the state file {str(self.path)!r} (a job submitting or "
                        f"waiting on it, in this kernel or another); waited {wait_s:g} s, nothing was sent",
                        hint="let that run finish (its rows are then reused here), or pass another state=",
                    ) from None
                await asyncio.sleep(0.05)

    def open(self) -> None:
        """Open the file for appending now: a job calls this before it sends anything, so that a path
        that cannot be written is an error up front instead of after answers were paid for."""
        if self._fh is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            size = self.path.stat().st_size if self.path.exists() else 0
            if size:
                with self.path.open(encoding="utf-8", errors="replace") as fh:
                    self._check_header(fh.readline())
            self._fh = self.path.open("a", encoding="utf-8")
            if not size:
                self._line({"t": _KIND, "version": 1})
            elif not _ends_in_newline(self.path):
                self._fh.write("\n")  # a torn last line (a kill mid-write): the next fact starts afresh
        except OSError as exc:
            raise self._unusable(exc) from None

    def write(self, fact: dict[str, Any]) -> None:
        if self._fh is None:
            self.open()
        if self._failed:
            return
        try:
            self._line(fact)
        except OSError as exc:
            # Mid-job (a full disk): the answers already paid for matter more than the file, so the
            # job goes on and returns them; the file keeps what was written before.
            self._failed = True
            warnings.warn(
                f"could not write to the job's state file {str(self.path)!r} ({exc.strerror or exc}); "
                "the job goes on, but a restart would send the rows recorded from now on again",
                UserWarning,
                stacklevel=2,
            )

    def _unusable(self, exc: OSError) -> ConfigError:
        return ConfigError(
            f"cannot use {str(self.path)!r} as the job's state file: {exc.strerror or exc}",
            hint="pass state= a file path in a writable directory; nothing was sent",
        )

    def _line(self, fact: dict[str, Any]) -> None:
        assert self._fh is not None
        self._fh.write(fact_line(fact) + "\n")
        self._fh.flush()

    def result(self, fp: str, outcome: Outcome) -> None:
        self.write({"t": "res", "fp": fp, **outcome.to_json()})

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def fact_line(fact: dict[str, Any]) -> str:
    """One fact as the line written for it (without its newline)."""
    text = json.dumps(fact, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (an index label, say): JSON escapes keep it exactly
        text = json.dumps(fact, ensure_ascii=True, separators=(",", ":"))
    # Redacted as the store redacts: a prompt or an answer that carries the key never reaches the disk.
    return scrub(text)


def state_file(state: Any) -> StateFile:
    """``state=`` as a state file: a path, or the state a Dask partition made for itself (an fsspec
    URL's chunks, ``_state_url``). A URL for a pandas frame is refused: its state is one local file."""
    if isinstance(state, StateFile):
        return state
    if isinstance(state, str) and "://" in state:
        raise ConfigError(
            f"state= URLs are for a Dask DataFrame (a directory every worker can reach); a pandas job's "
            f"state is one local file, not {state.split('://', 1)[0]}://…",
            hint="pass a local file path, e.g. state='job.jsonl'",
        )
    return StateFile(state)


def _lock_wait() -> float:
    """Seconds a second run waits for the state file (``CLAUDEKIT_STATE_LOCK_WAIT``, default 15)."""
    try:
        return max(0.0, float(os.environ.get("CLAUDEKIT_STATE_LOCK_WAIT", LOCK_WAIT_S)))
    except ValueError:
        return LOCK_WAIT_S


def _ends_in_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def apply_line(state: JobState, line: str, lineno: int, where: str) -> None:
    """One line of a state file or chunk into ``state``. A line cut short by a kill mid-write is
    skipped with a warning: the whole lines before it stand."""
    try:
        _apply(state, json.loads(line), lineno)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        warnings.warn(f"{where}: skipping an unreadable state line ({type(exc).__name__})", stacklevel=4)


def _apply(state: JobState, fact: dict[str, Any], line: int = 0) -> None:
    kind = fact["t"]
    if kind == "res":
        data = {k: v for k, v in fact.items() if k not in ("t", "fp")}
        state.results[str(fact["fp"])] = Outcome.from_json(data)
        state._seq[str(fact["fp"])] = line
    elif kind == "req":
        state.requests[str(fact["cid"])] = (str(fact["fp"]), dict(fact["params"]))
    elif kind == "submit":
        cids = [str(c) for c in fact["cids"]]
        state.intents[str(fact["key"])] = Intent(str(fact["key"]), cids, str(fact["at"]), line)
    elif kind == "unsent":
        state.intents.pop(str(fact["key"]), None)
    elif kind == "batch":
        cids = [str(c) for c in fact["cids"]]
        state.batches[str(fact["id"])] = cids
        state.intents.pop(str(fact.get("key")), None)
        state._sent.append((line, cids))
    elif kind == "collected":
        state.collected.add(str(fact["id"]))
    elif kind == "rows":
        state.rows = fact
    elif kind != _KIND:
        raise ValueError(f"unknown fact {kind!r}")
