from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from claudekit import store
from claudekit.usage import set_budget, set_prices


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A store of this test's own under tmp_path (the session's temporary home is shared by all tests)."""
    monkeypatch.setenv("CLAUDEKIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLAUDEKIT_STORE", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    set_prices(None)
    yield tmp_path / "home"
    current = store.get_store()
    if current is not None:
        current.close()
    set_budget(None)
    set_prices(None)
