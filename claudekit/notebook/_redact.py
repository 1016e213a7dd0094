"""Secrets out of kernel context: what ``%claude why`` / ``fix`` send never carries a key.

Three nets, applied to every text the kernel context is built from:

- values that look like keys wherever they appear (``sk-ant-…``, ``sk-…``, GitHub, AWS, Slack, Google and
  Hugging Face tokens, JWTs, PEM private keys, ``Bearer …``);
- the value of every environment variable whose name looks like a secret (``*_API_KEY``, ``*TOKEN*``,
  ``*PASSWORD*``, …), wherever that value appears;
- string literals assigned to such names in source code (``api_key = "…"``, ``os.environ["X_TOKEN"] = "…"``,
  ``{"password": "…"}``), and the values of such variables in locals summaries (see :func:`looks_secret`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

__all__ = ["Redactor", "looks_secret"]

_SECRET_WORDS = frozenset(
    {
        "secret",
        "secrets",
        "token",
        "tokens",
        "password",
        "passwords",
        "passwd",
        "passphrase",
        "pwd",
        "pass",
        "credential",
        "credentials",
        "auth",
        "bearer",
        "cookie",
        "apikey",
        "privatekey",
        "sessionid",
    }
)
# Also found inside run-together names (PGPASSWORD, MYSECRET, apikey); "token" only at the end (HFTOKEN),
# so that a tokenizer keeps its repr.
_JOINED = ("apikey", "accesskey", "privatekey", "secretkey", "authtoken", "password", "passwd", "secret")
_PARTS = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

_KEY_PATTERNS = re.compile(
    "|".join(
        [
            r"sk-ant-[A-Za-z0-9_\-]{8,}",
            r"\bsk-[A-Za-z0-9_\-]{20,}",
            r"\bgh[pousr]_[A-Za-z0-9]{20,}",
            r"\bgithub_pat_[A-Za-z0-9_]{20,}",
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
            r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",
            r"\bAIza[0-9A-Za-z_\-]{35}",
            r"\bhf_[A-Za-z0-9]{30,}",
            r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
            r"\b[Bb][Ee][Aa][Rr][Ee][Rr]\s+[A-Za-z0-9._~+/\-]{16,}=*",
        ]
    )
)
# NAME = "literal", NAME: "literal", "NAME": "literal", ["NAME"] = "literal" (also == comparisons).
_LITERAL = re.compile(
    r"""(?P<name>\b[A-Za-z_]\w*)['"]?\]?\s*(?:[:=]=?)\s*(?P<q>['"])(?P<value>[^'"\n]*)(?P=q)"""
)
_MIN_ENV_VALUE = 6  # shorter values ("1", "true") would redact ordinary words


def looks_secret(name: str) -> bool:
    """True for names such as ``api_key``, ``ANTHROPIC_API_KEY``, ``authToken``, ``db_password``."""
    parts = [p.lower() for p in _PARTS.split(name) if p]
    if any(p in _SECRET_WORDS for p in parts):
        return True
    if len(parts) > 1 and parts[-1] == "key":
        return True
    joined = "".join(parts)
    return any(word in joined for word in _JOINED) or joined.endswith("token")


class Redactor:
    """Replaces secrets in texts and counts how many it replaced."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        # Longest first, so a value that contains another is replaced whole.
        self._env = sorted(
            (
                (name, value)
                for name, value in env.items()
                if looks_secret(name) and len(value) >= _MIN_ENV_VALUE
            ),
            key=lambda item: -len(item[1]),
        )
        self.count = 0

    def __call__(self, text: str) -> str:
        for name, value in self._env:
            if value in text:
                self.count += text.count(value)
                text = text.replace(value, f"[redacted: value of ${name}]")
        text, n = _KEY_PATTERNS.subn("[redacted: looks like a key]", text)
        self.count += n
        return _LITERAL.sub(self._literal, text)

    def _literal(self, m: re.Match[str]) -> str:
        if (
            not looks_secret(m.group("name"))
            or not m.group("value")
            or m.group("value").startswith("[redacted")
        ):
            return m.group(0)
        self.count += 1
        start, end = m.span("value")
        whole = m.group(0)
        offset = m.start()
        return whole[: start - offset] + "[redacted]" + whole[end - offset :]
