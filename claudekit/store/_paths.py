"""Where the store lives and whether it is on: ``CLAUDEKIT_HOME`` and ``CLAUDEKIT_STORE``."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Literal

__all__ = ["DB_NAME", "Mode", "db_path", "default_home", "home", "mode"]

DB_NAME = "claudekit.db"
Mode = Literal["on", "usage", "off"]
_ON = ("", "1", "on", "true", "yes", "all")
_OFF = ("0", "off", "false", "no", "none")
_warned: set[str] = set()


def default_home() -> Path:
    """The user's data directory for claudekit (XDG on Linux, Application Support on macOS,
    %LOCALAPPDATA% on Windows)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "claudekit"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "claudekit"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "claudekit"


def home() -> Path:
    """``CLAUDEKIT_HOME`` when set, else :func:`default_home`."""
    value = os.environ.get("CLAUDEKIT_HOME")
    return Path(value).expanduser() if value else default_home()


def db_path() -> Path:
    return home() / DB_NAME


def mode() -> Mode:
    """``CLAUDEKIT_STORE``: unset/``on`` keeps everything, ``usage`` keeps usage without content,
    ``off`` keeps nothing. An unknown value keeps nothing (and says so once): a typo must not store
    conversations someone meant to keep out."""
    value = os.environ.get("CLAUDEKIT_STORE", "").strip().lower()
    if value in _ON:
        return "on"
    if value == "usage":
        return "usage"
    if value not in _OFF and value not in _warned:
        _warned.add(value)
        warnings.warn(
            f"claudekit.store: CLAUDEKIT_STORE={value!r} is not one of on, usage, off; storing nothing",
            UserWarning,
            stacklevel=3,
        )
    return "off"
