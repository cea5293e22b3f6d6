"""What a request may carry, checked before any route runs: body size, JSON, characters.

One ASGI middleware reads the whole body (up to the limit) and refuses, with the JSON error
shape and before anything is stored:
- 413 `payload_too_large`: a body over the limit, with or without Content-Length;
- 400 `invalid_json`: a JSON body that is not UTF-8, not JSON (NaN and Infinity are not),
  or nested deeper than `domain.values.MAX_DEPTH` levels;
- 422 `invalid_request`: a NUL character or a lone surrogate in the path, the query or any
  key or string of a JSON or form body, which one store or the other cannot keep.
Then it hands the body on unchanged.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from jobport.api.errors import error_response
from jobport.domain.values import MAX_DEPTH, first_problem, text_problem

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_Refusal = tuple[int, str, str, str]  # status, error code, field ("" for the whole body), reason


class InputGuard:
    def __init__(self, app: Any, limit: int, max_depth: int = MAX_DEPTH) -> None:
        self.app = app
        self.limit = limit
        self.max_depth = max_depth

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = _url_problem(scope)
        if refusal is None and _has_body(scope):
            body, refusal = await self._read(receive)
            if body is None and refusal is None:
                return  # the client went away
            if refusal is None:
                refusal = _body_problem(scope, body or b"", self.max_depth)
            if refusal is None:
                receive = replay(body or b"", receive)
        if refusal is not None:
            status, code, field, reason = refusal
            if code == "invalid_json":
                message = f"the body is not valid JSON{' here' if field else ''}: " + (
                    f"{field}: {reason}" if field else reason
                )
            else:
                message = f"{field}: {reason}" if field else reason
            details = [{"field": field, "reason": reason}] if field else None
            response = error_response(status, code, message, details, path=scope.get("path"))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _read(self, receive: Any) -> tuple[bytes | None, _Refusal | None]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                reason = f"the body is larger than the limit of {self.limit} bytes"
                return None, (413, "payload_too_large", "", reason)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None


def _has_body(scope: Any) -> bool:
    if scope.get("method") not in _BODY_METHODS:
        return False
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            return value.strip() != b"0"
        if name == b"transfer-encoding":
            return True
    return False


def _url_problem(scope: Any) -> _Refusal | None:
    reason = text_problem(scope.get("path", ""))
    if reason:
        return 422, "invalid_request", "path", reason
    query: bytes = scope.get("query_string") or b""
    if b"%00" in query or b"\x00" in query:
        return 422, "invalid_request", "query", "NUL characters (\\u0000) are not allowed"
    return None


def _content_type(scope: Any) -> str:
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            return str(value.decode("latin-1").split(";", 1)[0].strip().lower())
    return ""


def _body_problem(scope: Any, body: bytes, max_depth: int) -> _Refusal | None:
    if not body:
        return None
    kind = _content_type(scope)
    if kind == "application/x-www-form-urlencoded":
        if b"\x00" in body or b"\x00" in unquote_to_bytes(body.replace(b"+", b" ")):
            return 422, "invalid_request", "body", "NUL characters (\\u0000) are not allowed"
        return None
    if kind and not (kind == "application/json" or kind.endswith("+json")):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return 400, "invalid_json", "", f"not UTF-8 ({exc.reason})"
    try:
        value = json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        return 400, "invalid_json", "", f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    except RecursionError:
        return 400, "invalid_json", "", f"nested deeper than {max_depth} levels"
    except ValueError as exc:  # NaN, Infinity, an integer of thousands of digits
        return 400, "invalid_json", "", str(exc)
    problem = first_problem(value, max_depth)
    if problem is None:
        return None
    kind_of, field, reason = problem
    if kind_of == "text":
        return 422, "invalid_request", field, reason
    return 400, "invalid_json", field, reason


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def replay(body: bytes, receive: Any) -> Any:
    """A receive() that gives the body once, then whatever the client sends next."""
    sent = False

    async def replayed() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
