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

from collections.abc import Callable, Iterable
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


def error_details(
    errors: Iterable[dict[str, Any]],
    *,
    field_of: Callable[[dict[str, Any]], str] | None = None,
    prefix: str = "",
) -> list[dict[str, Any]]:
    """pydantic's (or FastAPI's) errors as [{"field", "reason"}]: the one translation.

    The field is the dotted location (`field_of` may say otherwise, e.g. for a check across
    fields, which has none), under `prefix`; the reason is pydantic's message without its
    "Value error, " prefix.
    """
    details = []
    for err in errors:
        where = field_of(err) if field_of else ".".join(str(p) for p in err.get("loc", ()))
        where = ".".join(part for part in (prefix, where) if part) or "body"
        reason = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        details.append({"field": where, "reason": reason})
    return details


def invalid(details: list[dict[str, Any]], *, what: str, code: str) -> Invalid:
    """Invalid naming the first problem in its message and every one in its details."""
    first = details[0] if details else {"field": "body", "reason": "invalid"}
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return Invalid(f"{what}: {first['field']}: {first['reason']}{more}", code=code, details=details)
