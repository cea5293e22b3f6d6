"""Keyset pagination cursors: opaque, URL-safe, and round-tripping their sort values."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from jobport.domain.pages import Page
from jobport.errors import Invalid
from jobport.store.pagination import decode_cursor, encode_cursor, page_of

ID = "01a207b2-b712-7000-9de4-67f572546746"


@pytest.mark.parametrize(
    "value",
    [
        "nightly job",
        "naïve ☃ / + = ?",
        42,
        1.5,
        None,
        dt.datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ],
)
def test_a_cursor_decodes_to_what_was_encoded(value: object) -> None:
    cursor = encode_cursor(value, ID)
    assert decode_cursor(cursor) == (value, ID)


def test_a_datetime_cursor_keeps_its_time_zone() -> None:
    at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    value, _ = decode_cursor(encode_cursor(at, ID))
    assert isinstance(value, dt.datetime) and value.utcoffset() == dt.timedelta(0)


def test_cursors_are_url_safe_without_padding() -> None:
    for value in ("a", "ab", "abc", "???>>>", dt.datetime.now(dt.UTC)):
        cursor = encode_cursor(value, ID)
        assert set(cursor) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-ours",
        "%%%",
        "",
        b64(b"not json"),
        b64(json.dumps([1, 2, 3]).encode()),
        b64(json.dumps({"a": 1}).encode()),
        b64(json.dumps([{"t": "not a date"}, ID]).encode()),
        b64(json.dumps([{"x": 1}, ID]).encode()),
        b64(b"\xff\xfe"),
    ],
)
def test_a_garbage_cursor_is_invalid(cursor: str) -> None:
    with pytest.raises(Invalid) as caught:
        decode_cursor(cursor)
    assert caught.value.code == "invalid_cursor" and caught.value.status == 422


def test_a_short_page_has_no_next_cursor() -> None:
    rows = [{"id": "1", "name": "a"}, {"id": "2", "name": "b"}]
    assert page_of(rows, 2, "name") == Page(rows, None)
    assert page_of([], 5, "name") == Page([], None)


def test_a_full_page_drops_the_lookahead_row_and_points_after_its_last_row() -> None:
    rows = [{"id": str(i), "name": f"n{i}"} for i in range(4)]
    page = page_of(rows, 3, "name")
    assert page.items == rows[:3]
    assert page.next_cursor is not None and decode_cursor(page.next_cursor) == ("n2", "2")
