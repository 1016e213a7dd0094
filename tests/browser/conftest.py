"""The browser tests' shared server and browser, and the failed-test hook their fixtures read.

One JupyterLab server and one headless Chromium serve every test file in tests/browser (starting them
per file cost several seconds each). Isolation is per test: a fresh browser context, a notebook name of
its own, and its kernels shut down when it ends (the ``session`` fixture in test_jupyterlab.py).

They start with the first browser test and stop after the last one of the directory, not at the end of
the whole run: while Playwright's sync API is alive the main thread counts as inside a running event
loop, so ``asyncio.run`` (and pytest-asyncio) would fail in every test after this directory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
_shared: dict[str, Any] = {}
_stack = contextlib.ExitStack()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After a test's own teardown: stop the server and browser if the next test is not a browser test."""
    try:
        yield
    finally:
        if nextitem is None or HERE not in nextitem.path.resolve().parents:
            _close()


def pytest_sessionfinish() -> None:
    _close()  # an interrupted run


def _close() -> None:
    _shared.clear()
    _stack.close()


# Imported inside the fixtures: test_jupyterlab skips its module (and so these) without Chromium/playwright.
@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if "lab" not in _shared:
        from tests.browser.test_jupyterlab import running_lab

        base = tmp_path_factory.mktemp("jupyterlab")
        _shared["lab"] = _stack.enter_context(running_lab(base))
    return _shared["lab"]


@pytest.fixture
def browser() -> Any:
    if "browser" not in _shared:
        from tests.browser.test_jupyterlab import running_browser

        _shared["browser"] = _stack.enter_context(running_browser())
    return _shared["browser"]
