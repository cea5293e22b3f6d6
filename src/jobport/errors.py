"""Domain exceptions: services raise these, each face maps them to its wire shape.

JobportError
 ├── Invalid            bad input (422)
 ├── NotFound           no such thing (404)
 ├── Conflict           the state forbids it (409)
 ├── PayloadTooLarge    body over the configured limit (413)
 ├── Unauthenticated    no or bad credentials (401)
 ├── Forbidden          valid credentials, not allowed (403)
 └── RateLimited        too many failed attempts (429)
"""

from __future__ import annotations

from typing import Any


class JobportError(Exception):
    """Root of every error jobport raises on purpose."""

    code = "error"
    status = 500

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class Invalid(JobportError):
    code = "invalid_request"
    status = 422


class NotFound(JobportError):
    code = "not_found"
    status = 404


class Conflict(JobportError):
    code = "conflict"
    status = 409


class PayloadTooLarge(JobportError):
    code = "payload_too_large"
    status = 413


class Unauthenticated(JobportError):
    code = "missing_credentials"
    status = 401


class Forbidden(JobportError):
    code = "forbidden"
    status = 403


class RateLimited(JobportError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
