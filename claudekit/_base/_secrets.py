"""claudekit's one redaction function: what the store, cassettes, a job's state file, usage logs and
saved conversations all apply before writing, and what a prompt field is checked with.

Redacted: the key actually in use (``ANTHROPIC_API_KEY`` / ``ANTHROPIC_AUTH_TOKEN`` and every key a
client of claudekit was given, whatever its shape: a gateway's key is not ``sk-ant-…``), key-shaped
strings (``sk-ant-…``, other providers' ``sk-…``) and bearer tokens.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any

__all__ = ["REDACTED", "add_secret", "current_secrets", "has_secret", "remember_client", "scrub"]

REDACTED = "[redacted]"
# Anthropic keys and tokens (sk-ant-api03-…, sk-ant-admin01-…, sk-ant-oat01-…), and other providers'
# "sk-" keys (sk-proj-…, sk-svcacct-…, sk-or-v1-…, with "_" and "-" inside), matched to their end; not
# "risk-averse" or "task-list" (a letter before the "sk-") nor "sk-learn-compatible" (no digit in it).
_KEY_RE = re.compile(
    r"(?<![A-Za-z0-9_-])sk-(?:ant-[A-Za-z0-9_\-]{8,}"
    r"|(?:proj-|svcacct-|admin-|or-v1-)?(?=[A-Za-z0-9_\-]*\d)[A-Za-z0-9][A-Za-z0-9_\-]{19,})"
)
# "Bearer <token>" (an Authorization header's value); 16+ characters so that "bearer of news" stays.
_BEARER_RE = re.compile(r"\b([Bb][Ee][Aa][Rr][Ee][Rr]\s+)[A-Za-z0-9._~+/\-]{16,}=*")
_ENV = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
_MIN_SECRET = 8  # shorter values would redact ordinary words
# A run this long of a known secret is redacted too: a format precision ("{key:.39}"), pandas' cell width
# or a length cap cut a key short, and all but its last characters must not leave as a prompt or a file.
_PIECE = 16
_lock = threading.Lock()
_known: set[str] = set()


def add_secret(value: str | None) -> None:
    """Remember a key in use (a client's ``api_key``) so that its exact text is redacted too."""
    if isinstance(value, str) and len(value) >= _MIN_SECRET:
        with _lock:
            _known.add(value)


def remember_client(client: Any) -> None:
    """Remember the keys an SDK client sends (``api_key``, ``auth_token``)."""
    add_secret(getattr(client, "api_key", None))
    add_secret(getattr(client, "auth_token", None))


def _secrets() -> list[str]:
    found = [v for name in _ENV if (v := os.environ.get(name)) and len(v) >= _MIN_SECRET]
    with _lock:
        found.extend(_known)
    # As written inside JSON too (a key with a quote or a backslash is escaped there).
    found.extend([escaped for v in found if (escaped := json.dumps(v)[1:-1]) != v])
    # Longest first: a key that contains another is replaced whole.
    return sorted(set(found), key=len, reverse=True)


def scrub(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with every known secret, key-shaped string and bearer token replaced by ``[redacted]``.

    The places are found on the text as given and merged before anything is replaced, so one secret's
    redaction never cuts another's run short (two keys that share a stretch of characters)."""
    spans: list[tuple[int, int]] = []
    for secret in _secrets() if secrets is None else secrets:
        spans += _piece_spans(text, secret) if len(secret) >= _PIECE else _exact_spans(text, secret)
    if "sk-" in text:
        spans += [m.span() for m in _KEY_RE.finditer(text)]
    text = _replaced(text, spans)
    if "earer" in text or "EARER" in text:
        text = _BEARER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def _exact_spans(text: str, secret: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    while (p := text.find(secret, start)) >= 0:
        spans.append((p, p + len(secret)))
        start = p + 1
    return spans


def _piece_spans(text: str, secret: str) -> list[tuple[int, int]]:
    """Every run of ``_PIECE`` or more characters of ``secret`` in ``text``, extended to its whole run."""
    spans: list[tuple[int, int]] = []
    for k in range(len(secret) - _PIECE + 1):
        window, start = secret[k : k + _PIECE], 0
        while (p := text.find(window, start)) >= 0:
            a, j = p, k
            while a > 0 and j > 0 and text[a - 1] == secret[j - 1]:
                a, j = a - 1, j - 1
            b, j = p + _PIECE, k + _PIECE
            while b < len(text) and j < len(secret) and text[b] == secret[j]:
                b, j = b + 1, j + 1
            spans.append((a, b))
            start = p + 1
    return spans


def _replaced(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each stretch that ``spans`` cover (overlapping or touching spans merged) redacted."""
    if not spans:
        return text
    out: list[str] = []
    last, end = 0, -1
    for a, b in sorted(spans):
        if a <= end:  # overlaps or touches the stretch being built
            end = max(end, b)
            continue
        if end >= 0:
            out.append(REDACTED)
            last = end
        out.append(text[last:a])
        end = b
    out.append(REDACTED)
    out.append(text[end:])
    return "".join(out)


def has_secret(text: str, secrets: list[str] | None = None) -> bool:
    """Whether :func:`scrub` would change ``text``."""
    return scrub(text, secrets) != text


def current_secrets() -> list[str]:
    """The secrets :func:`scrub` looks for now (read once per batch by a writer)."""
    return _secrets()
