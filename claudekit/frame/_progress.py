"""Progress of a DataFrame job, and the seam through which the notebook shows it as a widget.

This module knows no Jupyter: the notebook layer registers a factory (:func:`set_progress_factory`) that
returns its widget inside a kernel; elsewhere a job shows :class:`LineProgress`, one line on stderr
(redrawn at most a few times a second on a terminal; only the final line when stderr is not one).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol

__all__ = ["LineProgress", "Progress", "Snapshot", "make_progress", "set_progress_factory", "summary_line"]


@dataclass
class Snapshot:
    """Where a job stands."""

    kind: str  # "map" or "batch"
    total: int
    done: int = 0
    ok: int = 0
    errors: int = 0
    skipped: int = 0
    cost_usd: float = 0.0  # spent by this run
    elapsed_s: float = 0.0
    note: str = ""
    reused: int = 0  # rows answered by an earlier run (a state file): not sent, not paid again
    reused_cost_usd: float = 0.0  # what those answers cost when they were paid

    @property
    def rate(self) -> float | None:
        """Rows finished per second so far."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 and self.done else None

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate else None


def summary_line(s: Snapshot, *, live: bool = False) -> str:
    """``claudekit map · 8/8 rows · 7 ok · 1 error · $0.0012 · 0.4 s`` (rate and ETA while ``live``)."""
    parts = [f"claudekit {s.kind}", f"{s.done:,}/{s.total:,} rows", f"{s.ok:,} ok"]
    if s.errors:
        parts.append(f"{s.errors:,} error{'s' if s.errors != 1 else ''}")
    if s.skipped:
        parts.append(f"{s.skipped:,} skipped")
    if s.reused:
        parts.append(f"{s.reused:,} reused (paid before: ${s.reused_cost_usd:,.4f})")
        parts.append(f"${s.cost_usd:,.4f} this run")
    else:
        parts.append(f"${s.cost_usd:,.4f}")
    if s.note:
        parts.append(s.note)
    if live and s.rate:
        parts.append(f"{s.rate:,.1f} rows/s")
        if s.eta_s is not None and s.done < s.total:
            parts.append(f"ETA {_duration(s.eta_s)}")
    parts.append(_duration(s.elapsed_s))
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


class Progress(Protocol):
    def update(self, snapshot: Snapshot) -> None: ...

    def finish(self, snapshot: Snapshot, error: BaseException | None) -> None: ...


class LineProgress:
    """One line on a stream: redrawn in place (at most ``rate`` times a second) on a terminal."""

    def __init__(self, stream: IO[str] | None = None, *, rate: float = 5.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = 1.0 / rate
        self._last = -1e9
        self._width = 0
        isatty = getattr(self.stream, "isatty", None)
        self.redraw = bool(callable(isatty) and isatty())

    def update(self, snapshot: Snapshot) -> None:
        now = time.monotonic()
        if not self.redraw or now - self._last < self.interval:
            return
        self._last = now
        self._write(summary_line(snapshot, live=True), end="")

    def finish(self, snapshot: Snapshot, error: BaseException | None) -> None:
        line = summary_line(snapshot)
        if error is not None:
            line += f" · stopped ({type(error).__name__})"
        self._write(line, end="\n")

    def _write(self, line: str, end: str) -> None:
        pad = " " * max(0, self._width - len(line))
        self._width = len(line) if end == "" else 0
        prefix = "\r" if self.redraw else ""
        self.stream.write(f"{prefix}{line}{pad}{end}")
        self.stream.flush()


#: Called per job with the job's ``progress=`` setting (True, "text", "widget"); None means none.
ProgressFactory = Callable[[Any], "Progress | None"]
_factory: ProgressFactory | None = None


def set_progress_factory(factory: ProgressFactory | None) -> None:
    """Install what builds a job's progress display (the notebook layer registers its widget)."""
    global _factory
    _factory = factory


def make_progress(setting: Any) -> Progress | None:
    """The display for ``progress=setting``: False / None none; True, "widget" or "text" the factory's
    (one line where none is registered); a :class:`Progress` itself (a Dask partition's reports) as is."""
    if setting is False or setting is None:
        return None
    if callable(getattr(setting, "update", None)) and callable(getattr(setting, "finish", None)):
        shown: Progress = setting
        return shown
    if _factory is not None:
        return _factory(setting)
    return LineProgress()
