"""Fixtures for the offline backend tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from claudekit.offline import OfflineBackend, OfflineServer


@pytest.fixture
def backend() -> OfflineBackend:
    return OfflineBackend(signing_key=b"test-key")


@pytest.fixture
def server(backend: OfflineBackend) -> Iterator[OfflineServer]:
    with backend.serve() as srv:
        yield srv
