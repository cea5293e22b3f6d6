"""JSON values both stores keep and give back unchanged: the limits input must meet, and the
cleaning of what the engine produces.

SQLite and PostgreSQL disagree on the edges of text and JSON: PostgreSQL refuses NUL
characters in text and JSONB, neither can encode a lone UTF-16 surrogate as UTF-8, and
JSON has no NaN or Infinity. Input that holds any of these is refused at the edge (the
same on both stores); values the engine produces (results, log lines, error messages) are
cleaned instead, so that no stored row can make a read fail.
"""

from __future__ import annotations

import math
import re
from typing import Any

MAX_DEPTH = 32  # levels of nested objects and arrays in a request body
REPLACEMENT = "\ufffd"
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored as it is, or None."""
    found = _BAD_CHARS.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "NUL characters (\\u0000) are not allowed"
    return f"a lone surrogate (\\u{ord(found.group()):04x}) is not a character"


def first_problem(value: Any, max_depth: int = MAX_DEPTH) -> tuple[str, str, str] | None:
    """The first thing in a parsed JSON value that no store keeps: (kind, field, reason).

    kind is "depth" (nested deeper than max_depth), "number" (NaN or Infinity) or "text"
    (a NUL or a lone surrogate, in a key or a string). Iterative, so any depth is safe.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            reason = text_problem(item)
            if reason:
                return "text", path or "body", reason
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "number", path or "body", f"{item} is not a JSON number"
        elif isinstance(item, dict | list):
            if depth > max_depth:
                return "depth", path or "body", f"nested deeper than {max_depth} levels"
            if isinstance(item, dict):
                for key, child in item.items():
                    where = f"{path}.{key}" if path else str(key)
                    reason = text_problem(key) if isinstance(key, str) else None
                    if reason:
                        return "text", where, f"a key: {reason}"
                    stack.append((child, where, depth + 1))
            else:
                for index, child in enumerate(item):
                    stack.append((child, f"{path}[{index}]", depth + 1))
    return None


def clean_text(text: str) -> str:
    """The string with NULs and lone surrogates replaced by U+FFFD."""
    return _BAD_CHARS.sub(REPLACEMENT, text) if _BAD_CHARS.search(text) else text


def clean(value: Any, max_depth: int = 100) -> Any:
    """A copy both stores keep: bad characters replaced, NaN and Infinity as null, and
    anything nested deeper than `max_depth` (or not JSON at all) as its text."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int):
        return value
    if max_depth <= 0:
        return clean_text(repr(value))[:10_000]
    if isinstance(value, dict):
        return {clean_text(str(k)): clean(v, max_depth - 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v, max_depth - 1) for v in value]
    return clean_text(str(value))
