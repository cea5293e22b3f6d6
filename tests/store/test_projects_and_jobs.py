"""Projects and jobs repositories: lookups, unique names, updates, cascades, keyset pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from jobport.domain.clock import utcnow
from jobport.domain.ids import new_id
from jobport.domain.pages import Page
from jobport.errors import Conflict, Invalid, NotFound
from jobport.store import jobs as job_store
from jobport.store import logs as log_store
from jobport.store import projects as project_store
from jobport.store.db import Database
from jobport.store.pagination import encode_cursor
from jobport.store.tables import execution_logs, executions, jobs

from .rows import add_execution, add_job, add_project, job_row, log_lines, nbytes


def count(conn: Any, table: Any) -> int:
    return conn.execute(select(func.count()).select_from(table)).scalar_one()


def all_pages(fetch: Any, limit: int) -> list[list[dict[str, Any]]]:
    """Follow next cursors from the first page to the last."""
    pages, cursor = [], None
    while True:
        page: Page = fetch(cursor=cursor, limit=limit)
        pages.append(page.items)
        assert len(page.items) <= limit
        if page.next_cursor is None:
            return pages
        assert len(page.items) == limit
        cursor = page.next_cursor


# --- projects -------------------------------------------------------------------------------


def test_a_project_is_found_by_id_or_by_name(db: Database) -> None:
    with db.write() as conn:
        created = add_project(conn, "analytics", description="numbers")
    with db.read() as conn:
        by_id = project_store.get(conn, created["id"])
        by_name = project_store.get(conn, "analytics")
        assert project_store.find(conn, "nope") is None
    assert by_id == by_name == created
    assert by_id["created_at"].tzinfo == dt.UTC


def test_a_missing_project_is_not_found(db: Database) -> None:
    with db.read() as conn, pytest.raises(NotFound) as caught:
        project_store.get(conn, "nope")
    assert caught.value.code == "project_not_found"


def test_project_names_are_unique_and_a_conflict_keeps_the_transaction_usable(
    db: Database,
) -> None:
    with db.write() as conn:
        add_project(conn, "analytics")
        with pytest.raises(Conflict) as caught:
            add_project(conn, "analytics")
        assert caught.value.code == "already_exists"
        add_project(conn, "other")  # the savepoint rolled back only the failed insert
    with db.read() as conn:
        names = [p["name"] for p in project_store.list_page(conn, cursor=None, limit=10).items]
    assert names == ["analytics", "other"]


def test_a_project_is_updated_and_cannot_take_a_used_name(db: Database) -> None:
    with db.write() as conn:
        first = add_project(conn, "first")
        add_project(conn, "second")
        later = utcnow() + dt.timedelta(seconds=1)
        project_store.update_fields(
            conn, first["id"], {"name": "renamed", "description": "new", "updated_at": later}
        )
        with pytest.raises(Conflict) as caught:
            project_store.update_fields(conn, first["id"], {"name": "second"})
        assert caught.value.code == "already_exists"
    with db.read() as conn:
        renamed = project_store.get(conn, first["id"])
    assert (renamed["name"], renamed["description"], renamed["updated_at"]) == (
        "renamed",
        "new",
        later,
    )


def test_removing_a_project_removes_its_jobs_executions_and_logs(db: Database) -> None:
    with db.write() as conn:
        doomed, kept = add_project(conn), add_project(conn)
        job = add_job(conn, doomed)
        execution = add_execution(conn, job)
        lines = log_lines(1, 3)
        log_store.append(conn, execution["id"], lines, nbytes(lines))
        other = add_execution(conn, add_job(conn, kept))
        log_store.append(conn, other["id"], log_lines(1, 2), 10)
    with db.write() as conn:
        project_store.remove(conn, doomed["id"])
    with db.read() as conn:
        assert project_store.find(conn, doomed["id"]) is None
        assert (count(conn, jobs), count(conn, executions), count(conn, execution_logs)) == (
            1,
            1,
            2,
        )


def test_projects_are_paged_by_name(db: Database) -> None:
    names = [f"project{i:02d}" for i in range(7)]
    with db.write() as conn:
        for name in reversed(names):
            add_project(conn, name)

    def fetch(**kwargs: Any) -> Page:
        with db.read() as conn:
            return project_store.list_page(conn, **kwargs)

    pages = all_pages(fetch, limit=3)
    assert [[p["name"] for p in page] for page in pages] == [names[:3], names[3:6], names[6:]]


# --- jobs -----------------------------------------------------------------------------------


def test_a_job_is_found_by_id_or_name_only_within_its_project(db: Database) -> None:
    with db.write() as conn:
        project, elsewhere = add_project(conn), add_project(conn)
        job = add_job(conn, project, "nightly", labels={"team": "data"})
    with db.read() as conn:
        assert job_store.get(conn, project["id"], job["id"]) == job
        assert job_store.get(conn, project["id"], "nightly") == job
        assert job_store.get_by_id(conn, job["id"]) == job
        assert job_store.find(conn, elsewhere["id"], "nightly") is None
        assert job_store.find(conn, elsewhere["id"], job["id"]) is None
        with pytest.raises(NotFound) as caught:
            job_store.get(conn, elsewhere["id"], "nightly")
    assert caught.value.code == "job_not_found"
    assert job["spec"]["labels"] == {"team": "data"}


def test_a_job_can_be_found_with_a_row_lock(db: Database) -> None:
    with db.write() as conn:
        job = add_job(conn, add_project(conn))
    with db.write() as conn:
        assert job_store.get(conn, job["project_id"], job["name"], lock=True)["id"] == job["id"]


def test_job_names_are_unique_per_project(db: Database) -> None:
    with db.write() as conn:
        project, other = add_project(conn), add_project(conn)
        add_job(conn, project, "nightly")
        with pytest.raises(Conflict) as caught:
            add_job(conn, project, "nightly")
        assert caught.value.code == "already_exists"
        add_job(conn, other, "nightly")  # the same name in another project is fine
    with db.read() as conn:
        assert count(conn, jobs) == 2


def test_a_job_is_updated_and_cannot_take_a_used_name(db: Database) -> None:
    with db.write() as conn:
        project = add_project(conn)
        job = add_job(conn, project, "first")
        add_job(conn, project, "second")
        spec = {**job["spec"], "name": "renamed", "description": "now documented"}
        job_store.update_fields(conn, job["id"], {"name": "renamed", "spec": spec})
        with pytest.raises(Conflict) as caught:
            job_store.update_fields(conn, job["id"], {"name": "second"})
        assert caught.value.code == "already_exists"
    with db.read() as conn:
        stored = job_store.get(conn, project["id"], job["id"])
    assert stored["name"] == "renamed"
    assert stored["spec"]["description"] == "now documented"


def test_removing_a_job_removes_its_executions_and_logs(db: Database) -> None:
    with db.write() as conn:
        project = add_project(conn)
        doomed, kept = add_job(conn, project), add_job(conn, project)
        execution = add_execution(conn, doomed)
        log_store.append(conn, execution["id"], log_lines(1, 2), 10)
        add_execution(conn, kept)
    with db.write() as conn:
        job_store.remove(conn, doomed["id"])
    with db.read() as conn:
        assert job_store.find(conn, project["id"], doomed["id"]) is None
        assert (count(conn, jobs), count(conn, executions), count(conn, execution_logs)) == (
            1,
            1,
            0,
        )


@pytest.fixture
def twelve_jobs(db: Database) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Twelve jobs of one project, four sharing each creation time (ties break by id)."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with db.write() as conn:
        project = add_project(conn)
        noise = add_project(conn)
        add_job(conn, noise, "job05")  # another project's job never shows up
        created = []
        for i in (7, 3, 11, 0, 5, 9, 1, 10, 2, 8, 4, 6):
            at = start + dt.timedelta(minutes=i // 4)
            created.append(
                job_store.create(conn, job_row(project["id"], f"job{i:02d}", created_at=at))
            )
    return project, created


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("name", lambda j: (j["name"], j["id"])),
        ("-name", lambda j: (j["name"], j["id"])),
        ("createdAt", lambda j: (j["created_at"], j["id"])),
        ("-createdAt", lambda j: (j["created_at"], j["id"])),
        ("-updatedAt", lambda j: (j["updated_at"], j["id"])),
    ],
)
def test_job_pages_cover_every_job_once_in_sort_order(
    db: Database, twelve_jobs: tuple[dict[str, Any], list[dict[str, Any]]], sort: str, key: Any
) -> None:
    project, created = twelve_jobs
    expected = sorted(created, key=key, reverse=sort.startswith("-"))

    def fetch(**kwargs: Any) -> Page:
        with db.read() as conn:
            return job_store.list_page(
                conn, project["id"], name_contains=None, label=None, sort=sort, **kwargs
            )

    pages = all_pages(fetch, limit=5)
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [j["id"] for page in pages for j in page] == [j["id"] for j in expected]


def test_a_page_exactly_as_long_as_the_rest_has_no_next_cursor(
    db: Database, twelve_jobs: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    project, _ = twelve_jobs
    with db.read() as conn:
        page = job_store.list_page(
            conn, project["id"], name_contains=None, label=None, sort="name", cursor=None, limit=12
        )
    assert len(page.items) == 12 and page.next_cursor is None


def test_a_garbage_cursor_is_invalid(db: Database) -> None:
    with db.read() as conn, pytest.raises(Invalid) as caught:
        job_store.list_page(
            conn, "p", name_contains=None, label=None, sort="name", cursor="not-ours", limit=5
        )
    assert caught.value.code == "invalid_cursor"


@pytest.mark.parametrize(
    ("sort", "cursor_value"),
    [
        ("createdAt", "job05"),  # a name cursor reused after switching the sort
        ("name", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),  # and the other way round
        ("name", 5),
        ("createdAt", dt.datetime(2026, 1, 1)),  # naive: never issued by us
    ],
)
def test_a_cursor_of_the_wrong_kind_is_invalid_not_a_database_error(
    db: Database,
    twelve_jobs: tuple[dict[str, Any], list[dict[str, Any]]],
    sort: str,
    cursor_value: Any,
) -> None:
    project, created = twelve_jobs
    cursor = encode_cursor(cursor_value, created[0]["id"])
    with db.read() as conn, pytest.raises(Invalid) as caught:
        job_store.list_page(
            conn, project["id"], name_contains=None, label=None, sort=sort, cursor=cursor, limit=5
        )
    assert caught.value.code == "invalid_cursor"


def names_containing(db: Database, project_id: str, text: str) -> list[str]:
    with db.read() as conn:
        page = job_store.list_page(
            conn, project_id, name_contains=text, label=None, sort="name", cursor=None, limit=50
        )
    return sorted(j["name"] for j in page.items)  # sorted here: collations differ on symbols


def test_name_filter_is_a_case_insensitive_substring_with_literal_wildcards(db: Database) -> None:
    with db.write() as conn:
        project = add_project(conn)
        for name in ("load_2024", "load-2024", "loadX2024", "export 100", "Report.daily"):
            add_job(conn, project, name)
    pid = project["id"]
    assert names_containing(db, pid, "LOAD") == sorted(["load_2024", "load-2024", "loadX2024"])
    assert names_containing(db, pid, "_") == ["load_2024"]
    assert names_containing(db, pid, "d_2") == ["load_2024"]
    assert names_containing(db, pid, "%") == []
    assert names_containing(db, pid, "0%") == []
    assert names_containing(db, pid, "report.") == ["Report.daily"]


def labelled_pages(
    db: Database, project_id: str, label: tuple[str, str], sort: str
) -> list[list[str]]:
    def fetch(**kwargs: Any) -> Page:
        with db.read() as conn:
            return job_store.list_page(
                conn, project_id, name_contains=None, label=label, sort=sort, **kwargs
            )

    return [[j["name"] for j in page] for page in all_pages(fetch, limit=2)]


def test_label_filter_pages_through_matching_jobs_only(db: Database) -> None:
    with db.write() as conn:
        project = add_project(conn)
        for i in range(9):
            labels = {"team": "data" if i % 2 == 0 else "web", "tier": str(i % 3)}
            add_job(conn, project, f"job{i}", labels=labels)
    pid = project["id"]
    assert labelled_pages(db, pid, ("team", "data"), "name") == [
        ["job0", "job2"],
        ["job4", "job6"],
        ["job8"],
    ]
    assert labelled_pages(db, pid, ("team", "data"), "-name") == [
        ["job8", "job6"],
        ["job4", "job2"],
        ["job0"],
    ]
    assert labelled_pages(db, pid, ("tier", "1"), "name") == [["job1", "job4"], ["job7"]]
    assert labelled_pages(db, pid, ("team", "nobody"), "name") == [[]]
    assert labelled_pages(db, pid, ("missing", "data"), "name") == [[]]


def test_label_filter_scans_past_its_first_batch(db: Database) -> None:
    """Matches sparse among more jobs than one scan batch (500) still all come back."""
    with db.write() as conn:
        project = add_project(conn)
        plain, rare = job_row(project["id"]), job_row(project["id"], labels={"kind": "rare"})
        rows = [
            {**(rare if i % 300 == 7 else plain), "id": new_id(), "name": f"job{i:04d}"}
            for i in range(1_250)
        ]
        conn.execute(jobs.insert(), rows)
    assert labelled_pages(db, project["id"], ("kind", "rare"), "name") == [
        ["job0007", "job0307"],
        ["job0607", "job0907"],
        ["job1207"],
    ]


def test_unknown_project_ids_list_no_jobs(db: Database) -> None:
    with db.write() as conn:
        add_job(conn, add_project(conn))
    assert names_containing(db, "no-such-project", "job") == []


def test_an_id_wins_over_a_name_that_looks_like_it(db: Database) -> None:
    with db.write() as conn:
        target = add_project(conn, "target")
        add_project(conn, target["id"])  # a project *named* like the other's id
        first = add_job(conn, target, "first")
        add_job(conn, target, first["id"])
    for _ in range(3):
        with db.read() as conn:
            assert project_store.get(conn, target["id"])["name"] == "target"
            assert job_store.get(conn, target["id"], first["id"])["name"] == "first"
