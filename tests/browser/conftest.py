"""The browser tests' shared server and browser, and the failed-test hook their fixtures read.

One JupyterLab server and one headless Chromium serve every test file in tests/browser (starting them
per file cost several seconds each). Isolation is per test: a fresh browser context, a notebook name of
its own, and its kernels shut down when it ends (the ``session`` fixture in test_jupyterlab.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep


# Imported inside the fixtures: test_jupyterlab skips its module (and so these) without Chromium/playwright.
@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.browser.test_jupyterlab import running_lab

    with running_lab(tmp_path_factory.mktemp("jupyterlab")) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from tests.browser.test_jupyterlab import running_browser

    with running_browser() as b:
        yield b
