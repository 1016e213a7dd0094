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
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
    )
    with cluster, distributed.Client(cluster) as c:
        # One small job first, so the measured ones do not start with each worker's imports and first
        # request (about 2 s under load, measured: the limit's bucket would save up a burst meanwhile).
        run_map(frame(4, 2), server.url).compute()
        yield c
