"""Reliability tests: run sizes and the end-of-session report.

Default run: reduced sizes (well under a minute). Full run (documented in docs/reliability.md)::

    CLAUDEKIT_RELIABILITY=full python -m pytest tests/reliability -p no:cacheprovider

``CLAUDEKIT_RELIABILITY_REPORT=path.json`` also writes the counts as JSON.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from ._support import FULL, REPORT, note

_started: list[float] = []


@pytest.fixture(autouse=True, scope="session")
def _reliability_clock() -> None:
    if not _started:
        _started.append(time.perf_counter())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORT:
        return
    note("run", "mode", "full" if FULL else "default")
    if _started:
        note("run", "seconds", round(time.perf_counter() - _started[0], 1))
    terminalreporter.section("reliability")
    for section, values in REPORT.items():
        shown = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
        terminalreporter.write_line(f"{section}: {shown}")
    path = os.environ.get("CLAUDEKIT_RELIABILITY_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(REPORT, fh, indent=2, sort_keys=True, default=str)
