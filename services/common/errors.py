"""Exceptions the services raise to produce specific error responses (mapped in :mod:`services.common.web`)."""

from __future__ import annotations

__all__ = ["ApiError", "DependencyUnavailableError"]


class ApiError(Exception):
    """An error response with a stable machine-readable code (``{"error": code, "message": ...}``)."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class DependencyUnavailableError(Exception):
    """A dependency (database, cache, upstream service, credentials) is unavailable right now: answer 503."""

    def __init__(self, dependency: str, reason: str = "") -> None:
        super().__init__(f"{dependency} unavailable: {reason}" if reason else f"{dependency} unavailable")
        self.dependency = dependency
        self.reason = reason
