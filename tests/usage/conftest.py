from __future__ import annotations

from collections.abc import Iterator

import pytest

from claudekit.usage import set_prices


@pytest.fixture(autouse=True)
def _fresh_prices() -> Iterator[None]:
    """Every test starts from the shipped price table with no 'already warned' memory."""
    set_prices(None)
    yield
    set_prices(None)
