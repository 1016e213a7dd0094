"""claudekit's exceptions: one hierarchy, one line each saying what happened and what to do.

Errors raised while a reply streams carry ``.reply``: the partial :class:`~claudekit.Reply` with the
text, thinking, tool arguments and usage received before the failure. The chat's history is left valid.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

import anthropic
import httpx2
import pydantic

if TYPE_CHECKING:
    from ._reply import Reply

__all__ = [
    "INTERRUPTS",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "BusyError",
    "CassetteMissError",
    "ClaudekitError",
    "ConfigError",
    "IncompleteStreamError",
    "MalformedStreamError",
    "MissingAPIKeyError",
    "NetworkError",
    "OutputFormatError",
    "OverloadedError",
    "RateLimitError",
    "ServerError",
    "StreamError",
    "TimeoutError",
    "from_sdk_error",
]

# What an interrupt looks like from inside a coroutine: the kernel's SIGINT (a cancelled task), Ctrl-C in a
# script, or a generator being closed (the consumer stopped iterating).
INTERRUPTS = (asyncio.CancelledError, KeyboardInterrupt, GeneratorExit)


class ClaudekitError(Exception):
    """Base class. ``str(err)`` is a single line: what happened, then what to do.

    When the error ended a reply that had already received something, the line says that the partial
    answer is kept on ``err.reply``; when nothing arrived it does not pretend otherwise.
    """

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None, reply: Reply | None = None) -> None:
        self.message = message
        if hint is not None:
            self.hint = hint
        self.reply = reply
        super().__init__(message)

    @property
    def kind(self) -> str:
        """The error's name in the usage log's style: ``network_error``, ``malformed_stream_error``…"""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()

    def _line(self) -> str:
        line = f"{self.message} — {self.hint}" if self.hint else self.message
        if self.reply is not None and self.reply.has_content:
            line += " (what arrived is kept on .reply)"
        return line

    def __str__(self) -> str:
        return self._line()


class ConfigError(ClaudekitError, ValueError):
    """A setting is invalid; raised before any request is sent."""


class MissingAPIKeyError(ConfigError):
    hint = (
        "set ANTHROPIC_API_KEY, pass Chat(api_key=...), or use Chat(backend='offline') to run without a key"
    )


class APIError(ClaudekitError):
    """The API answered with an error (before or during the stream)."""

    hint = "see the message above; the conversation is still valid and you can send again"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        request_id: str | None = None,
        hint: str | None = None,
        reply: Reply | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.request_id = request_id
        super().__init__(message, hint=hint, reply=reply)

    @property
    def kind(self) -> str:
        return self.type or super().kind


class AuthenticationError(APIError):
    hint = "check ANTHROPIC_API_KEY (or Chat(api_key=...)); use Chat(backend='offline') to work without one"


class BadRequestError(APIError):
    hint = "the API rejected the request; fix the setting or message it names and send again"


class RateLimitError(APIError):
    hint = "rate limited even after retries; wait a little, or raise Chat(max_retries=...)"


class OverloadedError(APIError):
    hint = "the API is overloaded; try again in a moment"


class ServerError(APIError):
    hint = "the API had an internal error; try again"


class NetworkError(ClaudekitError):
    hint = "the connection failed or dropped; check the network and send again"


class TimeoutError(NetworkError):
    hint = "no data arrived within the read timeout; raise Chat(timeout=...) or send again"


class OutputFormatError(ClaudekitError):
    hint = "the answer is on .reply.text and in the conversation; ask again or loosen output_format"


class BudgetExceededError(ClaudekitError):
    """A call whose worst case would pass a budget was refused before anything was sent.

    ``spent_usd``, ``remaining_usd`` and ``budget_usd`` describe the budget (``scope`` is ``"chat"`` or
    ``"session"``); ``estimate`` is the refused call's :class:`claudekit.usage.Estimate`. The conversation
    is left valid: what earlier steps of a tool loop produced stays in the history. ``message`` replaces
    the line built from these.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        scope: str = "session",
        budget_usd: float = 0.0,
        spent_usd: float = 0.0,
        estimate: Any = None,
        hint: str | None = None,
        reply: Reply | None = None,
    ) -> None:
        self.scope = scope
        self.budget_usd = budget_usd
        self.spent_usd = spent_usd
        self.remaining_usd = max(0.0, budget_usd - spent_usd)
        self.estimate = estimate
        if message is None:
            worst = getattr(estimate, "cost_max_usd", None)
            worst_s = f"${worst:,.4f}" if worst is not None else "an unknown amount"
            tokens = (
                f"{getattr(estimate, 'input_tokens', 0):,} input + up to "
                f"{getattr(estimate, 'max_output_tokens', 0):,} output tokens"
            )
            message = (
                f"refused before sending: this call could cost up to {worst_s} ({tokens}), but only "
                f"${self.remaining_usd:,.4f} of the {scope} budget of ${budget_usd:,.4f} remains "
                f"(${spent_usd:,.4f} spent)"
            )
        raise_it = "Chat(budget_usd=...)" if scope == "chat" else "claudekit.usage.set_budget(...)"
        hint = hint or f"raise {raise_it} or lower max_tokens; nothing was sent and the conversation is kept"
        super().__init__(message, hint=hint, reply=reply)


class BusyError(ClaudekitError):
    """A second prompt was sent while the chat was still answering the first."""

    hint = "await the first reply (or close its stream) before sending again, or use a separate Chat"


class CassetteMissError(ClaudekitError):
    hint = "record it: set ANTHROPIC_API_KEY, or use cassette_mode='new_episodes'"


class StreamError(ClaudekitError):
    """The stream broke the Messages API protocol."""


class MalformedStreamError(StreamError):
    hint = "the response stream was not valid; send again"


class IncompleteStreamError(StreamError):
    hint = "the stream ended before message_stop; send again"


_BY_TYPE: dict[str, type[APIError]] = {
    "authentication_error": AuthenticationError,
    "permission_error": AuthenticationError,
    "invalid_request_error": BadRequestError,
    "not_found_error": BadRequestError,
    "request_too_large": BadRequestError,
    "rate_limit_error": RateLimitError,
    "overloaded_error": OverloadedError,
    "api_error": ServerError,
    "timeout_error": ServerError,
}
# The SDK's own classes, most specific first (OverloadedError is an InternalServerError).
_BY_SDK_CLASS: tuple[tuple[type[anthropic.APIStatusError], type[APIError]], ...] = (
    (anthropic.AuthenticationError, AuthenticationError),
    (anthropic.PermissionDeniedError, AuthenticationError),
    (anthropic.RateLimitError, RateLimitError),
    (anthropic.OverloadedError, OverloadedError),
    (anthropic.InternalServerError, ServerError),
    (anthropic.BadRequestError, BadRequestError),
    (anthropic.NotFoundError, BadRequestError),
    (anthropic.UnprocessableEntityError, BadRequestError),
    (anthropic.ConflictError, BadRequestError),
    (anthropic.ContentTooLargeError, BadRequestError),
)
# What the SDK raises, unwrapped, when a response body cannot be decoded.
DECODE_ERRORS = (json.JSONDecodeError, UnicodeDecodeError, pydantic.ValidationError)


def _status_class(err: anthropic.APIStatusError) -> type[APIError]:
    for sdk_cls, ours in _BY_SDK_CLASS:
        if isinstance(err, sdk_cls):
            return ours
    return ServerError if err.status_code >= 500 else BadRequestError if err.status_code >= 400 else APIError


def _api_message(err: anthropic.APIStatusError) -> str:
    body: Any = err.body
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    msg = getattr(err, "api_message", None)
    return str(msg) if msg else str(err.message)


def _error_type(err: anthropic.APIStatusError) -> str | None:
    body: Any = err.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        t = body["error"].get("type")
        if isinstance(t, str):
            return t
    t = getattr(err, "type", None)
    return t if isinstance(t, str) else None


def is_transport_error(err: BaseException) -> bool:
    """An error of the HTTP exchange or of decoding the service's bytes (not a bug of ours)."""
    return isinstance(err, (anthropic.APIError, httpx2.HTTPError, *DECODE_ERRORS)) or (
        type(err.__cause__).__name__ == "CassetteMiss"
    )


def from_sdk_error(err: BaseException, *, reply: Reply | None = None) -> ClaudekitError:
    """Map an SDK, HTTP or decoding exception to claudekit's hierarchy, keeping the original as ``__cause__``.

    Only for errors of the exchange (:func:`is_transport_error`); anything else is a bug and is raised
    as itself by the caller.
    """
    out: ClaudekitError
    cause = err.__cause__
    if type(cause).__name__ == "CassetteMiss":
        out = CassetteMissError(_one_line(str(cause)), reply=reply)
    elif isinstance(err, anthropic.APITimeoutError):
        out = TimeoutError("timed out waiting for the API", reply=reply)
    elif isinstance(err, anthropic.APIConnectionError):
        detail = str(err.__cause__ or err) or "connection error"
        out = NetworkError(f"connection to the API failed: {_one_line(detail)}", reply=reply)
    elif isinstance(err, httpx2.TimeoutException):
        # Raised while reading the body: the SDK wraps transport errors only around sending.
        out = TimeoutError("timed out waiting for the API (the stream stalled)", reply=reply)
    elif isinstance(err, httpx2.HTTPError):
        detail = str(err) or type(err).__name__
        out = NetworkError(f"the connection dropped mid-response: {_one_line(detail)}", reply=reply)
    elif isinstance(err, anthropic.APIStatusError):
        etype = _error_type(err)
        # An `event: error` mid-stream reaches us as a plain APIStatusError with status 200: its
        # error type, not the status, says what it was.
        cls = _BY_TYPE.get(etype or "") if err.status_code == 200 else None
        cls = cls or _status_class(err)
        where = " mid-stream" if err.status_code == 200 else f" (HTTP {err.status_code})"
        out = cls(
            f"API error{where}: {etype or 'error'}: {_one_line(_api_message(err))}",
            status=err.status_code,
            type=etype,
            request_id=err.request_id,
            reply=reply,
        )
    else:
        detail = str(err) or type(err).__name__
        out = MalformedStreamError(f"malformed response: {_one_line(detail)}", reply=reply)
    out.__cause__ = err
    return out


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
