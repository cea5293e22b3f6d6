"""Connections through the real server, on SQLite and PostgreSQL alike: define, list, read,
change and delete them; what is refused and why; who may; and that no password or header
value reaches an answer, the audit log, the server's log or the database in the clear.
(Testing a connection: test_connection_probe.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from api.connections_support import (
    BACKENDS,
    MASK,
    PASSWORD,
    SECRETS,
    TOKEN,
    Answers,
    assert_no_secret_anywhere,
    base,
    new_project,
    pg_url,
    serve,
    stored,
)
from conftest import Server, admin_key

ANSWERS = Answers()


@pytest.fixture(scope="module", params=BACKENDS)
def conn_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from serve(request.param, tmp_path_factory)


@pytest.fixture
def api(conn_server: Server) -> Iterator[httpx2.Client]:
    with ANSWERS.client(conn_server) as client:
        yield client


@pytest.fixture
def project(api: httpx2.Client) -> str:
    return new_project(api)


def assert_masked(body: dict[str, Any]) -> None:
    text = str(body)
    assert not any(secret in text for secret in SECRETS), body
    assert all(value == MASK for value in body["headers"].values()), body


# --- define, read, change, delete -----------------------------------------------------------


def test_create_list_get_patch_delete(
    conn_server: Server, api: httpx2.Client, project: str
) -> None:
    made = api.post(
        base(project),
        json={"name": "warehouse", "url": pg_url(), "description": "the reporting warehouse"},
    )
    assert made.status_code == 201, made.text
    db = made.json()
    assert made.headers["location"] == f"{base(project)}/{db['id']}"
    assert db["kind"] == "sql" and db["name"] == "warehouse" and db["headers"] == {}
    assert db["url"] == pg_url(MASK)
    assert db["description"] == "the reporting warehouse"
    assert set(db) == {
        "id", "projectId", "name", "description", "kind", "url", "headers", "createdAt",
        "updatedAt",
    }  # fmt: skip
    crm = api.post(
        base(project),
        json={
            "name": "crm",
            "url": f"https://robot:{PASSWORD}@crm.example.com/api/",
            "headers": {"Authorization": f"Bearer {TOKEN}", "X-Tenant": TOKEN},
        },
    ).json()
    assert crm["kind"] == "http"
    assert crm["url"] == f"https://robot:{MASK}@crm.example.com/api/"
    assert crm["headers"] == {"Authorization": MASK, "X-Tenant": MASK}

    # Read back: by name and by id, one page and page by page, always masked.
    for ref in ("warehouse", db["id"]):
        got = api.get(f"{base(project)}/{ref}")
        assert got.status_code == 200 and got.json() == db
    listed = api.get(base(project)).json()
    assert [c["name"] for c in listed["items"]] == ["crm", "warehouse"]
    assert listed["nextCursor"] is None
    first = api.get(base(project), params={"limit": 1}).json()
    second = api.get(base(project), params={"limit": 1, "cursor": first["nextCursor"]}).json()
    assert [c["name"] for c in first["items"] + second["items"]] == ["crm", "warehouse"]
    for body in [db, crm, *listed["items"]]:
        assert_masked(body)

    # What is stored: the masked URL in the clear, the whole URL and the values encrypted.
    row = stored(conn_server, crm["id"])
    assert row["url"] == crm["url"] and row["header_names"] == ["Authorization", "X-Tenant"]
    assert PASSWORD not in row["secret"] and TOKEN not in row["secret"]
    assert row["decrypted"] == {
        "url": f"https://robot:{PASSWORD}@crm.example.com/api/",
        "headers": {"Authorization": f"Bearer {TOKEN}", "X-Tenant": TOKEN},
    }
    key_file = conn_server.workdir / ".jobport" / "encryption.key"
    assert key_file.stat().st_mode & 0o777 == 0o600

    # PATCH: the description alone; a new host with *** keeps the password.
    patched = api.patch(f"{base(project)}/warehouse", json={"description": "v2"}).json()
    assert patched["description"] == "v2" and patched["url"] == db["url"]
    assert patched["updatedAt"] >= db["updatedAt"] and patched["createdAt"] == db["createdAt"]
    moved = api.patch(
        f"{base(project)}/warehouse",
        json={"url": f"postgresql://postgres:{MASK}@db2.example.com:5433/postgres"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["url"] == f"postgresql://postgres:{MASK}@db2.example.com:5433/postgres"
    assert stored(conn_server, db["id"])["decrypted"]["url"] == (
        f"postgresql://postgres:{PASSWORD}@db2.example.com:5433/postgres"
    )
    # Sending back what was read changes nothing secret.
    again = api.patch(f"{base(project)}/crm", json={"url": crm["url"], "headers": crm["headers"]})
    assert again.status_code == 200, again.text
    assert stored(conn_server, crm["id"])["decrypted"] == row["decrypted"]
    # headers replaces the set: *** keeps one value, a new value replaces, the rest go.
    headers = {"authorization": MASK, "X-Tenant": "other", "Accept": "application/json"}
    changed = api.patch(f"{base(project)}/crm", json={"headers": headers}).json()
    assert changed["headers"] == {"Accept": MASK, "X-Tenant": MASK, "authorization": MASK}
    assert stored(conn_server, crm["id"])["decrypted"]["headers"] == {
        "authorization": f"Bearer {TOKEN}",
        "X-Tenant": "other",
        "Accept": "application/json",
    }
    # A new password replaces the old; a rename keeps the id.
    renamed = api.patch(
        f"{base(project)}/crm",
        json={"name": "crm-2", "url": "https://robot:n3w-pass@crm.example.com/api/"},
    ).json()
    assert renamed["id"] == crm["id"] and renamed["name"] == "crm-2"
    decrypted = stored(conn_server, crm["id"])["decrypted"]
    assert decrypted["url"] == "https://robot:n3w-pass@crm.example.com/api/"
    assert api.get(f"{base(project)}/crm").status_code == 404

    # DELETE, then it is gone.
    assert api.delete(f"{base(project)}/warehouse").status_code == 204
    gone = api.get(f"{base(project)}/warehouse")
    assert gone.status_code == 404 and gone.json()["error"] == "connection_not_found"
    assert api.delete(f"{base(project)}/{db['id']}").status_code == 404


def test_a_name_is_taken_once_per_project(api: httpx2.Client, project: str) -> None:
    body = {"name": "dup", "url": "sqlite:///one.db"}
    assert api.post(base(project), json=body).status_code == 201
    again = api.post(base(project), json={**body, "url": pg_url()})
    assert again.status_code == 409 and again.json()["error"] == "already_exists", again.text
    assert api.post(base(project), json={"name": "other", "url": "sqlite://"}).status_code == 201
    clash = api.patch(f"{base(project)}/other", json={"name": "dup"})
    assert clash.status_code == 409 and clash.json()["error"] == "already_exists"
    assert [c["name"] for c in api.get(base(project)).json()["items"]] == ["dup", "other"]


BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("an unsupported database", {"name": "x", "url": f"oracle://u:{PASSWORD}@h/db"}, "url"),
    ("not a URL", {"name": "x", "url": "garbage"}, "url"),
    ("an http URL without a host", {"name": "x", "url": f"http://u:{PASSWORD}@"}, "url"),
    ("an http URL with a bad port", {"name": "x", "url": f"http://u:{PASSWORD}@h:99999/"}, "url"),
    ("a bad port", {"name": "x", "url": f"postgresql://u:{PASSWORD}@h:port/db"}, "url"),
    ("an empty URL", {"name": "x", "url": ""}, "url"),
    ("no URL", {"name": "x"}, "url"),
    ("a bad name", {"name": "a/b", "url": "sqlite://"}, "name"),
    (
        "a bad header name",
        {"name": "x", "url": "https://h/", "headers": {"X Bad": TOKEN}},
        "headers",
    ),
    (
        "a line break in a header",
        {"name": "x", "url": "https://h/", "headers": {"X-Token": f"{TOKEN}\r\nX-Evil: 1"}},
        "headers",
    ),
    (
        "a header that is not text",
        {"name": "x", "url": "https://h/", "headers": {"A": 1}},
        "headers",
    ),
    # An HTTP client refuses these when it sends them, quoting the value in its error.
    (
        "a control character in a header",
        {"name": "x", "url": "https://h/", "headers": {"X-Token": f"{TOKEN}\x0b"}},
        "headers.X-Token",
    ),
    (
        "a header value that starts with a space",
        {"name": "x", "url": "https://h/", "headers": {"X-Token": f" {TOKEN}"}},
        "headers.X-Token",
    ),
    (
        "a header value that is not ASCII",
        {"name": "x", "url": "https://h/", "headers": {"X-Token": f"{TOKEN}\u00e9"}},
        "headers.X-Token",
    ),
    (
        "a header name that is not a token",
        {"name": "x", "url": "https://h/", "headers": {"X(Token)": TOKEN}},
        "headers.X(Token)",
    ),
    ("an unknown field", {"name": "x", "url": "sqlite://", "password": PASSWORD}, "password"),
    ("*** as a new password", {"name": "x", "url": f"postgresql://u:{MASK}@h/db"}, "url"),
    (
        "*** as a new header value",
        {"name": "x", "url": "https://h/", "headers": {"X-Token": MASK}},
        "headers.X-Token",
    ),
]


@pytest.mark.parametrize(("why", "body", "field"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_input_is_refused_naming_the_field_and_no_secret(
    api: httpx2.Client, project: str, why: str, body: dict[str, Any], field: str
) -> None:
    response = api.post(base(project), json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "invalid_connection", error
    assert any(d["field"].startswith(field) for d in error["details"]), error
    assert error["message"] and not any(s in response.text for s in SECRETS), response.text
    assert api.get(base(project)).json()["items"] == []


def test_bad_changes_are_refused_and_change_nothing(
    conn_server: Server, api: httpx2.Client, project: str
) -> None:
    plain = api.post(base(project), json={"name": "plain", "url": "sqlite:///plain.db"}).json()
    secret = api.post(
        base(project),
        json={"name": "s", "url": pg_url(), "headers": {"X-Token": TOKEN}},
    ).json()
    before = stored(conn_server, secret["id"])
    cases = [
        ("plain", {"url": f"postgresql://u:{MASK}@h/db"}, "url"),  # no password to keep
        ("s", {"headers": {"X-Other": MASK}}, "headers.X-Other"),  # no such header to keep
        ("s", {"url": "oracle://x"}, "url"),
        ("s", {"url": f"http://u:{MASK}@"}, "url"),  # the stored password must not show
        ("s", {"name": None}, "name"),
        ("s", {"headers": {"X-Token": "a\nb"}}, "headers"),
        ("s", {"secret": "x"}, "secret"),
    ]
    for name, change, field in cases:
        response = api.patch(f"{base(project)}/{name}", json=change)
        assert response.status_code == 422, (change, response.text)
        error = response.json()
        assert error["error"] == "invalid_connection", error
        assert any(d["field"].startswith(field) for d in error["details"]), (change, error)
        assert not any(s in response.text for s in SECRETS), response.text
    after = stored(conn_server, secret["id"])
    assert after["decrypted"] == before["decrypted"] and after["updated_at"] == before["updated_at"]
    assert api.get(f"{base(project)}/plain").json() == plain


def test_what_is_not_there_is_404(api: httpx2.Client, project: str) -> None:
    missing = f"{base(project)}/nothing"
    for method, url in [
        ("GET", missing),
        ("PATCH", missing),
        ("DELETE", missing),
        ("POST", f"{missing}/test"),
    ]:
        kwargs: dict[str, Any] = {"json": {"description": "x"}} if method == "PATCH" else {}
        response = api.request(method, url, **kwargs)
        assert response.status_code == 404, (method, response.text)
        assert response.json()["error"] == "connection_not_found"
    response = api.get(base("no-such-project"))
    assert response.status_code == 404 and response.json()["error"] == "project_not_found"


# --- who may, and where ---------------------------------------------------------------------


def test_viewers_and_operators_may_not_touch_connections(
    conn_server: Server, api: httpx2.Client, project: str
) -> None:
    api.post(base(project), json={"name": "c", "url": pg_url()})
    for role in ("Viewer", "Operator"):
        key = admin_key(conn_server.database_url, role=role)
        headers = {"Authorization": f"Bearer {key}"}
        with ANSWERS.client(conn_server, anonymous=True, headers=headers) as c:
            assert c.get(f"/api/v1/projects/{project}").status_code == 200  # the key works
            for method, url, body in [
                ("GET", base(project), None),
                ("GET", f"{base(project)}/c", None),
                ("POST", base(project), {"name": "d", "url": "sqlite://"}),
                ("PATCH", f"{base(project)}/c", {"description": "x"}),
                ("DELETE", f"{base(project)}/c", None),
                ("POST", f"{base(project)}/c/test", None),
            ]:
                response = c.request(method, url, json=body)
                assert response.status_code == 403, (role, method, url, response.text)
                assert response.json()["error"] == "insufficient_scope"
    assert [x["name"] for x in api.get(base(project)).json()["items"]] == ["c"]


def test_a_connection_belongs_to_its_project(
    conn_server: Server, api: httpx2.Client, project: str
) -> None:
    mine = api.post(base(project), json={"name": "mine", "url": pg_url()}).json()
    other = f"p-{uuid.uuid4().hex[:10]}"
    assert api.post("/api/v1/projects", json={"name": other}).status_code == 201
    assert api.get(base(other)).json()["items"] == []
    for ref in ("mine", mine["id"]):
        for method, suffix in [("GET", ""), ("PATCH", ""), ("POST", "/test"), ("DELETE", "")]:
            kwargs: dict[str, Any] = {"json": {"name": "taken"}} if method == "PATCH" else {}
            response = api.request(method, f"{base(other)}/{ref}{suffix}", **kwargs)
            assert response.status_code == 404, (method, ref, response.text)
    # The same name may live in both.
    assert api.post(base(other), json={"name": "mine", "url": "sqlite://"}).status_code == 201
    assert api.get(f"{base(project)}/mine").json() == mine
    # An administrator of the other project only may not reach it at all.
    key = admin_key(conn_server.database_url, role="Administrator", project=other)
    with ANSWERS.client(
        conn_server, anonymous=True, headers={"Authorization": f"Bearer {key}"}
    ) as c:
        refused = c.get(f"{base(project)}/mine")
        assert refused.status_code == 403 and refused.json()["error"] == "project_forbidden"
        assert c.get(f"{base(other)}/mine").status_code == 200


# --- URLs that are hard to read -------------------------------------------------------------


@pytest.mark.parametrize("odd", ["/", "#", "?"])
def test_a_password_holding_url_characters_is_masked(
    api: httpx2.Client, project: str, odd: str
) -> None:
    # SQLAlchemy takes any character but @ in a password: the mask must read it the same way.
    url = f"postgresql://user:se{odd}{PASSWORD}@db.example.com/db"
    made = api.post(base(project), json={"name": "odd", "url": url})
    assert made.status_code == 201, made.text
    assert made.json()["url"] == "postgresql://user:***@db.example.com/db"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{PASSWORD}@[::1/db",
        f"http://u:{PASSWORD}@[::1",
        f"https://user:{PASSWORD}@api.example\uff0fcom/",
        f"http://u:{PASSWORD}@h.example:99999/",
    ],
    # Not the URLs: they hold this run's random password, and xdist's workers must agree.
    ids=["db-unclosed-ipv6", "http-unclosed-ipv6", "fullwidth-slash", "port"],
)
def test_a_url_that_does_not_parse_is_refused_without_quoting_it(
    api: httpx2.Client, project: str, url: str
) -> None:
    refused = api.post(base(project), json={"name": "bad", "url": url})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "invalid_connection"
    assert PASSWORD not in refused.text
    made = api.post(base(project), json={"name": "good", "url": "https://h.example/"})
    assert made.status_code == 201
    changed = api.patch(f"{base(project)}/good", json={"url": "http://[::1"})
    assert changed.status_code == 422 and changed.json()["error"] == "invalid_connection"


def test_secret_query_values_are_masked_kept_and_never_invented(
    conn_server: Server, api: httpx2.Client, project: str
) -> None:
    made = api.post(
        base(project),
        json={"name": "q", "url": f"https://h.example/v1?api_key={TOKEN}&region=eu"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["url"] == "https://h.example/v1?api_key=***&region=eu"
    # *** keeps the stored value, as for a password; the rest changes as written.
    changed = api.patch(
        f"{base(project)}/q", json={"url": "https://h.example/v2?api_key=***&region=us"}
    )
    assert changed.status_code == 200, changed.text
    secret = stored(conn_server, made.json()["id"])["decrypted"]
    assert secret["url"] == f"https://h.example/v2?api_key={TOKEN}&region=us"
    # *** where nothing is stored is refused, on create and on change.
    invented = api.patch(
        f"{base(project)}/q", json={"url": "https://h.example/v2?api_key=***&token=***"}
    )
    assert invented.status_code == 422, invented.text
    fresh = api.post(base(project), json={"name": "r", "url": "https://h.example/?token=***"})
    assert fresh.status_code == 422, fresh.text


# --- no secret anywhere ---------------------------------------------------------------------


def test_no_secret_in_any_answer_the_audit_the_log_or_the_database_file(
    conn_server: Server, api: httpx2.Client, project: str
) -> None:
    # Last in the module: it looks through what every test above left behind.
    made = api.post(
        base(project),
        json={"name": "last", "url": pg_url(), "headers": {"X-Token": TOKEN}},
    )
    assert made.status_code == 201
    api.patch(f"{base(project)}/last", json={"url": f"postgresql://postgres:{MASK}@h/db"})
    assert_no_secret_anywhere(conn_server, api, ANSWERS, action="patch_connection")
