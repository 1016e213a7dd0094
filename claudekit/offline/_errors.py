"""The API's error shape and the exception the backend raises internally."""

from __future__ import annotations

from typing import Any

__all__ = ["ERROR_TYPES", "ApiError", "error_body"]

# https://platform.claude.com/docs/en/api/errors
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_body(
    error_type: str, message: str, request_id: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"type":"error","error":{"type":…,"message":…[,"details":…]},"request_id":…}``."""
    error: dict[str, Any] = {"type": error_type, "message": message}
    if details is not None:
        error["details"] = details
    return {"type": "error", "error": error, "request_id": request_id}


class ApiError(Exception):
    """An error the backend answers with (status code, error type, message)."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str | None = None,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details  # ``error.details``, e.g. ``{"error_code": "thread_not_found"}``
        self.error_type = error_type or ERROR_TYPES.get(
            status, "invalid_request_error" if status < 500 else "api_error"
        )
