"""One 2-worker ``distributed.LocalCluster`` and one counting server for the Dask tests (starting a
cluster costs several seconds; the tests share it as kernels share a scheduler).

The cluster starts with the first test that asks for it and closes after the directory's last test, not
at the end of the session: its scheduler and client threads live in the pytest process, and the tests
that follow measure this process's CPU time while it waits (``tests/tools/test_loop.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_support import RPM, Server, frame, run_map, start_server

HERE = Path(__file__).parent.resolve()
_open: list[tuple[contextlib.ExitStack, Any]] = []  # (what closes it, its Client)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("server"))


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Server]:
    yield from start_server(tmp_path, RPM)


@pytest.fixture
def client(server: Server) -> Any:
    """The shared cluster's Client, with both workers up (an earlier test may have killed one)."""
    if not _open:
        _open.append(_start(server))
    c = _open[0][1]
    if len(c.scheduler_info()["workers"]) < 2:
        c.cluster.scale(2)  # reopens a worker whose nanny was closed
    c.wait_for_workers(2, timeout=60)
    return c


def _start(server: Server) -> tuple[contextlib.ExitStack, Any]:
    distributed = pytest.importorskip("distributed")
    import dask

    stack = contextlib.ExitStack()
    # Several tests kill a worker. LocalCluster closes a worker's nanny for good when that worker is
    # still missing 15 s after an earlier removal, even while its new process starts: two kills within
    # 15 s could leave one worker for the rest of the run. (dask.config is global: read at removal.)
    stack.enter_context(dask.config.set({"distributed.deploy.lost-worker-timeout": "1h"}))
    cluster = stack.enter_context(
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
        )
    )
    c = stack.enter_context(distributed.Client(cluster))
    # One small job first, so the measured ones do not start with each worker's imports and first
    # request (about 2 s under load, measured: the limit's bucket would save up a burst meanwhile).
    run_map(frame(4, 2), server.url).compute()
    return stack, c


def _close() -> None:
    while _open:
        _open.pop()[0].close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield
    if _open and (nextitem is None or HERE not in nextitem.path.resolve().parents):
        _close()


def pytest_sessionfinish() -> None:
    _close()
