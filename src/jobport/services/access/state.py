"""The per-process access state (token key, failed-attempt limiter, key cache) and the write
transaction of access data that keeps that cache honest."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from jobport.domain.access import Grant
from jobport.services.runtime import Runtime


@dataclass
class AccessState:
    """Per-process access machinery: the token key, the failed-attempt limiter, and a
    short-lived cache of API keys with their grants (see authentication._load_key)."""

    signing_key: str
    limiter: MovingWindowRateLimiter = field(
        default_factory=lambda: MovingWindowRateLimiter(MemoryStorage())
    )
    keys: dict[str, tuple[float, dict[str, Any], tuple[Grant, ...]]] = field(default_factory=dict)


@contextlib.contextmanager
def write(rt: Runtime) -> Iterator[Any]:
    """A write transaction of access data; this process forgets its cached keys after it."""
    try:
        with rt.db.write() as conn:
            yield conn
    finally:
        if rt.access is not None:
            rt.access.keys.clear()
