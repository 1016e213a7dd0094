"""One-line notes for people: said once per process per key, through logging (never a traceback)."""

from __future__ import annotations

import logging

__all__ = ["say_once"]

log = logging.getLogger("claudekit")
_said: set[str] = set()


def say_once(message: str, *, key: str | None = None, logger: logging.Logger | None = None) -> None:
    """A one-line warning, once per process per key (logging's last-resort handler prints it to stderr)."""
    k = key or message
    if k in _said:
        return
    _said.add(k)
    (logger or log).warning("claudekit: %s", message)
