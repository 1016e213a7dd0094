"""Nothing that looks like an API key is ever written to the store: claudekit's one redaction function.

It lives in :mod:`claudekit._base._secrets` so that every file claudekit writes (cassettes, a job's state
file, usage logs, saved conversations) redacts exactly as the store does.
"""

from __future__ import annotations

from .._base._secrets import REDACTED, add_secret, current_secrets, scrub

__all__ = ["REDACTED", "add_secret", "current_secrets", "scrub"]
