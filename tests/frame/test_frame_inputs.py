"""Inputs a user gets wrong or tables that are not tidy: told before anything is sent (or per row), never
paid for twice, never lost. Through real HTTP: the offline backend's in-process transport."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import claudekit as ck
from claudekit.offline import BatchSettings, OfflineBackend

from .conftest import EchoResponder, calls, messages_sent

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


@pytest.mark.parametrize("template", ["{0} {id}", "{} {id}", "{my col}", "{id!x}"])
async def test_a_template_that_cannot_work_for_any_row_is_an_error_before_anything_is_sent(
    backend: OfflineBackend, template: str
):
    df = pd.DataFrame({"id": ["a", "b"], "my col": ["x", "y"]})
    with pytest.raises(ck.ConfigError) as info:
        await ck.map(df, template, offline=backend, progress=False)
    assert "\n" not in str(info.value)
    assert backend.http_log == []


async def test_a_missing_cell_is_that_rows_error_and_nan_is_never_sent(
    backend: OfflineBackend, echo: EchoResponder
):
    df = pd.DataFrame(
        {"id": ["a", None, "c", "d", "e"], "note": ["x", "y", np.nan, pd.NA, "z"]}, index=[5, 4, 3, 2, 1]
    )
    df["when"] = pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", None])
    out = await ck.map(df, "id={id} {note} {when}", offline=backend, progress=False)

    assert out["claude_status"].tolist() == ["ok"] + ["prompt_error"] * 4
    assert out.loc[5, "claude_text"] == "answer for a"
    assert "'id'" in out.loc[4, "claude_error"] and "'note'" in out.loc[3, "claude_error"]
    assert "'when'" in out.loc[1, "claude_error"] and "fillna" in out.loc[1, "claude_error"]
    assert messages_sent(backend) == 1 and echo.seen == ["a"]
    # The batch path plans the same way: the missing rows are not submitted.
    backend.batches.settings = BatchSettings(processing_seconds=0.0)
    job = await ck.batch(df, "id={id} {note} {when}", offline=backend, progress=False, poll_interval=0.01)
    assert isinstance(job, ck.BatchJob)
    res = await job
    assert res["claude_status"].tolist() == out["claude_status"].tolist()


async def test_duplicate_column_names_are_one_line_before_anything_is_sent(backend: OfflineBackend):
    df = pd.DataFrame([["a", "b", "c"]], columns=["x", "x", "y"])
    for prompt in ("{x}", lambda row: str(row)):
        with pytest.raises(ck.ConfigError, match="'x'") as info:
            await ck.map(df, prompt, offline=backend, progress=False)
        assert "\n" not in str(info.value)
    out = await ck.map(df, "id={y}", offline=backend, progress=False)  # the template does not read x
    assert out["claude_text"].tolist() == ["answer for c"]


async def test_resuming_where_the_batch_is_unknown_says_which_server_to_use(tmp_path: Path):
    state = tmp_path / "job.jsonl"
    first = OfflineBackend(responder=EchoResponder(), batches=BatchSettings(processing_seconds=30.0))
    df = pd.DataFrame({"id": ["a", "b"]})
    job = await ck.batch(df, "id={id}", offline=first, state=state, progress=False)
    assert isinstance(job, ck.BatchJob)
    # A new kernel whose in-process offline backend is a new one: it never saw that batch.
    again = ck.BatchJob.resume(state, offline=OfflineBackend(), progress=False)
    with pytest.raises(ck.ConfigError) as info:
        await again.wait(poll_interval=0.01)
    line = str(info.value)
    assert job.batch_ids[0] in line and "base_url" in line and "\n" not in line


async def test_a_submitted_batch_that_is_never_awaited_leaves_no_open_file(
    backend: OfflineBackend, tmp_path: Path
):
    import gc
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job = await ck.batch(
            pd.DataFrame({"id": ["a"]}), "id={id}", offline=backend, state=tmp_path / "s.jsonl"
        )
        assert isinstance(job, ck.BatchJob)
        del job
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


async def test_a_state_file_that_fills_up_mid_job_warns_and_the_answers_are_returned(
    backend: OfflineBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from claudekit.frame import _state

    line = _state.StateFile._line

    def disk_full(self: _state.StateFile, fact: dict[str, object]) -> None:
        if fact.get("t") == "res":  # the disk fills up once the job is under way
            raise OSError(errno.ENOSPC, "No space left on device")
        line(self, fact)

    monkeypatch.setattr(_state.StateFile, "_line", disk_full)
    df = pd.DataFrame({"id": ["a", "b", "c"]})
    with pytest.warns(UserWarning) as caught:
        out = await ck.map(df, "id={id}", offline=backend, state=tmp_path / "job.jsonl", progress=False)
    assert out["claude_text"].tolist() == ["answer for a", "answer for b", "answer for c"]
    said = [str(w.message) for w in caught if "state file" in str(w.message)]
    assert len(said) == 1 and "No space left" in said[0] and "\n" not in said[0]
    assert messages_sent(backend) == 3


async def test_a_method_in_a_field_is_never_sent_as_its_repr(backend: OfflineBackend):
    # "{text.upper}" names the bound method, whose text is "<built-in method upper of str object at 0x…>":
    # garbage to pay for, with an address that changed every run so state= never found the answer.
    df = pd.DataFrame({"text": ["a", "b"]})
    out = await ck.map(df, "{text.upper}", offline=backend, progress=False)
    assert list(out["claude_status"]) == ["prompt_error", "prompt_error"]
    assert out["claude_error"].str.contains("function or method").all()
    assert messages_sent(backend) == 0
