"""Thinking-block signatures: opaque base64 carrying an HMAC held by the backend."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

__all__ = ["ThinkingSigner"]

_MAGIC = b"\x12\x4cck-offline-v1"


class ThinkingSigner:
    """Signs thinking text so the backend can tell whether a block was altered."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else os.urandom(32)

    def sign(self, thinking: str) -> str:
        digest = hmac.new(self._key, b"thinking\x00" + thinking.encode(), hashlib.sha256).digest()
        # Padding with a digest-derived tail makes the value look like the service's long opaque blobs.
        tail = hashlib.sha256(digest).digest()
        return base64.b64encode(_MAGIC + digest + tail).decode()

    @staticmethod
    def issued(signature: str) -> bool:
        """Whether ``signature`` has this backend's format (any key): only those can be verified."""
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        return raw.startswith(_MAGIC)

    def verify(self, thinking: str, signature: str) -> bool:
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = base64.b64decode(self.sign(thinking))
        return hmac.compare_digest(raw, expected)
