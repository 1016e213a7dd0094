"""Nothing that looks like an API key is ever written to the store."""

from __future__ import annotations

import os
import re
import threading

__all__ = ["REDACTED", "add_secret", "scrub"]

REDACTED = "[redacted]"
# Anthropic keys and tokens (sk-ant-api03-…, sk-ant-admin01-…, sk-ant-oat01-…), and other providers'
# "sk-" keys made of one long random run; not "risk-averse" or "task-list" (a letter before the "sk-").
_KEY_RE = re.compile(r"(?<![A-Za-z0-9_-])sk-(?:ant-[A-Za-z0-9_\-]{8,}|(?:proj-)?[A-Za-z0-9]{20,})")
_ENV = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
_MIN_SECRET = 8  # shorter values would redact ordinary words
_lock = threading.Lock()
_known: set[str] = set()


def add_secret(value: str | None) -> None:
    """Remember a key in use (a client's ``api_key``) so that its exact text is redacted too."""
    if value and len(value) >= _MIN_SECRET:
        with _lock:
            _known.add(value)


def _secrets() -> list[str]:
    found = [v for name in _ENV if (v := os.environ.get(name)) and len(v) >= _MIN_SECRET]
    with _lock:
        found.extend(_known)
    # Longest first: a key that contains another is replaced whole.
    return sorted(set(found), key=len, reverse=True)


def scrub(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with every known secret and every key-shaped string replaced by ``[redacted]``."""
    for secret in _secrets() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "sk-" in text:
        text = _KEY_RE.sub(REDACTED, text)
    return text


def current_secrets() -> list[str]:
    """The secrets :func:`scrub` looks for now (read once per batch by the writer)."""
    return _secrets()
