"""The URL sink of the `http` step: a template in its `path` or `url` gets each value
percent-encoded as (part of) one path segment, never spliced in as URL syntax, and a `url`
must spell its scheme, host and port literally (engine/steps/http.py says why)."""

from __future__ import annotations

import contextvars
import re
import secrets
from typing import Any
from urllib.parse import quote, unquote

import httpx2
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from jobport.engine.templating import TemplateError


def literal_origin(url: Any) -> httpx2.URL:
    """The scheme, host and port of a `url` template, which must be literal text."""
    if not isinstance(url, str) or "://" not in url:
        raise ValueError("url must be an absolute http(s) URL")
    start = url.index("://") + 3
    end = min([i for i in (url.find(c, start) for c in "/?#") if i >= 0] or [len(url)])
    if "{" in url[:end]:
        raise ValueError("url: the scheme, host and port must be literal; values go in the path")
    try:
        origin = httpx2.URL(url[:end])
        if "{" not in url:
            httpx2.URL(url)
    except httpx2.InvalidURL as exc:
        raise ValueError(f"url is not a valid URL: {exc}") from None
    if origin.scheme not in ("http", "https") or not origin.host:
        raise ValueError("url must be an absolute http(s) URL with a host")
    return origin


_values: contextvars.ContextVar[list[str]] = contextvars.ContextVar("jobport_http_values")
_nonce = secrets.token_hex(8)
_MARKER = re.compile(f"\x00{_nonce}:(\\d+)\x00")


def _finalize(value: Any) -> str:
    found = _values.get()
    found.append(str(value))  # str() of an undefined name raises, as in plain rendering
    return f"\x00{_nonce}:{len(found) - 1}\x00"


_env = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, finalize=_finalize
)


def render_url(text: str, context: dict[str, Any], where: str) -> str:
    """The URL text with each value percent-encoded (nothing left unencoded but letters,
    digits and `-._~`), so that it stays inside its path segment."""
    if "{" not in text:
        return text
    values: list[str] = []
    token = _values.set(values)
    try:
        rendered = _env.from_string(text).render(context)
    except UndefinedError as exc:
        raise TemplateError(f"{where}: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateError(f"{where}: not allowed: {exc}") from None
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{where}: {exc.message}") from None
    except Exception as exc:
        raise TemplateError(f"{where}: {type(exc).__name__}: {exc}") from None
    finally:
        _values.reset(token)
    segments = []
    for segment in rendered.split("/"):
        parts = _MARKER.split(segment)  # literal, value index, literal, ...
        if len(parts) > 1:
            plain = "".join(
                unquote(p) if i % 2 == 0 else values[int(p)] for i, p in enumerate(parts)
            )
            if plain in (".", ".."):
                raise TemplateError(f"{where}: a value makes the path segment {plain!r}")
            segment = "".join(
                p if i % 2 == 0 else quote(values[int(p)], safe="") for i, p in enumerate(parts)
            )
        segments.append(segment)
    return "/".join(segments)
