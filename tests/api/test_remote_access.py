"""Remote access as a caller meets it: keys, rotation, firewall rules, OAuth tokens, sessions."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import jwt
import pytest

from conftest import ADMIN_PASSWORD, Server
from jobport.domain.access import key_string, new_client_id, new_secret, parse_key_string


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
        access.delete_key(rt, row.client_id)
        original = access.rules.new_client_id
        access.rules.new_client_id = lambda: row.client_id  # type: ignore[assignment]
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
        # A token is not the secret: its bearer hears only that it is not valid; the holder
        # of the secret hears why at the token endpoint.
        if revocation == "delete":
            assert api.delete(url).status_code == 204
            expected, why = (401, "invalid_credentials"), "key_revoked"
        elif revocation == "disable":
            assert api.patch(url, json={"enabled": False}).status_code == 200
            expected, why = (401, "invalid_credentials"), "key_revoked"
        elif revocation == "expire":
            soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
            assert api.patch(url, json={"expiresAt": soon}).status_code == 200
            time.sleep(1.2)
            expected, why = (401, "invalid_credentials"), "key_expired"
        else:
            rules = {"firewallRules": [rule("elsewhere", "192.0.2.200")]}
            assert api.patch(url, json=rules).status_code == 200
            expected, why = (403, "ip_not_allowed"), "ip_not_allowed"
        refused = client.get("/api/v1/me")
    assert (refused.status_code, error(refused)) == expected
    if expected[0] == 401:
        assert refused.json()["message"] == "the access token is not valid"
    again = token(server, basic=True, **creds)
    assert again.json().get("reason", error(again)) == why


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


# --- failed attempts ------------------------------------------------------------------------


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def test_a_flood_from_one_address_never_locks_out_valid_credentials(make_server: Any) -> None:
    """Behind one address (a proxy), a bad script passes the client and the address limits:
    its attempts get 401 then 429, while a valid key and token from there are served."""
    server = make_server(auth_failures_per_client="3/minute", auth_failures_per_address="6/minute")
    server.start()
    admin_key = server.key or ""
    client_id, secret = parse_key_string(admin_key)
    creds = {"client_id": client_id, "client_secret": secret}
    granted = token(server, basic=True, **creds)
    assert granted.status_code == 200, granted.text
    access_token = granted.json()["access_token"]
    flood = [
        *(key_string(client_id, new_secret()) for _ in range(4)),  # the admin's own client id
        key_string(new_client_id(), new_secret()),
        "jpk_garbage",
        "not-a-token",
        key_string(new_client_id(), new_secret()),
    ]
    codes = []
    with server.client(anonymous=True) as anonymous:
        for bad in flood:
            refused = anonymous.get("/api/v1/me", headers=bearer(bad))
            codes.append(refused.status_code)
            if refused.status_code == 429:
                assert error(refused) == "rate_limited" and int(refused.headers["retry-after"]) >= 1
            else:
                assert error(refused) == "invalid_credentials", refused.text
            for good in (admin_key, access_token):
                assert anonymous.get("/api/v1/me", headers=bearer(good)).status_code == 200
            assert token(server, basic=False, **creds).status_code == 200
    # The 4th is past the client id's limit (3); the 7th past the address's (6).
    assert codes == [401, 401, 401, 429, 401, 401, 429, 429]
    refused = token(server, basic=False, client_id=new_client_id(), client_secret=new_secret())
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_a_valid_key_is_served_while_its_client_id_is_flooded(make_server: Any) -> None:
    """Wrong secrets for one (public) client id from many addresses: they get 429 past the
    client limit, everywhere and at every entry point; the key itself keeps working."""
    server = make_server(
        trusted_proxies="127.0.0.1",
        auth_failures_per_client="3/minute",
        auth_failures_per_address="1000/minute",
    ).start()
    client_id, secret = parse_key_string(server.key or "")
    codes = []
    with server.client(anonymous=True) as anonymous:
        for i in range(6):
            address = {"X-Forwarded-For": f"203.0.113.{i + 1}"}
            wrong = bearer(key_string(client_id, new_secret()))
            codes.append(anonymous.get("/api/v1/me", headers={**wrong, **address}).status_code)
            served = anonymous.get("/api/v1/me", headers={**bearer(server.key or ""), **address})
            assert served.status_code == 200, served.text
    assert codes == [401, 401, 401, 429, 429, 429]
    limited = token(server, basic=True, client_id=client_id, client_secret=new_secret())
    assert limited.status_code == 429 and client_id in limited.json()["message"]
    assert token(server, basic=True, client_id=client_id, client_secret=secret).status_code == 200


def test_deleted_disabled_expired_and_unknown_keys_answer_a_wrong_secret_alike(
    make_server: Any,
) -> None:
    """A wrong secret gets the same bytes whatever became of the key (or if there never was
    one), at the API and at the token endpoint, and counts the same; only the holder of the
    secret hears that the key was revoked or has expired."""
    server = make_server(
        auth_failures_per_client="2/minute", auth_failures_per_address="1000/minute"
    )
    server.start()
    with server.client() as admin:
        expired = new_key(admin)
        soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
        url = f"/api/v1/keys/{expired['clientId']}"
        assert admin.patch(url, json={"expiresAt": soon}).status_code == 200
        deleted, disabled, live = new_key(admin), new_key(admin), new_key(admin)
        assert admin.delete(f"/api/v1/keys/{deleted['clientId']}").status_code == 204
        url = f"/api/v1/keys/{disabled['clientId']}"
        assert admin.patch(url, json={"enabled": False}).status_code == 200
    time.sleep(1.1)
    keys = {"deleted": deleted, "disabled": disabled, "expired": expired, "live": live}
    ids = {kind: key["clientId"] for kind, key in keys.items()} | {"unknown": new_client_id()}
    at_api, at_token = {}, {}
    with server.client(anonymous=True) as anonymous:
        for kind, client_id in ids.items():
            wrong = bearer(key_string(client_id, new_secret()))
            form = {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": new_secret(),
            }
            first = anonymous.get("/api/v1/me", headers=wrong)
            second = anonymous.post("/connect/token", data=form)
            third = anonymous.post("/connect/token", data=form)
            fourth = anonymous.get("/api/v1/me", headers=wrong)
            at_api[kind] = (first.status_code, first.content, first.headers["www-authenticate"])
            at_token[kind] = (
                second.status_code,
                second.content,
                second.headers["www-authenticate"],
            )
            # Two failures for this client id (the limit) across both entry points: then 429.
            assert (third.status_code, fourth.status_code) == (429, 429), kind
            assert error(third) == error(fourth) == "rate_limited"
    assert len(set(at_api.values())) == 1, at_api
    assert len(set(at_token.values())) == 1, at_token
    assert at_api["deleted"][0] == 401 and json.loads(at_api["deleted"][1]) == {
        "error": "invalid_credentials",
        "message": "the credentials are not valid",
        "details": None,
    }
    assert at_token["deleted"][0] == 401
    assert json.loads(at_token["deleted"][1])["reason"] == "invalid_credentials"
    # The secret (past the limit, too) tells what became of the key.
    for kind, why in [
        ("deleted", "key_revoked"),
        ("disabled", "key_revoked"),
        ("expired", "key_expired"),
    ]:
        key = keys[kind]
        with as_key(server, key["key"]) as client:
            refused = client.get("/api/v1/me")
        assert (refused.status_code, error(refused)) == (401, why), kind
        creds = {"client_id": key["clientId"], "client_secret": key["clientSecret"]}
        answered = token(server, basic=True, **creds)
        assert (answered.status_code, answered.json()["reason"]) == (401, why), kind
    with as_key(server, live["key"]) as client:
        assert client.get("/api/v1/me").status_code == 200


def test_a_token_of_a_deleted_or_disabled_key_is_refused_like_a_forged_one_and_counts(
    make_server: Any,
) -> None:
    server = make_server(
        auth_failures_per_client="2/minute", auth_failures_per_address="1000/minute"
    )
    server.start()
    with server.client() as admin:
        deleted, disabled = new_key(admin), new_key(admin)
        tokens = {}
        for key in (deleted, disabled):
            creds = {"client_id": key["clientId"], "client_secret": key["clientSecret"]}
            tokens[key["clientId"]] = token(server, basic=True, **creds).json()["access_token"]
        assert admin.delete(f"/api/v1/keys/{deleted['clientId']}").status_code == 204
        url = f"/api/v1/keys/{disabled['clientId']}"
        assert admin.patch(url, json={"enabled": False}).status_code == 200
    with server.client(anonymous=True) as anonymous:
        forged = anonymous.get("/api/v1/me", headers=bearer("not-a-token"))
        assert forged.status_code == 401
        for key in (deleted, disabled):
            answers = [
                anonymous.get("/api/v1/me", headers=bearer(tokens[key["clientId"]]))
                for _ in range(3)
            ]
            assert [a.status_code for a in answers] == [401, 401, 429]
            assert answers[0].content == answers[1].content == forged.content
            challenge = forged.headers["www-authenticate"]
            assert answers[0].headers["www-authenticate"] == challenge


def test_password_guessing_is_stopped_per_username_and_address_without_locking_users_out(
    make_server: Any,
) -> None:
    """The login rule: failures per (address, username) refuse that pair before the password
    is checked, the right one included; failures per address only turn failing logins into
    429s. So neither a flood from an address nor guessing elsewhere locks the user out."""
    server = make_server(
        trusted_proxies="127.0.0.1",
        auth_failures_per_client="3/minute",
        auth_failures_per_address="5/minute",
    ).start()

    def login(password: str, address: str, username: str = "admin") -> httpx2.Response:
        headers = {"X-Forwarded-For": address}
        with server.client(anonymous=True, headers=headers) as browser:
            body = {"username": username, "password": password}
            return browser.post("/api/v1/session", json=body)

    proxy, guesser, elsewhere = "198.51.100.1", "198.51.100.2", "198.51.100.3"
    flood = [login("x" * 9, proxy, username=f"ghost{i}").status_code for i in range(7)]
    assert flood == [401] * 5 + [429] * 2
    assert login(ADMIN_PASSWORD, proxy).status_code == 201  # the flood did not lock admin out

    guesses = [login(f"guess-{i}-{uuid.uuid4().hex}", guesser).status_code for i in range(4)]
    assert guesses == [401, 401, 401, 429]
    stopped = login(ADMIN_PASSWORD, guesser)  # the right password, after too many guesses
    assert stopped.status_code == 429 and error(stopped) == "rate_limited"
    assert int(stopped.headers["retry-after"]) >= 1
    for address in (proxy, elsewhere):
        assert login(ADMIN_PASSWORD, address).status_code == 201
