"""Every HTTP error is JSON: {"error": code, "message": text, "details": ...}.

A vendor's face (Losant's, InfoLink's, Celonis's paths) answers in its vendor's shape: it
registers a `Shaper` for its path prefixes with `face()`, and every error raised under them
(authentication, validation, a 404 or 405 of the router, the input guard, a bug) is shaped
by it instead. The status code stays the one chosen here unless the shaper changes it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from jobport.api.responses import JSONResponse
from jobport.errors import JobportError, RateLimited, Unauthenticated, error_details

log = logging.getLogger("jobport.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "missing_credentials",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


@dataclass(frozen=True)
class Refusal:
    """An error on its way out, before a face shapes it."""

    status: int
    code: str  # jobport's stable code (errors.py), e.g. "not_found", "invalid_request"
    message: str
    details: Any = None
    path: str | None = None  # the request's path


# (status, body) for a refusal, in a vendor's shape; or a whole response (the console's
# pages answer in HTML).
Shaper = Callable[[Refusal], "tuple[int, Any] | Response"]
_faces: list[tuple[str, Shaper]] = []


def face(prefixes: tuple[str, ...], shaper: Shaper) -> None:
    """Shape every error under these path prefixes with `shaper` (a vendor face's errors).
    Registering a prefix again replaces its shaper."""
    for prefix in prefixes:
        _faces[:] = [(p, s) for p, s in _faces if p != prefix]
        _faces.append((prefix, shaper))
    _faces.sort(key=lambda item: len(item[0]), reverse=True)  # the longest prefix wins


def shaper_for(path: str | None) -> Shaper | None:
    if path:
        for prefix, shaper in _faces:
            if path.startswith(prefix):
                return shaper
    return None


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
    *,
    path: str | None = None,
) -> Response:
    """The error answer; under a vendor face's `path`, in that vendor's shape."""
    shaper = shaper_for(path)
    if shaper is not None:
        shaped = shaper(Refusal(status, code, message, details, path))
        if isinstance(shaped, Response):
            if headers:
                shaped.headers.update(headers)
            return shaped
        status, body = shaped
        return JSONResponse(body, status_code=status, headers=headers)
    return JSONResponse(
        {"error": code, "message": message, "details": details},
        status_code=status,
        headers=headers,
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        where, rest = parts[0], parts[1:]
        return ".".join(rest) if rest else where
    return ".".join(parts)


def _body_details(reason: str) -> list[dict[str, str]]:
    return [{"field": "body", "reason": reason}]


async def _body_not_json(request: Request, errors: Any) -> str | None:
    """Why a JSON route could not read the body at all when it came without a JSON
    Content-Type (as `curl -d` sends it): FastAPI's own words say only that the body is
    not an object."""
    whole = [
        e for e in errors if tuple(e.get("loc", ())) == ("body",) and e.get("type") != "missing"
    ]
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not whole or kind == "application/json" or kind.endswith("+json"):
        return None
    if not await request.body():
        return None
    said = f"Content-Type {kind!r}" if kind else "no Content-Type"
    return f"send it as JSON, with 'Content-Type: application/json' (it came with {said})"


def install(app: FastAPI) -> None:
    @app.exception_handler(JobportError)
    async def _domain(request: Request, exc: JobportError) -> Response:
        headers = None
        if isinstance(exc, Unauthenticated):
            # RFC 6750: say which scheme, and why when a credential was given but refused.
            challenge = 'Bearer realm="jobport"'
            if exc.code != "missing_credentials":
                challenge += f', error="invalid_token", error_description="{exc.code}"'
            headers = {"WWW-Authenticate": challenge}
        elif isinstance(exc, RateLimited) and exc.retry_after is not None:
            # Whole seconds (RFC 9110): a service says an int; round anything else up.
            headers = {"Retry-After": str(math.ceil(exc.retry_after))}
        return error_response(
            exc.status, exc.code, exc.message, exc.details, headers=headers, path=request.url.path
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        for err in errors:
            if err.get("type") == "json_invalid":
                reason = err.get("ctx", {}).get("error", "not valid JSON")
                return error_response(
                    400,
                    "invalid_json",
                    f"the body is not valid JSON: {reason}",
                    path=request.url.path,
                )
        not_json = await _body_not_json(request, errors)
        if not_json:
            return error_response(
                422,
                "invalid_request",
                f"body: {not_json}",
                _body_details(not_json),
                path=request.url.path,
            )
        details = error_details(errors, field_of=lambda err: _field(tuple(err.get("loc", ()))))
        first = details[0] if details else {"field": "body", "reason": "invalid"}
        message = f"{first['field']}: {first['reason']}"
        if len(details) > 1:
            message += f" (and {len(details) - 1} more)"
        return error_response(422, "invalid_request", message, details, path=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(
            exc.status_code, code, message, headers=exc.headers, path=request.url.path
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return error_response(
            500, "internal_error", "the server failed; see its log", path=request.url.path
        )
