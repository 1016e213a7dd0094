"""Inputs a user gets wrong or tables that are not tidy: told before anything is sent (or per row), never
paid for twice, never lost. Through real HTTP: the offline backend's in-process transport."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import claudekit as ck
from claudekit.offline import OfflineBackend

from .conftest import calls, messages_sent

pytestmark = pytest.mark.timeout(60)


def _blocked(tmp_path: Path) -> list[Path]:
    """State paths that cannot be written: under a file, and a directory."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    return [blocker / "job.jsonl", folder]


async def test_an_unwritable_state_file_is_one_line_before_anything_is_sent(
    backend: OfflineBackend, tmp_path: Path
):
    df = pd.DataFrame({"id": ["a", "b", "c"]})
    for state in _blocked(tmp_path):
        with pytest.raises(ck.ConfigError) as info:
            await ck.map(df, "id={id}", offline=backend, state=state, progress=False)
        assert str(state) in str(info.value) and "\n" not in str(info.value)
        with pytest.raises(ck.ConfigError):
            await ck.batch(df, "id={id}", offline=backend, state=state, progress=False)
    # Nothing was sent, so nothing was paid for and then lost with the error.
    assert messages_sent(backend) == 0 and calls(backend, "POST", "/v1/messages/batches") == 0

