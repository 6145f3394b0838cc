"""The API's refusals: an HTTP status, a stable code and the message a person reads, always as
{"error": {"code": ..., "message": ...}} (never a traceback, never a secret)."""

from __future__ import annotations

from fastapi.responses import JSONResponse

RETRY_AFTER = "5"


class ApiError(Exception):
    """An answer other than 200: HTTP status, a stable code, and the message a person reads."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(exc: ApiError) -> JSONResponse:
    """{"error": {"code", "message"}} with the status and headers of exc."""
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status, headers=exc.headers
    )
