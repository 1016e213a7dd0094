"""A real ipykernel driven with jupyter_client, for the notebook tests and the view benchmark."""

from __future__ import annotations

import ast
import os
import queue
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client import KernelManager

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CellRun:
    """What one execute_request produced on iopub, plus its reply."""

    msg_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in types]

    @property
    def status(self) -> str:
        return str(self.reply.get("content", {}).get("status"))

    @property
    def stdout(self) -> str:
        return "".join(
            m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stdout"
        )

    @property
    def stderr(self) -> str:
        return "".join(
            m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stderr"
        )

    @property
    def displays(self) -> list[dict[str, Any]]:
        """``data`` of display_data messages (new outputs), in order."""
        return [m["content"]["data"] for m in self.of_type("display_data")]

    @property
    def results(self) -> list[dict[str, Any]]:
        return [m["content"]["data"] for m in self.of_type("execute_result")]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [m["content"] for m in self.of_type("error")]

    def comm_updates(self) -> list[dict[str, Any]]:
        """comm_msg messages the kernel sent that change widget state."""
        return [m for m in self.of_type("comm_msg") if m["content"].get("data", {}).get("method") == "update"]


class Kernel:
    """One kernel running this venv's Python, with CLAUDEKIT_RENDER unset (auto: widgets)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        # The test session's claudekit settings stay out, except where the store writes (a temporary
        # CLAUDEKIT_HOME, see conftest.py): a kernel must never write to the user's data directory. Outside
        # pytest (the benchmarks) the kernel gets a temporary home of its own, removed at shutdown.
        kernel_env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDEKIT_", "PYTEST_"))}
        own = "CLAUDEKIT_HOME" not in os.environ
        self._own_home = tempfile.mkdtemp(prefix="claudekit-kernel-") if own else None
        kernel_env["CLAUDEKIT_HOME"] = os.environ.get("CLAUDEKIT_HOME") or str(self._own_home)
        kernel_env.pop("ANTHROPIC_API_KEY", None)
        kernel_env["PYTHONPATH"] = str(ROOT) + os.pathsep + kernel_env.get("PYTHONPATH", "")
        kernel_env.update(env or {})
        self.km = KernelManager(kernel_name="python3")
        self.km.kernel_cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        self.km.start_kernel(env=kernel_env, cwd=str(ROOT))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def execute(
        self,
        code: str,
        timeout: float = 60.0,
        *,
        interrupt_after: float | None = None,
        on_message: Callable[[dict[str, Any]], None] | None = None,
        every_message: bool = False,
    ) -> CellRun:
        """Run a cell and collect its iopub messages until the kernel is idle again.

        ``on_message`` sees each of the cell's iopub messages as it arrives (e.g. to click a button);
        with ``every_message``, also those of other requests meanwhile (as a page sees them all).
        """
        started = time.perf_counter()
        msg_id = self.kc.execute(code, store_history=True)
        run = CellRun(msg_id)
        deadline = time.monotonic() + timeout
        interrupted = interrupt_after is None
        idle = False
        while not idle:
            if not interrupted and time.perf_counter() - started >= (interrupt_after or 0.0):
                self.km.interrupt_kernel()
                interrupted = True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell did not finish in {timeout} s: {code[:80]!r}")
            try:
                msg = self.kc.get_iopub_msg(timeout=min(remaining, 0.05))
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                if every_message and on_message is not None:
                    on_message(msg)
                continue
            run.messages.append(msg)
            if on_message is not None:
                on_message(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
        run.reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
        while run.reply["parent_header"].get("msg_id") != msg_id:
            run.reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
        run.seconds = time.perf_counter() - started
        return run

    def send_comm(self, comm_id: str, data: dict[str, Any]) -> None:
        """What a frontend sends for a widget: ``comm_msg`` on the shell channel."""
        self.kc.session.send(self.kc.shell_channel.socket, "comm_msg", {"comm_id": comm_id, "data": data})

    def ok(self, code: str, timeout: float = 60.0) -> CellRun:
        run = self.execute(code, timeout)
        assert run.status == "ok", (run.errors, run.stderr)
        return run

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
        if self._own_home is not None:
            shutil.rmtree(self._own_home, ignore_errors=True)


@contextmanager
def started_kernel(setup: str, env: dict[str, str] | None = None) -> Iterator[Kernel]:
    """A kernel that has run ``setup`` (which must succeed), shut down on the way out whatever happened."""
    k = Kernel(env)
    try:
        k.ok(setup)
        yield k
    finally:
        k.shutdown()


def value(k: Kernel, expr: str) -> object:
    """The Python literal an expression evaluates to in the kernel."""
    run = k.ok(expr)
    assert run.results, run.errors
    return ast.literal_eval(run.results[0]["text/plain"])
