"""One 2-worker ``distributed.LocalCluster`` and one counting server for every Dask test of the session
(starting a cluster costs several seconds; the tests share it as kernels share a scheduler)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_support import RPM, Server, frame, run_map, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("server"))


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Server]:
    yield from start_server(tmp_path, RPM)


@pytest.fixture(scope="session")
def client(server: Server) -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    import dask

    # Several tests kill a worker. LocalCluster closes a worker's nanny for good when that worker is
    # still missing 15 s after an earlier removal, even while its new process starts: two kills within
    # 15 s could leave one worker for the rest of the session. (dask.config is global: read at removal.)
    lasting = dask.config.set({"distributed.deploy.lost-worker-timeout": "1h"})
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
    )
    with lasting, cluster, distributed.Client(cluster) as c:
        # One small job first, so the measured ones do not start with each worker's imports and first
        # request (about 2 s under load, measured: the limit's bucket would save up a burst meanwhile).
        run_map(frame(4, 2), server.url).compute()
        yield c


@pytest.fixture(autouse=True)
def _two_workers(request: pytest.FixtureRequest) -> None:
    """A test on the cluster starts with both workers (an earlier test may have killed one)."""
    if "client" in request.fixturenames:
        c = request.getfixturevalue("client")
        if len(c.scheduler_info()["workers"]) < 2:
            c.cluster.scale(2)  # reopens a worker whose nanny was closed
        c.wait_for_workers(2, timeout=60)
