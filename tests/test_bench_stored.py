"""bench/stored.py: the stored runs `bench/run.py --stored` fills are runs the real server
reads as its own: listed, filtered, paged by cursor, shown with their log, on SQLite and
PostgreSQL. A schema change the fill does not follow fails here, not in a bench run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import create_postgres_database, drop_postgres_database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import stored

RUNS = 300


def expected_statuses(n: int) -> dict[str, int]:
    """What stored.py writes for runs 0..n-1 (out of 1,000: 940 / 50 / 9 / 1)."""
    out: dict[str, int] = {}
    for i in range(n):
        h = (i * 2654435761) % 1000
        status = (
            "timed_out" if h < 1 else "cancelled" if h < 10 else "failed" if h < 60 else "succeeded"
        )
        out[status] = out.get(status, 0) + 1
    return out


def all_pages(api: Any, query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        url = f"/api/v1/projects/demo/executions?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = api.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page.get("nextCursor")
        if not cursor:
            return items


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_stored_runs_are_runs_the_server_reads(kind: str, make_server: Any, tmp_path: Path) -> None:
    stored.check_columns()
    url = f"sqlite:///{tmp_path / 'stored.db'}" if kind == "sqlite" else create_postgres_database()
    # Pruning off: the oldest stored runs ended 90 days ago and would go.
    server = make_server(url, prune_interval_seconds=0)
    try:
        stored.seed(url, tmp_path)
        if kind == "sqlite":
            stored.fill_sqlite(tmp_path / "stored.db", RUNS, say=lambda _: None)
        else:
            stored.fill_postgres(url, RUNS, say=lambda _: None)
        check(server.start())
    finally:
        if kind == "postgres":
            server.stop()
            drop_postgres_database(url)


def check(server: Any) -> None:
    with server.client() as api:
        runs = all_pages(api, "limit=50")
        assert len(runs) == RUNS
        assert len({r["id"] for r in runs}) == RUNS
        # Newest first, ids in the same order as their creation times.
        assert [r["id"] for r in runs] == sorted((r["id"] for r in runs), reverse=True)
        assert [r["createdAt"] for r in runs] == sorted(
            (r["createdAt"] for r in runs), reverse=True
        )
        counts: dict[str, int] = {}
        for r in runs:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        assert counts == expected_statuses(RUNS)
        failed = all_pages(api, "status=failed&limit=7")
        assert len(failed) == counts["failed"]
        assert all(r["error"]["code"] == "step_failed" for r in failed)
        noop = all_pages(api, "job=noop&limit=50")
        assert noop and all(r["jobName"] == "noop" for r in noop)
        assert {r["jobName"] for r in runs} >= {"noop", "hello", "filler-000", "filler-099"}

        one = api.get(f"/api/v1/executions/{failed[0]['id']}")
        assert one.status_code == 200, one.text
        body = one.json()
        assert body["steps"][0]["status"] == "failed"
        assert body["startedAt"] < body["finishedAt"]
        assert body["logLines"] == stored.LOG_LINES
        logs = api.get(f"/api/v1/executions/{body['id']}/logs").json()["items"]
        assert len(logs) == stored.LOG_LINES
        assert logs[0]["text"].endswith("started") and logs[-1]["level"] == "error"
        assert [ln["at"] for ln in logs] == sorted(ln["at"] for ln in logs)
