"""Identifiers: UUIDv7-shaped, unique, and sorting in creation order."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from jobport.domain import ids
from jobport.domain.ids import new_id


def test_ids_are_unique_and_sort_in_creation_order() -> None:
    made = [new_id() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    assert made == sorted(made)


def test_an_id_is_a_version_7_uuid_carrying_the_time() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid.UUID(new_id())
    after = time.time_ns() // 1_000_000
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after + 1
    assert str(made) == str(made).lower() and len(str(made)) == 36


def test_ids_stay_ordered_when_the_clock_stalls_or_goes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pretend the last id came from the future: more than 4096 ids in one millisecond."""
    monkeypatch.setattr(ids, "_last_ms", time.time_ns() // 1_000_000 + 60_000)
    made = [new_id() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    assert made == sorted(made)


def test_ids_made_on_many_threads_are_unique() -> None:
    made: list[list[str]] = [[] for _ in range(8)]

    def make(out: list[str]) -> None:
        out.extend(new_id() for _ in range(2_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for out in made for i in out]
    assert len(set(every)) == len(every) == 16_000
    assert all(out == sorted(out) for out in made)
