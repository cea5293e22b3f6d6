"""The per-process access state (token key, failed-attempt limiter, key cache) and the write
transaction of access data that keeps that cache honest."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from jobport.domain.access import Grant
from jobport.services.runtime import Runtime
from jobport.store import notify

log = logging.getLogger("jobport.access")


@dataclass
class AccessState:
    """Per-process access machinery: the token key, the failed-attempt limiter, and a
    short-lived cache of API keys with their grants (see authentication._load_key)."""

    signing_key: str
    # Counted where settings.rate_limit_storage_url says: in this process (memory://), or in
    # a store every API node shares (redis://...).
    limiter: MovingWindowRateLimiter = field(
        default_factory=lambda: MovingWindowRateLimiter(MemoryStorage())
    )
    keys: dict[str, tuple[float, dict[str, Any], tuple[Grant, ...]]] = field(default_factory=dict)


def limiter_for(storage_url: str) -> MovingWindowRateLimiter:
    """The failed-attempt limiter on the storage a URL names (limits' syntax)."""
    from limits.storage import storage_from_string

    if storage_url.startswith("memory://"):
        return MovingWindowRateLimiter(storage_from_string(storage_url))
    return _FailingOpen(storage_from_string(storage_url))


class _FailingOpen(MovingWindowRateLimiter):
    """A limiter on a shared store that, while the store is away, counts nothing instead of
    failing the request: the credentials are still checked, only the slowing-down is off."""

    def hit(self, item: Any, *identifiers: str, cost: int = 1) -> bool:
        try:
            return super().hit(item, *identifiers, cost=cost)
        except Exception as exc:
            log.warning("failed-attempt counts unavailable (%s); not counting", exc)
            return True

    def test(self, item: Any, *identifiers: str, cost: int = 1) -> bool:
        try:
            return super().test(item, *identifiers, cost=cost)
        except Exception as exc:
            log.warning("failed-attempt counts unavailable (%s); not counting", exc)
            return True


def forget_cached(rt: Runtime) -> None:
    """Forget the keys this process cached (access data changed, here or on another node)."""
    if rt.access is not None:
        rt.access.keys.clear()


@contextlib.contextmanager
def write(rt: Runtime) -> Iterator[Any]:
    """A write transaction of access data. This process forgets its cached keys after it;
    other nodes of a PostgreSQL database are told to (store/notify.py) when it commits."""
    try:
        with rt.db.write() as conn:
            yield conn
            notify.publish(conn, "access")
    finally:
        forget_cached(rt)
