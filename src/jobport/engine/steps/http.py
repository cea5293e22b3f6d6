"""The `http` step: one HTTP request, to a connection's base URL plus a `path` or to a whole
`url`, with retries, expected statuses, and a result of the status, chosen headers and body.

Values are data (the contract in engine/steps/__init__.py). A value in `path` or `url` is
percent-encoded as one path segment: a `/`, `?`, `#`, `@` or `..` in it stays inside that
segment, and a value that would make a whole segment `.` or `..` is refused. The scheme,
host and port are literal (a `url` refuses a template before its path), and the built URL
is checked to be on them, so no value can change the host. `query` values go through
httpx2's params encoding; header values are plain text, refused if they hold a line break;
`json` and `form` values are data. The connection is a literal name: a caller's value never
picks which credentials are sent.

Headers: a connection's headers go with every request of the step. The step's own headers
add to them but may not replace one (compared case-insensitively; a clash fails the step),
nor set `Host`. Redirects are not followed, so a connection's headers never reach another
host; a 3xx is a status like any other.

Retries (`retries`, default 0) follow a connect error, a 429 or a 5xx (unless expected): the
wait is the answer's `Retry-After` (seconds or an HTTP date), else `retryDelaySeconds`
(default 1) doubled at each attempt, never more than `maxRetryDelaySeconds` (default 60). A
cancel or timeout ends a wait, and the request in flight, at once. `timeoutSeconds`
(default 30) bounds each attempt. The step's own `retries` (JobSpec) run it all again.

The log has each attempt's method, URL with its query (never a password), status and
elapsed time. The connection's secrets (its URL's password, its header values) are replaced
by *** in every log line, failure message and result this step writes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import email.utils
import json
import re
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import httpx2

from jobport.domain.connections import MASK, masked_query, secret_query_values
from jobport.engine import templating
from jobport.engine.steps import StepContext, StepFailed, StepInterrupted, check_keys
from jobport.engine.steps._http_url import literal_origin, render_url
from jobport.engine.templating import TemplateError

_ALLOWED = (
    "connection",
    "url",
    "path",
    "method",
    "query",
    "headers",
    "json",
    "form",
    "expectedStatus",
    "timeoutSeconds",
    "retries",
    "retryDelaySeconds",
    "maxRetryDelaySeconds",
    "resultHeaders",
)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_BODY_BYTES = 10 * 1024 * 1024
EXCERPT_CHARS = 500
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,200}$")  # an HTTP header name (RFC 9110)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # what no header value may hold
_Scalar = str | int | float | bool
T = TypeVar("T")


# --- validate: the config as written ------------------------------------------------------


def validate(config: dict[str, Any]) -> None:
    check_keys("http", config, _ALLOWED)
    if ("connection" in config) == ("url" in config):
        raise ValueError("give exactly one of connection (with a path) or url")
    if "connection" in config:
        name = config["connection"]
        if not isinstance(name, str) or not name.strip():
            raise ValueError("connection must be the name of a connection of the project")
        if "{" in name:
            raise ValueError("connection must be a literal name: a value may not pick it")
        path = config.get("path", "")
        if not isinstance(path, str) or (path and not path.startswith("/")):
            raise ValueError("path must be a string that starts with '/'")
    else:
        if "path" in config:
            raise ValueError("path goes with connection; a url is whole")
        literal_origin(config["url"])
    if config.get("method", "GET") not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    _check_fields(config.get("query", {}), "query")
    _check_fields(config.get("form", {}), "form")
    if "json" in config and "form" in config:
        raise ValueError("give json or form as the body, not both")
    headers = config.get("headers", {})
    if not isinstance(headers, dict):
        raise ValueError("headers must be an object of strings")
    for name, value in headers.items():
        if not _TOKEN.match(name) or name.lower() == "host":
            raise ValueError(f"headers: {name!r} is not a header a step may set")
        if not isinstance(value, str | int | float) or _CONTROL.search(str(value)):
            raise ValueError(f"headers.{name} must be a string without line breaks")
    expected = config.get("expectedStatus", [])
    expected = [expected] if isinstance(expected, int) else expected
    if not isinstance(expected, list) or not all(_is_int(s) and 100 <= s <= 599 for s in expected):
        raise ValueError("expectedStatus must be a status (100-599) or a list of them")
    _check_number(config, "timeoutSeconds", 0, 3600, above=True)
    _check_number(config, "retryDelaySeconds", 0, 3600)
    _check_number(config, "maxRetryDelaySeconds", 0, 3600, above=True)
    retries = config.get("retries", 0)
    if not _is_int(retries) or not 0 <= retries <= 20:
        raise ValueError("retries must be a whole number from 0 to 20")
    names = config.get("resultHeaders", [])
    if not isinstance(names, list) or not all(
        isinstance(n, str) and _TOKEN.match(n) for n in names
    ):
        raise ValueError("resultHeaders must be a list of header names")


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(_TOKEN.match(value))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_number(
    config: dict[str, Any], key: str, low: float, high: float, *, above: bool = False
) -> None:
    if key not in config:
        return
    value = config[key]
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value <= high
    if not ok or value < low or (above and value == low):
        raise ValueError(f"{key} must be a number {'above' if above else 'from'} {low} to {high}")


def _check_fields(fields: Any, key: str) -> None:
    def scalar(v: Any) -> bool:
        return isinstance(v, _Scalar) or v is None

    if not isinstance(fields, dict) or not all(
        scalar(v) or (isinstance(v, list) and all(scalar(i) for i in v)) for v in fields.values()
    ):
        raise ValueError(f"{key} must be an object of strings, numbers or lists of them")


# --- render: values into the config, each through its own channel --------------------------


def render(config: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """`path` and `url` take each value percent-encoded as a path segment (render_url);
    everything else takes values as plain text; a header value may not hold a line break."""
    out = templating.render({k: v for k, v in config.items() if k not in ("path", "url")}, context)
    if "path" in config:
        out["path"] = render_url(config["path"], context, "path")
    if "url" in config:
        out["url"] = render_url(config["url"], context, "url")
        try:
            origin, built = literal_origin(config["url"]), httpx2.URL(out["url"])
        except (ValueError, httpx2.InvalidURL) as exc:
            raise TemplateError(f"url: {exc}") from None
        if (built.scheme, built.host, built.port) != (origin.scheme, origin.host, origin.port):
            raise TemplateError("url: a value would change the host")  # never, by construction
    for name, value in out.get("headers", {}).items():
        if _CONTROL.search(str(value)):
            raise TemplateError(
                f"headers.{name}: the value holds a line break or control character"
            )
    return out


# --- run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One step's request, built from its rendered config and its connection."""

    method: str
    url: httpx2.URL
    headers: dict[str, str]
    body: dict[str, Any]  # json= or data= for httpx2
    expected: tuple[int, ...]  # empty: any 2xx
    timeout: float
    retries: int
    delay: float
    max_delay: float
    result_headers: tuple[str, ...]
    secrets: tuple[str, ...]

    @property
    def shown(self) -> str:
        """The URL as logged: its query (secret values ***), never its user or password."""
        return masked_query(str(self.url.copy_with(username=None, password=None)))

    def scrub(self, value: Any) -> Any:
        """`value` with every secret of the connection replaced by ***."""
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, MASK)
            return value
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        return value

    def expects(self, status: int) -> bool:
        return status in self.expected if self.expected else 200 <= status <= 299


def build_request(config: dict[str, Any], ctx: StepContext) -> Request:
    """The request of a rendered config: URL, headers merged with the connection's, body."""
    conn_headers: dict[str, str] = {}
    if "connection" in config:
        name = config["connection"]
        if ctx.connection is None:
            raise StepFailed("connections are only available to steps run by a worker")
        conn = ctx.connection(name)
        if conn.kind != "http":
            raise StepFailed(
                f"connection {name!r} is a {conn.kind} connection; an http step needs an "
                "http(s) one"
            )
        base = urlsplit(conn.url)
        joined = base.path.rstrip("/") + config.get("path", "")
        url = httpx2.URL(urlunsplit((base.scheme, base.netloc, joined, "", "")))
        if base.query:
            url = url.copy_merge_params(httpx2.QueryParams(base.query))
        origin = httpx2.URL(conn.url)
        if (url.scheme, url.host, url.port) != (origin.scheme, origin.host, origin.port):
            raise StepFailed(f"the path would leave connection {name!r}'s host")
        conn_headers = dict(conn.headers)
        mine = {h.lower() for h in config.get("headers", {})}
        clash = sorted(h for h in conn_headers if h.lower() in mine)
        if clash:
            raise StepFailed(
                f"header {clash[0]!r} is set by connection {name!r}; a step may add headers, "
                "not replace a connection's"
            )
    else:
        url = httpx2.URL(config["url"])
    if config.get("query"):
        url = url.copy_merge_params(config["query"])
    found = [*conn_headers.values(), url.password or ""]
    if "connection" in config:  # a token in the connection's query is as secret as a password
        for value in secret_query_values(conn.url):  # as written, decoded, and encoded
            found += [value, quote(value, safe=""), quote_plus(value)]
    found += [v.split(" ", 1)[1] for v in conn_headers.values() if " " in v.strip()]
    if url.password:  # as written, and as the Basic credentials httpx2 sends
        basic = base64.b64encode(f"{url.username}:{url.password}".encode()).decode()
        found += [quote(url.password, safe=""), basic]
    body = {k: config[k] for k in ("json", "form") if k in config}
    expected = config.get("expectedStatus", [])
    return Request(
        method=config.get("method", "GET"),
        url=url,
        headers={**conn_headers, **{k: str(v) for k, v in config.get("headers", {}).items()}},
        body={"data" if k == "form" else k: v for k, v in body.items()},
        expected=tuple([expected] if isinstance(expected, int) else expected),
        timeout=float(config.get("timeoutSeconds", 30)),
        retries=int(config.get("retries", 0)),
        delay=float(config.get("retryDelaySeconds", 1.0)),
        max_delay=float(config.get("maxRetryDelaySeconds", 60.0)),
        result_headers=tuple(config.get("resultHeaders", [])),
        secrets=tuple(sorted({s.strip() for s in found if len(s.strip()) >= 4}, key=len)[::-1]),
    )


def run(config: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    request = build_request(config, ctx)
    try:
        return asyncio.run(_exchange(request, ctx))
    except _Stopped:
        raise StepInterrupted() from None


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delay-seconds or an HTTP date; None if absent or
    unreadable. A date in the past is 0."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


class _Stopped(Exception):
    """The step's stop signal was set (cancel or timeout)."""


class _OutOfTime(Exception):
    """One attempt outlasted timeoutSeconds."""


async def _until(aw: Awaitable[T], stop: threading.Event, seconds: float | None = None) -> T:
    """Await `aw`, cancelling it as soon as `stop` is set (_Stopped) or `seconds` pass."""
    task = asyncio.ensure_future(aw)
    end = None if seconds is None else time.monotonic() + seconds
    try:
        while not task.done():
            if stop.is_set():
                raise _Stopped()
            if end is not None and time.monotonic() >= end:
                raise _OutOfTime()
            await asyncio.wait({task}, timeout=0.05)
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def _send(client: httpx2.AsyncClient, req: Request) -> tuple[int, httpx2.Headers, Any]:
    async with client.stream(req.method, req.url, headers=req.headers, **req.body) as response:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise StepFailed(f"the answer's body is over {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        text = raw.decode(response.charset_encoding or "utf-8", "replace")
        body: Any = text or None
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if text and (kind == "application/json" or kind.endswith("+json")):
            with contextlib.suppress(ValueError):
                body = json.loads(text)
        return response.status_code, response.headers, body


async def _exchange(req: Request, ctx: StepContext) -> dict[str, Any]:
    attempts = req.retries + 1
    timeout = httpx2.Timeout(req.timeout)
    async with httpx2.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            where = f"{req.method} {req.shown}"
            count = f"attempt {attempt}/{attempts}"
            try:
                status, headers, body = await _until(_send(client, req), ctx.stop, req.timeout)
            except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
                reason = req.scrub(str(exc) or type(exc).__name__)
                ms = (time.monotonic() - started) * 1000
                ctx.log("stderr", f"{where} -> could not connect: {reason} ({ms:.0f} ms, {count})")
                if attempt < attempts:
                    await _pause(req, ctx, attempt, None)
                    continue
                raise StepFailed(
                    f"could not connect to {req.url.scheme}://{req.url.netloc.decode()} "
                    f"after {attempts} attempt(s): {reason}"
                ) from None
            except (_OutOfTime, httpx2.TimeoutException):
                ctx.log("stderr", f"{where} -> no answer within {req.timeout:g}s ({count})")
                raise StepFailed(f"{where}: no answer within {req.timeout:g}s") from None
            except httpx2.HTTPError as exc:
                reason = req.scrub(f"{type(exc).__name__}: {exc}")
                ctx.log("stderr", f"{where} -> {reason} ({count})")
                raise StepFailed(f"{where} failed: {reason}") from None
            ms = (time.monotonic() - started) * 1000
            ok = req.expects(status)
            ctx.log("system" if ok else "stderr", f"{where} -> {status} ({ms:.0f} ms, {count})")
            if not ok and (status == 429 or status >= 500) and attempt < attempts:
                await _pause(req, ctx, attempt, headers.get("retry-after"))
                continue
            if not ok:
                excerpt = body if body is None or isinstance(body, str) else json.dumps(body)
                excerpt = req.scrub(excerpt or "")[:EXCERPT_CHARS]  # scrubbed whole, then cut
                raise StepFailed(f"{where} answered {status}, expected {_expected(req)}: {excerpt}")
            chosen = {n: headers[n] for n in req.result_headers if n in headers}
            return req.scrub({"status": status, "headers": chosen, "body": body})  # type: ignore[no-any-return]
    raise AssertionError("unreachable")  # pragma: no cover


async def _pause(req: Request, ctx: StepContext, attempt: int, retry_after: str | None) -> None:
    asked = retry_after_seconds(retry_after)
    wait = min(req.max_delay, asked if asked is not None else req.delay * 2 ** (attempt - 1))
    why = " (Retry-After)" if asked is not None else ""
    ctx.log("system", f"retrying in {wait:.1f}s{why}")
    await _until(asyncio.sleep(wait), ctx.stop)


def _expected(req: Request) -> str:
    return ", ".join(str(s) for s in req.expected) if req.expected else "2xx"
