"""The one error tree of jobport: the server raises these, and the SDK raises the same classes.

A service raises `NotFound("no job 'x'", code="job_not_found")`; the API answers it as a
404 `{"error": "job_not_found", ...}` (api/errors.py, by class and `.status`); the SDK reads
that answer and raises `NotFound` again, with the same `.code`, `.message` and `.details`
and, on the client side, `.response`. So `except jobport.errors.NotFound` means the same on
both sides of the wire.

    JobportError                root of every error jobport raises on purpose
     ├── APIError               an error an HTTP answer carries: .status .code .message
     │    │                     .details (.response: the answer, on the client side)
     │    ├── BadRequest        400  e.g. invalid_json
     │    ├── Unauthenticated   401  missing_credentials, invalid_credentials, key_expired,
     │    │                          key_revoked (also importable as Unauthorized)
     │    ├── Forbidden         403  insufficient_scope, project_forbidden, ip_not_allowed
     │    ├── NotFound          404  project_not_found, job_not_found, execution_not_found
     │    ├── Conflict          409  already_running, already_finished, already_exists
     │    ├── PayloadTooLarge   413  payload_too_large
     │    ├── Invalid           422  invalid_job, unknown_parameter (.details names fields;
     │    │                          also importable as ValidationFailed)
     │    ├── RateLimited       429  rate_limited; .retry_after (seconds)
     │    └── ServerError       5xx  internal_error, or an answer not from jobport
     └── TransportError         no answer at all: refused, timed out, dropped (.url)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only the SDK has responses; the server never imports httpx2 for this
    import httpx2


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


class APIError(JobportError):
    """An error an HTTP answer carries: raised by a service, answered by the API with
    `.status`, and raised again by the SDK from that answer (with `.response`)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        status: int | None = None,
        response: httpx2.Response | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        if status is not None:
            self.status = status
        self.response = response

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, {self.message!r})"


class BadRequest(APIError):
    code = "bad_request"
    status = 400


class Unauthenticated(APIError):
    """401: no credential, or one the server refused (`code` says why)."""

    code = "missing_credentials"
    status = 401


class Forbidden(APIError):
    code = "forbidden"
    status = 403


class NotFound(APIError):
    code = "not_found"
    status = 404


class Conflict(APIError):
    code = "conflict"
    status = 409


class PayloadTooLarge(APIError):
    code = "payload_too_large"
    status = 413


class Invalid(APIError):
    """422: input the server will not take; `.details` names each field and why."""

    code = "invalid_request"
    status = 422


class RateLimited(APIError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        if retry_after is None and self.response is not None:
            retry_after = _seconds(self.response.headers.get("retry-after"))
        # Seconds to wait: what the service said (an int), or the answer's Retry-After.
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the server failed, or something in front of it did."""

    code = "internal_error"
    status = 500


class TransportError(JobportError):
    """No HTTP answer: the server could not be reached, or the connection failed."""

    code = "transport_error"

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


# The names the SDK has always had for two of these.
Unauthorized = Unauthenticated
ValidationFailed = Invalid

# The class of an error answer, by its status (5xx: ServerError; others: APIError).
BY_STATUS: dict[int, type[APIError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        Invalid,
        RateLimited,
    )
}


def for_status(status: int) -> type[APIError]:
    """The class that stands for an error answer with this status."""
    return BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


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
