"""A kernel interrupt during any wait ends the cell within a second (issue 12, problem 9).

ipykernel turns SIGINT into a plain ``call_soon`` that does not wake an event loop asleep in select(),
so before the fix an interrupt during the HTTP wait did nothing until some other kernel message came
(measured: a cell still busy 150 s after two interrupts). These tests send nothing to the kernel but the
signal (``interrupt_kernel`` with the default signal mode) and only read its iopub channel.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.notebook.kernel import Kernel, started_kernel

SETUP = """
import claudekit as ck
from claudekit.offline import OfflineBackend, Script, Turn, Fault
"""
# IPython imports its traceback formatter the first time it shows an exception (about a second here);
# that is IPython's one-off cost, not the interrupt's, so the fixture pays it first.
WARM_UP = "raise ValueError('warm-up')"


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with started_kernel(SETUP, env={"CLAUDEKIT_RENDER": "off"}) as k:
        assert k.execute(WARM_UP).status == "error"
        yield k


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A server that accepts connections and never answers (a hung upstream)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for c in held:
            c.close()
        srv.close()


def interrupted_after(kernel: Kernel, cell: str, wait: float = 1.5) -> float:
    """Run ``cell``, interrupt it after ``wait`` s, return the seconds from the interrupt to idle."""
    run = kernel.execute(cell, interrupt_after=wait, timeout=30)
    assert run.status == "error", run.messages[-3:]
    assert any(e["ename"] in ("CancelledError", "KeyboardInterrupt") for e in run.errors), run.errors
    return run.seconds - wait


@pytest.mark.parametrize(
    "setup",
    [
        # first byte: a real socket to a server that accepted and says nothing
        "chat = ck.Chat(base_url='http://127.0.0.1:{PORT}', api_key='sk-test-not-a-real-key', max_retries=0)",
        # the offline backend holding back the response headers
        "chat = ck.Chat(offline=OfflineBackend(responder=Script([Fault.stall(60)])))",
        # the SDK's retry back-off after a 429 with retry-after: 30
        "chat = ck.Chat(offline=OfflineBackend(responder=Script([Fault.status(429, retry_after=30)])))",
    ],
    ids=["first-byte", "headers-stall", "retry-backoff"],
)
def test_an_interrupt_during_a_wait_ends_the_cell_within_a_second(
    kernel: Kernel, silent_server: int, setup: str
) -> None:
    kernel.ok(setup.replace("{PORT}", str(silent_server)))
    took = interrupted_after(kernel, "reply = await chat('hello?')")
    assert took < 1.0, f"the cell ended {took:.2f} s after the interrupt"
    started = time.perf_counter()
    run = kernel.ok("print(chat.last_reply.status, len(chat.history), chat.history.problems())")
    assert run.stdout.split() == ["interrupted", "0", "[]"]  # nothing arrived: the prompt is taken back
    assert time.perf_counter() - started < 10
