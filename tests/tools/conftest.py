"""Tools tests: the denied-tool run counter is checked once, at the end of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from claudekit._base import _notes
from claudekit._tooling import _approval

from .helpers import DENIED_TOOL_RUNS


@pytest.fixture(autouse=True, scope="session")
def _denied_tools_never_ran(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"tests/tools: denied tool function bodies run: {DENIED_TOOL_RUNS['count']}")
    assert DENIED_TOOL_RUNS["count"] == 0, "a denied tool ran"


@pytest.fixture(autouse=True)
def _clean_policy_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CLAUDEKIT_APPROVAL", raising=False)
    monkeypatch.delenv("CLAUDEKIT_APPROVAL_GRACE", raising=False)
    _approval.set_default_approval(None)
    _notes._said.clear()
    yield
    _approval.set_default_approval(None)
