"""Time-ordered identifiers: newer ids sort after older ones, so ids double as cursors."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """A UUIDv7-shaped id: 48 bits of milliseconds, a per-millisecond counter, random bits."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:
                ms += 1
                _counter = 0
        else:
            _counter = 0
        _last_ms = ms
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    return str(uuid.UUID(int=value))


def object_id(native_id: str) -> str:
    """The 24-hex id a vendor face shows for a project, job or execution (Losant's ids are
    MongoDB object ids): the first 96 bits of the native id's SHA-256. Stored beside the
    native id (store/tables.py) so a face finds a row by either."""
    return hashlib.sha256(native_id.encode()).hexdigest()[:24]


_OBJECT_ID = re.compile(r"[0-9A-Fa-f]{24}")


def object_ref(ref: str) -> str:
    """A reference as an object id is stored: 24 hex digits in lower case (Losant's ids are
    written in either case); anything else unchanged."""
    return ref.lower() if _OBJECT_ID.fullmatch(ref) else ref
