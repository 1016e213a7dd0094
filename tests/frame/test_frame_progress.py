"""Progress of a job: one line in a terminal (redrawn in place), the final line elsewhere."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest

import claudekit as ck
from claudekit.frame import LineProgress, Snapshot
from claudekit.notebook import configure
from claudekit.notebook._frame_progress import make_frame_progress
from claudekit.offline import OfflineBackend


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_is_redrawn_in_place_and_throttled():
    out = Terminal()
    bar = LineProgress(out, rate=1.0)
    snap = Snapshot("map", total=10, done=4, ok=3, errors=1, cost_usd=0.0123, elapsed_s=2.0)
    bar.update(snap)
    bar.update(Snapshot("map", total=10, done=5, ok=4, errors=1, elapsed_s=2.1))  # within 1 s: held back
    text = out.getvalue()
    assert text.startswith("\r") and text.count("\r") == 1
    assert "4/10 rows · 3 ok · 1 error · $0.0123" in text and "2.0 rows/s" in text and "ETA 3.0 s" in text
    bar.finish(Snapshot("map", total=10, done=10, ok=9, errors=1, elapsed_s=5.0), None)
    last = out.getvalue().split("\r")[-1]
    assert last.startswith("claudekit map · 10/10 rows · 9 ok · 1 error") and last.endswith("\n")
    assert last.rstrip().endswith("5.0 s")  # padded with spaces over the longer live line
    assert "ETA" not in last


def test_off_a_terminal_only_the_final_line_is_written():
    out = io.StringIO()
    bar = LineProgress(out)
    bar.update(Snapshot("batch", total=3, done=1, ok=1, elapsed_s=0.5))
    assert out.getvalue() == ""
    bar.finish(Snapshot("batch", total=3, done=3, ok=2, skipped=1, elapsed_s=1.0), KeyboardInterrupt())
    assert (
        out.getvalue()
        == "claudekit batch · 3/3 rows · 2 ok · 1 skipped · $0.0000 · 1.0 s · stopped (KeyboardInterrupt)\n"
    )


async def test_a_job_with_text_progress_reports_its_outcome(capsys: pytest.CaptureFixture[str]):
    df = pd.DataFrame({"id": ["a", "b", "c"]})
    await ck.map(df, "id={id}", offline=OfflineBackend(), progress="text")
    err = capsys.readouterr().err
    assert "claudekit map · 3/3 rows · 3 ok" in err
    await ck.map(df, "id={id}", offline=OfflineBackend(), progress=False)
    assert capsys.readouterr().err == ""


def test_the_notebook_factory_follows_the_rendering_mode(monkeypatch: pytest.MonkeyPatch):
    assert make_frame_progress(True) is None  # CLAUDEKIT_RENDER=0 in the tests
    try:
        configure(mode="text")
        assert isinstance(make_frame_progress(True), LineProgress)
    finally:
        configure(mode="env")
    monkeypatch.setenv("CLAUDEKIT_RENDER", "text")
    bar: Any = make_frame_progress(True)
    assert isinstance(bar, LineProgress)
