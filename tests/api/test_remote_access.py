"""Remote access as a caller meets it: keys, rotation, firewall rules, OAuth tokens, sessions."""

from __future__ import annotations

import base64
import datetime as dt
import sqlite3
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import jwt
import pytest

from conftest import ADMIN_PASSWORD, Server
from jobport.domain.access import key_string, new_secret, parse_key_string


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """This module's server trusts 127.0.0.1 as a proxy, so tests can pose as other addresses."""
    workdir = tmp_path_factory.mktemp("access")
    srv = Server(
        f"sqlite:///{workdir / 'jobport.db'}",
        workdir,
        trusted_proxies="127.0.0.1",
        auth_failures_per_client="1000/minute",
        auth_failures_per_address="1000/minute",
    ).start()
    yield srv
    srv.stop()


def as_key(server: Server, key: str, **headers: str) -> httpx2.Client:
    return server.client(anonymous=True, headers={"Authorization": f"Bearer {key}", **headers})


def new_key(api: httpx2.Client, role: str | None = "Administrator", **body: Any) -> dict[str, Any]:
    response = api.post("/api/v1/keys", json={"description": "test", **body})
    assert response.status_code == 201, response.text
    key = response.json()
    if role:
        member = {"type": "apiKey", "id": key["clientId"]}
        assert api.post(f"/api/v1/roles/{role}/members", json=member).is_success
    return key


def error(response: httpx2.Response) -> str:
    return str(response.json()["error"])


# --- keys -----------------------------------------------------------------------------------


def test_the_secret_is_shown_once_and_the_key_string_works(
    api: httpx2.Client, server: Server
) -> None:
    created = new_key(api)
    assert created["key"].startswith(f"jpk_{created['clientId']}_{created['clientSecret']}")
    shown = api.get(f"/api/v1/keys/{created['clientId']}").json()
    listed = api.get("/api/v1/keys").json()["items"]
    for later in [shown, *listed]:
        assert "clientSecret" not in later and "key" not in later
    assert created["clientSecret"] not in str(listed) + str(shown)
    with as_key(server, created["key"]) as client:
        assert client.get("/api/v1/me").json()["id"] == created["clientId"]


def test_expiry_defaults_to_90_days_and_null_means_never(api: httpx2.Client) -> None:
    default = new_key(api, role=None)
    expires = dt.datetime.fromisoformat(default["expiresAt"].replace("Z", "+00:00"))
    assert abs((expires - dt.datetime.now(dt.UTC)) - dt.timedelta(days=90)) < dt.timedelta(
        minutes=1
    )
    assert new_key(api, role=None, expiresAt=None)["expiresAt"] is None
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    flagged = new_key(api, role=None, expiresAt=soon)
    assert flagged["expiresSoon"] is True and default["expiresSoon"] is False
    past = api.post("/api/v1/keys", json={"expiresAt": "2020-01-01T00:00:00Z"})
    assert past.status_code == 422 and error(past) == "invalid_expiry"


def test_last_use_time_and_address_are_tracked(api: httpx2.Client, server: Server) -> None:
    key = new_key(api)
    assert key["lastUsedAt"] is None
    with as_key(server, key["key"], **{"X-Forwarded-For": "198.51.100.7"}) as client:
        assert client.get("/api/v1/me").status_code == 200
    seen = api.get(f"/api/v1/keys/{key['clientId']}").json()
    assert seen["lastUsedAt"] is not None and seen["lastUsedIp"] == "198.51.100.7"


def test_rotation_keeps_the_old_secret_until_the_chosen_time(
    api: httpx2.Client, server: Server
) -> None:
    key = new_key(api)
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat()
    rotated = api.post(
        f"/api/v1/keys/{key['clientId']}/rotate", json={"oldSecretValidUntil": until}
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["clientId"] == key["clientId"] and new["key"] != key["key"]
    with as_key(server, key["key"]) as old_client, as_key(server, new["key"]) as new_client:
        assert old_client.get("/api/v1/me").status_code == 200
        assert new_client.get("/api/v1/me").status_code == 200
        time.sleep(2.2)
        refused = old_client.get("/api/v1/me")
        assert refused.status_code == 401 and error(refused) == "invalid_credentials"
        assert new_client.get("/api/v1/me").status_code == 200


def test_rotation_overlap_defaults_to_a_day(api: httpx2.Client) -> None:
    key = new_key(api, role=None)
    rotated = api.post(f"/api/v1/keys/{key['clientId']}/rotate").json()
    until = dt.datetime.fromisoformat(rotated["previousSecretValidUntil"].replace("Z", "+00:00"))
    assert abs(until - dt.datetime.now(dt.UTC) - dt.timedelta(hours=24)) < dt.timedelta(minutes=1)


def test_a_deleted_key_is_a_tombstone(api: httpx2.Client, server: Server) -> None:
    key = new_key(api)
    assert api.delete(f"/api/v1/keys/{key['clientId']}").status_code == 204
    with as_key(server, key["key"]) as client:
        refused = client.get("/api/v1/me")
    assert refused.status_code == 401 and error(refused) == "key_revoked"
    assert api.get(f"/api/v1/keys/{key['clientId']}").status_code == 404
    assert key["clientId"] not in str(api.get("/api/v1/keys", params={"limit": 500}).json())
    member = {"type": "apiKey", "id": key["clientId"]}
    assert api.post("/api/v1/roles/Viewer/members", json=member).status_code == 404
    assert api.post(f"/api/v1/keys/{key['clientId']}/rotate").status_code == 404


def test_a_tombstoned_client_id_is_never_issued_again(server: Server) -> None:
    from jobport.errors import Conflict
    from jobport.services import access
    from jobport.services.runtime import Runtime
    from jobport.settings import Settings
    from jobport.store.db import Database

    db = Database(server.database_url, pool=False)
    rt = Runtime(Settings(database_url=server.database_url), db)
    try:
        row, _ = access.create_key(rt, description="to delete")
        access.delete_key(rt, row["client_id"])
        original = access.rules.new_client_id
        access.rules.new_client_id = lambda: row["client_id"]  # type: ignore[assignment]
        try:
            with pytest.raises(Conflict, match="already issued"):
                access.create_key(rt, description="reuse")
        finally:
            access.rules.new_client_id = original  # type: ignore[assignment]
    finally:
        db.dispose()


def test_a_disabled_key_is_revoked_until_enabled(api: httpx2.Client, server: Server) -> None:
    key = new_key(api)
    assert api.patch(f"/api/v1/keys/{key['clientId']}", json={"enabled": False}).is_success
    with as_key(server, key["key"]) as client:
        assert error(client.get("/api/v1/me")) == "key_revoked"
        assert api.patch(f"/api/v1/keys/{key['clientId']}", json={"enabled": True}).is_success
        assert client.get("/api/v1/me").status_code == 200


def test_a_mistyped_key_is_refused_without_knowing_why_beyond_the_checksum(
    api: httpx2.Client, server: Server
) -> None:
    key = new_key(api)["key"]
    typo = key[:-8] + ("x" if key[-8] != "x" else "y") + key[-7:]
    with as_key(server, typo) as client:
        refused = client.get("/api/v1/me")
    assert refused.status_code == 401 and error(refused) == "invalid_credentials"
    assert "checksum" in refused.json()["message"]


# --- firewall rules -------------------------------------------------------------------------


def rule(name: str, start: str, end: str | None = None) -> dict[str, Any]:
    return {"name": name, "startIp": start, "endIp": end or start, "enabled": True}


@pytest.mark.parametrize(
    ("rules", "address", "allowed"),
    [
        ([rule("v6", "2001:db8::1", "2001:db8::ff")], "2001:db8::42", True),
        ([rule("v6", "2001:db8::1", "2001:db8::ff")], "2001:db8::1:0", False),
        ([rule("v4", "10.1.2.0", "10.1.2.255")], "::ffff:10.1.2.3", True),
        ([rule("v4", "10.1.2.0", "10.1.2.255")], "10.1.3.1", False),
        ([], "2001:db8::99", True),
    ],
)
def test_firewall_rules_over_ipv4_ipv6_and_mapped_addresses(
    api: httpx2.Client, server: Server, rules: list[dict[str, Any]], address: str, allowed: bool
) -> None:
    key = new_key(api, firewallRules=rules)
    with as_key(server, key["key"], **{"X-Forwarded-For": address}) as client:
        response = client.get("/api/v1/me")
    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403 and error(response) == "ip_not_allowed"


def test_forwarded_for_counts_only_from_a_trusted_proxy(
    api: httpx2.Client, make_server: Any
) -> None:
    untrusted = make_server().start()  # no trusted proxies: the peer address counts
    try:
        with untrusted.client() as admin:
            key = new_key(admin, firewallRules=[rule("office", "203.0.113.10")])
            forged = {"X-Forwarded-For": "203.0.113.10"}
            with as_key(untrusted, key["key"], **forged) as client:
                response = client.get("/api/v1/me")
            assert response.status_code == 403 and error(response) == "ip_not_allowed"
            assert "127.0.0.1" in response.json()["message"]
    finally:
        untrusted.stop()


def test_an_edit_that_locks_out_the_caller_needs_force(api: httpx2.Client, server: Server) -> None:
    key = new_key(api)
    url = f"/api/v1/keys/{key['clientId']}"
    here = {"X-Forwarded-For": "192.0.2.10"}
    with as_key(server, key["key"], **here) as client:
        elsewhere = {"firewallRules": [rule("elsewhere", "192.0.2.99")]}
        refused = client.patch(url, json=elsewhere)
        assert refused.status_code == 409 and error(refused) == "would_lock_out"
        assert "192.0.2.10" in refused.json()["message"]
        assert api.get(url).json()["firewallRules"] == []
        assert error(client.patch(url, json={"enabled": False})) == "would_lock_out"
        # Including the caller's own address is fine.
        mine = {"firewallRules": [rule("here", "192.0.2.10"), rule("elsewhere", "192.0.2.99")]}
        assert client.patch(url, json=mine).status_code == 200
        forced = client.patch(url, json={**elsewhere, "force": True})
        assert forced.status_code == 200
        assert error(client.get("/api/v1/me")) == "ip_not_allowed"


def test_add_my_current_address(api: httpx2.Client, server: Server) -> None:
    key = new_key(api)
    with as_key(server, key["key"], **{"X-Forwarded-For": "2001:db8::77"}) as client:
        response = client.post(f"/api/v1/keys/{key['clientId']}/firewall-rules/current-address")
        assert response.status_code == 200, response.text
        rules = response.json()["firewallRules"]
        assert [(r["startIp"], r["endIp"]) for r in rules] == [("2001:db8::77", "2001:db8::77")]
        assert client.get("/api/v1/me").status_code == 200
    with as_key(server, key["key"], **{"X-Forwarded-For": "2001:db8::78"}) as client:
        assert error(client.get("/api/v1/me")) == "ip_not_allowed"


def test_bad_firewall_rules_are_refused_naming_the_field(api: httpx2.Client) -> None:
    response = api.post(
        "/api/v1/keys", json={"firewallRules": [rule("bad", "10.0.0.9", "10.0.0.1")]}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_firewall_rule"
    assert body["details"][0]["field"].startswith("firewallRules")
    assert "lower" in body["message"]


# --- OAuth2 client credentials --------------------------------------------------------------


def token(
    server: Server, *, basic: bool, scope: str | None = None, **creds: str
) -> httpx2.Response:
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    headers = {}
    if basic:
        raw = f"{creds['client_id']}:{creds['client_secret']}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
    else:
        form.update(creds)
    with server.client(anonymous=True) as client:
        return client.post("/connect/token", data=form, headers=headers)


@pytest.mark.parametrize("basic", [True, False], ids=["http-basic", "form"])
def test_a_token_from_client_credentials_authenticates(
    api: httpx2.Client, server: Server, basic: bool
) -> None:
    key = new_key(api, role="Operator")
    response = token(
        server, basic=basic, client_id=key["clientId"], client_secret=key["clientSecret"]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and 3500 <= body["expires_in"] <= 3600
    assert "jobs:execute" in body["scope"].split()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == key["clientId"] and {"exp", "iss", "aud"} <= set(claims)
    with as_key(server, body["access_token"]) as client:
        me = client.get("/api/v1/me").json()
        assert me["id"] == key["clientId"] and me["authenticatedBy"] == "token"


def test_the_alias_endpoint_and_the_oauth_error_shapes(api: httpx2.Client, server: Server) -> None:
    key = new_key(api)
    with server.client(anonymous=True) as client:
        ok = client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": key["clientId"],
                "client_secret": key["clientSecret"],
            },
        )
        assert ok.status_code == 200
        bad_grant = client.post("/connect/token", data={"grant_type": "password"})
        assert bad_grant.status_code == 400 and error(bad_grant) == "unsupported_grant_type"
        wrong = client.post(
            "/connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": key["clientId"],
                "client_secret": new_secret(),
            },
        )
    assert wrong.status_code == 401 and error(wrong) == "invalid_client"
    assert wrong.json()["message"] and wrong.headers["www-authenticate"].startswith("Basic")


def test_a_token_can_ask_for_fewer_scopes_never_more(api: httpx2.Client, server: Server) -> None:
    key = new_key(api, role="Operator")
    creds = {"client_id": key["clientId"], "client_secret": key["clientSecret"]}
    narrowed = token(server, basic=True, scope="jobs:read projects:read", **creds)
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "jobs:read projects:read"
    project = f"p-{uuid.uuid4().hex[:8]}"
    assert api.post("/api/v1/projects", json={"name": project}).status_code == 201
    job = {"name": "j", "steps": [{"name": "s", "kind": "command", "config": {"command": "true"}}]}
    assert api.post(f"/api/v1/projects/{project}/jobs", json=job).status_code == 201
    with as_key(server, narrowed.json()["access_token"]) as client:
        assert client.get(f"/api/v1/projects/{project}/jobs").status_code == 200
        refused = client.post(f"/api/v1/projects/{project}/jobs/j/execute")
        assert refused.status_code == 403 and error(refused) == "insufficient_scope"
        assert "jobs:execute" in refused.json()["message"]
    more = token(server, basic=True, scope="keys:write", **creds)
    assert more.status_code == 400 and error(more) == "invalid_scope"


@pytest.mark.parametrize("revocation", ["delete", "disable", "expire", "firewall"])
def test_revoking_the_key_stops_its_token_on_the_next_call(
    api: httpx2.Client, server: Server, revocation: str
) -> None:
    key = new_key(api)
    creds = {"client_id": key["clientId"], "client_secret": key["clientSecret"]}
    access_token = token(server, basic=False, **creds).json()["access_token"]
    url = f"/api/v1/keys/{key['clientId']}"
    with as_key(server, access_token) as client:
        assert client.get("/api/v1/me").status_code == 200
        if revocation == "delete":
            assert api.delete(url).status_code == 204
            expected = (401, "key_revoked")
        elif revocation == "disable":
            assert api.patch(url, json={"enabled": False}).status_code == 200
            expected = (401, "key_revoked")
        elif revocation == "expire":
            soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
            assert api.patch(url, json={"expiresAt": soon}).status_code == 200
            time.sleep(1.2)
            expected = (401, "key_expired")
        else:
            rules = {"firewallRules": [rule("elsewhere", "192.0.2.200")]}
            assert api.patch(url, json=rules).status_code == 200
            expected = (403, "ip_not_allowed")
        refused = client.get("/api/v1/me")
    assert (refused.status_code, error(refused)) == expected


def signing_key(server: Server) -> str:
    with sqlite3.connect(server.database_url.removeprefix("sqlite:///")) as db:
        row = db.execute("SELECT value FROM server_secrets WHERE name = 'token_signing_key'")
        return str(row.fetchone()[0])


@pytest.mark.parametrize("tamper", ["signature", "audience", "issuer", "expired", "garbage"])
def test_a_forged_or_stale_token_is_refused(
    api: httpx2.Client, server: Server, tamper: str
) -> None:
    key = new_key(api)
    now = int(time.time())
    claims = {"iss": "jobport", "aud": "jobport-api", "sub": key["clientId"], "exp": now + 600}
    real = signing_key(server)
    assert jwt.encode(claims, real, "HS256")  # the genuine article would pass (see below)
    forged = {
        "signature": jwt.encode(claims, "not the server key, though long enough", "HS256"),
        "audience": jwt.encode({**claims, "aud": "someone-else"}, real, "HS256"),
        "issuer": jwt.encode({**claims, "iss": "evil"}, real, "HS256"),
        "expired": jwt.encode({**claims, "exp": now - 10}, real, "HS256"),
        "garbage": "not-a-token",
    }[tamper]
    with as_key(server, forged) as client:
        refused = client.get("/api/v1/me")
    assert refused.status_code == 401 and error(refused) == "invalid_credentials"
    with as_key(server, jwt.encode(claims, real, "HS256")) as client:
        assert client.get("/api/v1/me").status_code == 200


# --- console sessions -----------------------------------------------------------------------


def test_login_session_cookie_csrf_and_logout(server: Server) -> None:
    with server.client(anonymous=True) as browser:
        login = browser.post(
            "/api/v1/session", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 201, login.text
        csrf = login.json()["csrfToken"]
        assert "httponly" in login.headers["set-cookie"].lower()
        me = browser.get("/api/v1/me").json()
        assert me["type"] == "user" and me["name"] == "admin"
        assert me["scopes"] == {"application": ["*"]}
        name = f"p-{uuid.uuid4().hex[:8]}"
        no_csrf = browser.post("/api/v1/projects", json={"name": name})
        assert no_csrf.status_code == 403 and error(no_csrf) == "csrf_failed"
        ok = browser.post("/api/v1/projects", json={"name": name}, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 201
        assert browser.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
        after = browser.get("/api/v1/me")
        assert after.status_code == 401


def test_a_wrong_password_is_a_401_and_is_audited(server: Server, api: httpx2.Client) -> None:
    with server.client(anonymous=True) as browser:
        wrong = browser.post("/api/v1/session", json={"username": "admin", "password": "nope-nope"})
        unknown = browser.post("/api/v1/session", json={"username": "ghost", "password": "x" * 9})
    assert wrong.status_code == 401 and error(wrong) == "invalid_credentials"
    assert unknown.status_code == 401 and error(unknown) == "invalid_credentials"
    entries = api.get("/api/v1/audit", params={"action": "login", "outcome": "denied"}).json()
    assert {"user:admin", "user:ghost"} <= {e["principal"] for e in entries["items"]}


# --- roles, members, audit ------------------------------------------------------------------


def test_a_key_without_membership_can_do_nothing(api: httpx2.Client, server: Server) -> None:
    key = new_key(api, role=None)
    with as_key(server, key["key"]) as client:
        for path in ["/api/v1/projects", "/api/v1/keys", "/api/v1/roles", "/api/v1/audit"]:
            refused = client.get(path)
            assert refused.status_code == 403 and error(refused) == "insufficient_scope", path
        assert client.get("/api/v1/me").json()["roles"] == []


def test_custom_and_project_roles_grant_exactly_their_scopes(
    api: httpx2.Client, server: Server
) -> None:
    mine, other = (f"p-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for name in (mine, other):
        assert api.post("/api/v1/projects", json={"name": name}).status_code == 201
    role = {"name": "Job reader", "description": "reads jobs", "scopes": ["jobs:read"]}
    created = api.post(f"/api/v1/projects/{mine}/roles", json=role)
    assert created.status_code == 201 and created.json()["level"] == "project"
    key = new_key(api, role=None)
    member = {"type": "apiKey", "id": key["clientId"]}
    added = api.post(f"/api/v1/projects/{mine}/roles/Job reader/members", json=member)
    assert added.status_code == 201
    assert (
        api.post(f"/api/v1/projects/{mine}/roles/Job reader/members", json=member).status_code
        == 200
    )
    with as_key(server, key["key"]) as client:
        assert client.get(f"/api/v1/projects/{mine}/jobs").status_code == 200
        assert error(client.get(f"/api/v1/projects/{other}/jobs")) == "project_forbidden"
        assert error(client.get(f"/api/v1/projects/{mine}/executions")) == "insufficient_scope"
        assert client.get("/api/v1/me").json()["scopes"] == {mine: ["jobs:read"]}
    assert (
        api.delete(
            f"/api/v1/projects/{mine}/roles/Job reader/members/apiKey/{key['clientId']}"
        ).status_code
        == 204
    )
    with as_key(server, key["key"]) as client:
        assert error(client.get(f"/api/v1/projects/{mine}/jobs")) == "insufficient_scope"


def test_built_in_roles_cannot_be_changed_and_bad_roles_are_refused(api: httpx2.Client) -> None:
    assert error(api.delete("/api/v1/roles/Administrator")) == "builtin_role"
    assert error(api.patch("/api/v1/roles/Viewer", json={"scopes": ["*"]})) == "builtin_role"
    bad = api.post("/api/v1/roles", json={"name": "x", "scopes": ["jobs:fly"]})
    assert bad.status_code == 422 and bad.json()["details"][0]["field"].startswith("scopes")
    taken = api.post("/api/v1/roles", json={"name": "Operator", "scopes": []})
    assert taken.status_code == 409
    unknown = api.post("/api/v1/roles/Viewer/members", json={"type": "robot", "id": "r2"})
    assert unknown.status_code == 422
    names = [r["name"] for r in api.get("/api/v1/roles").json()["items"]]
    assert {"Administrator", "Operator", "Viewer"} <= set(names)


def test_the_audit_log_records_writes_with_principal_address_and_outcome(
    api: httpx2.Client, server: Server
) -> None:
    key = new_key(api)
    project = f"p-{uuid.uuid4().hex[:8]}"
    with as_key(server, key["key"], **{"X-Forwarded-For": "198.51.100.44"}) as client:
        assert client.post("/api/v1/projects", json={"name": project}).status_code == 201
    with as_key(server, key_string(key["clientId"], new_secret())) as client:
        assert client.get("/api/v1/projects").status_code == 401
    principal = f"apiKey:{key['clientId']}"
    entries = api.get("/api/v1/audit", params={"principal": principal}).json()["items"]
    actions = [(e["action"], e["outcome"], e["address"]) for e in entries]
    assert ("create_project", "ok", "198.51.100.44") in actions
    assert ("list_projects", "denied", "127.0.0.1") in actions
    created = next(e for e in entries if e["action"] == "create_project")
    assert created["target"] == "POST /api/v1/projects" and created["status"] == 201
    page = api.get("/api/v1/audit", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["nextCursor"]
    second = api.get("/api/v1/audit", params={"limit": 1, "cursor": page["nextCursor"]}).json()
    assert second["items"][0]["id"] != page["items"][0]["id"]


def test_failed_attempts_are_rate_limited_with_retry_after(make_server: Any) -> None:
    server = make_server(auth_failures_per_client="3/minute", auth_failures_per_address="50/minute")
    server.start()
    client_id, _ = parse_key_string(server.key or "")
    wrong = key_string(client_id, new_secret())
    with as_key(server, wrong) as client:
        codes = [client.get("/api/v1/me").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        limited = client.get("/api/v1/me")
    assert error(limited) == "rate_limited" and int(limited.headers["retry-after"]) >= 1
    # Someone hammering a (public) client id does not lock out the holder of the secret.
    with server.client() as admin:
        assert admin.get("/api/v1/me").status_code == 200
    # Past the address limit, every attempt from that address waits.
    for _ in range(60):
        with as_key(server, "jpk_garbage") as client:
            last = client.get("/api/v1/me")
    assert last.status_code == 429
    with server.client() as admin:
        assert admin.get("/api/v1/me").status_code == 429


def test_a_change_made_by_another_process_counts_within_the_cache_time(
    api: httpx2.Client, server: Server
) -> None:
    """Another node (here: this test process, on the database) deletes a key the server has
    just used: the server refuses it within auth_cache_seconds (1 s by default)."""
    from jobport.services import access
    from jobport.services.runtime import Runtime
    from jobport.settings import Settings
    from jobport.store.db import Database

    key = new_key(api)
    with as_key(server, key["key"]) as client:
        assert client.get("/api/v1/me").status_code == 200
        db = Database(server.database_url, pool=False)
        try:
            access.delete_key(
                Runtime(Settings(database_url=server.database_url), db), key["clientId"]
            )
        finally:
            db.dispose()
        deleted_at = time.monotonic()
        while client.get("/api/v1/me").status_code == 200:
            assert time.monotonic() - deleted_at < 1.5, "a deleted key kept working"
            time.sleep(0.05)
        assert error(client.get("/api/v1/me")) == "key_revoked"
