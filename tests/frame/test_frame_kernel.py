"""The progress of a DataFrame job in a real ipykernel: a throttled bar, then a static summary line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notebook.kernel import Kernel, started_kernel

pytestmark = pytest.mark.timeout(120)
WIDGET = "application/vnd.jupyter.widget-view+json"

SETUP = """
import time
import pandas as pd
import claudekit as ck
from claudekit.offline import OfflineBackend, Turn

def slow(request):
    time.sleep(0.02)  # 40 rows take about a second: several refreshes of the bar
    return Turn(text="ok")

backend = OfflineBackend(responder=slow)
df = pd.DataFrame({"id": [f"r{i}" for i in range(40)]})
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with started_kernel(SETUP) as k:
        yield k


def test_a_live_job_shows_a_throttled_bar_then_leaves_its_summary(kernel: Kernel) -> None:
    run = kernel.ok(
        'out = await ck.map(df, "id={id}", offline=backend, concurrency=4)\n'
        'bool(out["claude_status"].eq("ok").all())'
    )

    assert run.results[-1]["text/plain"] == "True"
    live, final = run.displays[0], run.displays[-1]
    assert WIDGET in live and live["text/plain"] == ""
    assert final == {"text/plain": final["text/plain"]}  # plain text: a saved notebook shows it as is
    assert final["text/plain"].startswith("claudekit map · 40/40 rows · 40 ok · $")
    # The bar's value moves up to 40 in a few throttled refreshes (at most 10 a second), not 40 of them.
    models = {
        m["content"]["comm_id"]: m["content"]["data"]["state"]["_model_name"]
        for m in run.of_type("comm_open")
    }
    updates = [
        (models.get(m["content"]["comm_id"]), m["content"]["data"]["state"]) for m in run.comm_updates()
    ]
    values = [state["value"] for name, state in updates if name == "IntProgressModel" and "value" in state]
    assert values == sorted(values) and 2 <= len(values) <= 15 and values[-1] <= 40
    lines = [state["value"] for name, state in updates if name == "HTMLModel" and "value" in state]
    assert any("rows/s" in line for line in lines), "the live line shows the rate"
    # The live output is emptied and its widgets closed: nothing is left that needs widget state.
    emptied = [m for m in run.of_type("update_display_data") if m["content"]["data"] == {"text/plain": ""}]
    assert len(emptied) == 1 and len(run.of_type("comm_close")) >= 3


def test_progress_false_shows_nothing(kernel: Kernel) -> None:
    run = kernel.ok('out = await ck.map(df.head(3), "id={id}", offline=backend, progress=False)')
    assert run.displays == [] and run.comm_updates() == []


def test_retry_and_cancel_as_the_readme_writes_them_work_in_a_kernel(kernel: Kernel) -> None:
    kernel.ok(
        "from claudekit.offline import BatchSettings\n"
        "failed = set()\n"
        "def once(cid, params):\n"
        "    text = params['messages'][-1]['content'][0]['text']\n"
        "    if text == 'id=r1' and text not in failed:\n"
        "        failed.add(text)\n"
        "        return 'errored'\n"
        "bb = OfflineBackend(batches=BatchSettings(processing_seconds=0.0, fault=once))\n"
        "job = await ck.batch(df.head(3), 'id={id}', offline=bb, progress=False, poll_interval=0.01)\n"
        "first = await job"
    )
    kernel.ok("job.retry()")  # a cell of its own, without await, as the README lists it
    run = kernel.ok("out = await job\nout['claude_status'].tolist()")
    assert run.results[-1]["text/plain"] == "['ok', 'ok', 'ok']"
    kernel.ok(
        "slow = OfflineBackend(batches=BatchSettings(processing_seconds=30.0))\n"
        "other = await ck.batch(df.head(3), 'id={id}', offline=slow, progress=False, poll_interval=0.01)"
    )
    kernel.ok("other.cancel()")
    run = kernel.ok("sorted(set((await other)['claude_status']))")
    assert run.results[-1]["text/plain"] == "['canceled']"
