"""A job's memory on disk (``state=PATH``): JSON Lines, appended as things happen.

Each line is one fact: the job's rows, a request submitted in a batch, a batch id, a result, a batch
fully collected. Appending (and flushing) one line per fact means a crash or a kernel restart loses
nothing that was written, and a torn last line is skipped when reading. Results are keyed by the
request's fingerprint, so only identical requests (same prompt, model and settings) are ever reused.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .._errors import ConfigError
from .._secrets import scrub
from ._outcome import Outcome

__all__ = ["JobState", "StateFile"]

_KIND = "claudekit-frame-state"


@dataclass
class JobState:
    """What a state file says."""

    rows: dict[str, Any] | None = None  # keys, fingerprints, errors, fields, name of the job's rows
    results: dict[str, Outcome] = field(default_factory=dict)  # by fingerprint (the latest)
    requests: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # custom_id -> (fp, params)
    batches: dict[str, list[str]] = field(default_factory=dict)  # batch id -> its custom_ids
    collected: set[str] = field(default_factory=set)  # batch ids whose results are all in `results`


class StateFile:
    """Append facts to, and read them back from, one JSON Lines file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = None
        self._failed = False  # a write failed mid-job: said once, nothing more is written

    def load(self) -> JobState:
        state = JobState()
        if not self.path.exists():
            return state
        try:
            fh = self.path.open(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise self._unusable(exc) from None
        with fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    fact = json.loads(line)
                    _apply(state, fact)
                except (ValueError, KeyError, TypeError) as exc:
                    warnings.warn(
                        f"{self.path}:{lineno}: skipping an unreadable state line ({type(exc).__name__})",
                        stacklevel=3,
                    )
        return state

    def open(self) -> None:
        """Open the file for appending now: a job calls this before it sends anything, so that a path
        that cannot be written is an error up front instead of after answers were paid for."""
        if self._fh is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists() or self.path.stat().st_size == 0
            self._fh = self.path.open("a", encoding="utf-8")
            if fresh:
                self._line({"t": _KIND, "version": 1})
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
        # Redacted as the store redacts: a prompt or an answer that carries the key never reaches the disk.
        self._fh.write(scrub(json.dumps(fact, ensure_ascii=False, separators=(",", ":"))) + "\n")
        self._fh.flush()

    def result(self, fp: str, outcome: Outcome) -> None:
        self.write({"t": "res", "fp": fp, **outcome.to_json()})

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _apply(state: JobState, fact: dict[str, Any]) -> None:
    kind = fact["t"]
    if kind == "res":
        data = {k: v for k, v in fact.items() if k not in ("t", "fp")}
        state.results[str(fact["fp"])] = Outcome.from_json(data)
    elif kind == "req":
        state.requests[str(fact["cid"])] = (str(fact["fp"]), dict(fact["params"]))
    elif kind == "batch":
        state.batches[str(fact["id"])] = [str(c) for c in fact["cids"]]
    elif kind == "collected":
        state.collected.add(str(fact["id"]))
    elif kind == "rows":
        state.rows = fact
    elif kind != _KIND:
        raise ValueError(f"unknown fact {kind!r}")
