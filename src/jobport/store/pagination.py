"""Keyset pagination: opaque cursors over (sort value, id)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from sqlalchemy import Column, Connection, Select, and_, or_

from jobport.domain.pages import Page
from jobport.errors import Invalid


def encode_cursor(value: Any, ident: str) -> str:
    if isinstance(value, dt.datetime):
        value = {"t": value.isoformat()}
    raw = json.dumps([value, ident], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, ident = json.loads(raw)
        if isinstance(value, dict):
            value = dt.datetime.fromisoformat(value["t"])
        return value, str(ident)
    except Exception as exc:
        raise Invalid("cursor is not one this server issued", code="invalid_cursor") from exc


def fetch_page(
    conn: Connection,
    query: Select[Any],
    sort_col: Column[Any],
    id_col: Column[Any],
    *,
    descending: bool,
    cursor: str | None,
    limit: int,
) -> Page:
    """The page of `query`'s rows after `cursor`, ordered by (sort, id), with the cursor of
    the next page. The rows are dicts keyed by column."""
    rows = fetch_rows(
        conn, query, sort_col, id_col, descending=descending, cursor=cursor, limit=limit
    )
    return page_of(rows, limit, sort_col.key, id_col.key)


def fetch_rows(
    conn: Connection,
    query: Select[Any],
    sort_col: Column[Any],
    id_col: Column[Any],
    *,
    descending: bool,
    cursor: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The first `limit` + 1 rows of `query` after `cursor`, in (sort, id) order: a page and
    whether there is more (page_of). Pages of several queries merge: their rows sorted
    together, the first `limit` + 1 of them."""
    if cursor:
        value, ident = decode_cursor(cursor)
        _check_sort_value(sort_col, value)
        if descending:
            query = query.where(or_(sort_col < value, and_(sort_col == value, id_col < ident)))
        else:
            query = query.where(or_(sort_col > value, and_(sort_col == value, id_col > ident)))
    if descending:
        query = query.order_by(sort_col.desc(), id_col.desc())
    else:
        query = query.order_by(sort_col.asc(), id_col.asc())
    return [dict(r._mapping) for r in conn.execute(query.limit(limit + 1))]


def _check_sort_value(sort_col: Column[Any], value: Any) -> None:
    """A cursor from another sort (or a forged one) would otherwise fail in the database."""
    column_type = getattr(sort_col.type, "impl", sort_col.type)
    try:
        expected = column_type.python_type
    except NotImplementedError:
        return
    naive = isinstance(value, dt.datetime) and value.tzinfo is None
    if not isinstance(value, expected) or naive:
        raise Invalid("cursor is not one this server issued", code="invalid_cursor")


def page_of(rows: list[dict[str, Any]], limit: int, sort_key: str, id_key: str = "id") -> Page:
    """The first `limit` of `rows` (fetched limit + 1), with the cursor after the last if
    there are more."""
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    last = rows[-1]
    return Page(rows, encode_cursor(last[sort_key], last[id_key]))
