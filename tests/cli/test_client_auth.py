"""The SDK's credentials (key, client credentials, token, env, profile) and access methods."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx2
import pytest

from conftest import Server
from jobport.client import (
    AsyncClient,
    Client,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unauthorized,
    ValidationFailed,
    load_profile,
    profile_path,
    save_profile,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Refused credentials are part of these tests: lift the failed-attempt limits."""
    workdir = tmp_path_factory.mktemp("sdk-auth")
    srv = Server(
        f"sqlite:///{workdir / 'jobport.db'}",
        workdir,
        auth_failures_per_client="1000/minute",
        auth_failures_per_address="1000/minute",
    ).start()
    yield srv
    srv.stop()


@pytest.fixture
def admin(server: Server) -> Iterator[Client]:
    with Client(server.url, key=server.key) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_key(
    admin: Client, role: str | None = "Viewer", project: str | None = None
) -> dict[str, Any]:
    key = admin.create_key("sdk test", expires_at=None)
    if role:
        admin.add_role_member(role, "apiKey", key["clientId"], project)
    return key


class Recording(httpx2.HTTPTransport):
    """A real transport that remembers the path of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


# --- API keys ---------------------------------------------------------------------------------


def test_an_api_key_authenticates_every_call(admin: Client, server: Server) -> None:
    me = admin.me()
    assert me["type"] == "apiKey" and me["authenticatedBy"] == "key"
    assert me["roles"] == [{"role": "Administrator", "project": None}]
    assert server.key is not None and me["id"] in server.key


def test_no_or_a_bad_credential_is_unauthenticated(server: Server) -> None:
    with Client(server.url) as anonymous, pytest.raises(Unauthenticated) as missing:
        anonymous.list_projects()
    assert (missing.value.status, missing.value.code) == (401, "missing_credentials")
    assert Unauthorized is Unauthenticated  # the old name still catches it

    assert server.key is not None
    wrong = server.key[:-10] + "0000000000"
    with Client(server.url, key=wrong) as bad, pytest.raises(Unauthenticated) as refused:
        bad.list_projects()
    assert refused.value.code == "invalid_credentials"


def test_the_key_comes_from_jobport_key_when_none_is_given(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert server.key is not None
    monkeypatch.setenv("JOBPORT_KEY", server.key)
    with Client(server.url) as jp:
        assert jp.me()["authenticatedBy"] == "key"


def test_a_key_without_the_scope_is_forbidden(admin: Client, server: Server) -> None:
    viewer = new_key(admin, "Viewer")
    with Client(server.url, key=viewer["key"]) as jp:
        assert isinstance(jp.list_projects(), list)
        with pytest.raises(Forbidden) as denied:
            jp.create_project(unique("nope"))
    assert denied.value.status == 403 and denied.value.code == "insufficient_scope"
    assert "projects:write" in denied.value.message


# --- OAuth2 client credentials -----------------------------------------------------------------


def test_client_credentials_fetch_one_token_and_reuse_it(admin: Client, server: Server) -> None:
    key = new_key(admin, "Viewer")
    transport = Recording()
    with Client(
        server.url,
        client_id=key["clientId"],
        client_secret=key["clientSecret"],
        transport=transport,
    ) as jp:
        me = jp.me()
        jp.list_projects()
        jp.me()
    assert me["type"] == "apiKey" and me["authenticatedBy"] == "token"
    assert me["id"] == key["clientId"]
    assert transport.paths.count("/connect/token") == 1
    assert len(transport.paths) == 4


def test_client_credentials_can_ask_for_fewer_scopes(admin: Client, server: Server) -> None:
    key = new_key(admin, "Administrator")
    with Client(
        server.url, client_id=key["clientId"], client_secret=key["clientSecret"], scope="jobs:read"
    ) as jp:
        assert jp.me()["tokenScopes"] == ["jobs:read"]
        with pytest.raises(Forbidden) as narrowed:
            jp.list_keys()
    assert narrowed.value.code == "insufficient_scope"


def test_token_gets_an_access_token_that_works_as_a_credential(
    admin: Client, server: Server
) -> None:
    key = new_key(admin, "Viewer")
    granted = admin.token(key["clientId"], key["clientSecret"])
    assert granted["token_type"] == "Bearer" and granted["expires_in"] > 0
    with Client(server.url, token=granted["access_token"]) as jp:
        assert jp.me()["id"] == key["clientId"]

    with pytest.raises(Unauthenticated) as refused:
        admin.token(key["clientId"], "x" * 40)
    assert refused.value.code == "invalid_credentials"  # the token endpoint's reason

    admin.delete_key(key["clientId"])
    with pytest.raises(Unauthenticated) as revoked:
        admin.token(key["clientId"], key["clientSecret"])
    assert revoked.value.code == "key_revoked"


def test_client_credentials_hear_why_once_their_key_is_disabled(
    admin: Client, server: Server
) -> None:
    """The API refuses a disabled key's token without saying why (a token is not the
    secret); the SDK's retry goes to the token endpoint with the secret, which says why."""
    key = new_key(admin, "Viewer")
    transport = Recording()
    creds = {"client_id": key["clientId"], "client_secret": key["clientSecret"]}
    with Client(server.url, transport=transport, **creds) as jp:
        assert jp.me()["id"] == key["clientId"]
        admin.update_key(key["clientId"], enabled=False)
        with pytest.raises(Unauthenticated) as refused:
            jp.me()
    assert refused.value.code == "key_revoked" and "disabled" in refused.value.message
    assert transport.paths[-2:] == ["/api/v1/me", "/connect/token"]


def test_a_401_fetches_a_new_token_once_and_retries(make_server: Any) -> None:
    """The server's token key changes (a restart with another one): old tokens stop working."""
    srv = make_server(token_secret="first signing key, long enough for HS256", workers=1)
    srv.start()
    with Client(srv.url, key=srv.key) as admin:
        key = new_key(admin, "Viewer")
    transport = Recording()
    jp = Client(
        srv.url, client_id=key["clientId"], client_secret=key["clientSecret"], transport=transport
    )
    with jp:
        jp.list_projects()
        srv.stop()
        srv.env["JOBPORT_TOKEN_SECRET"] = "second signing key, long enough for HS256"
        srv.start()
        assert jp.me()["id"] == key["clientId"]
        assert jp.me()["id"] == key["clientId"]
    assert transport.paths == [
        "/connect/token",
        "/api/v1/projects",
        "/api/v1/me",  # 401: the token was signed with the old key
        "/connect/token",
        "/api/v1/me",
        "/api/v1/me",
    ]


def fake_server(tokens: list[str], refuse: set[str], expires_in: int = 3600) -> Any:
    """A token endpoint handing out `tokens` in turn, and an API refusing tokens in `refuse`."""
    seen: list[tuple[str, str]] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/connect/token":
            form = parse_qs(request.content.decode())
            seen.append(("token", form["client_id"][0]))
            return httpx2.Response(
                200, json={"access_token": tokens.pop(0), "expires_in": expires_in}
            )
        token = request.headers["authorization"].removeprefix("Bearer ")
        seen.append(("api", token))
        if token in refuse:
            body = {"error": "invalid_credentials", "message": "no", "details": None}
            return httpx2.Response(401, json=body)
        return httpx2.Response(200, json={"items": [], "nextCursor": None})

    return handle, seen


def test_a_token_is_replaced_shortly_before_it_expires() -> None:
    handle, seen = fake_server(["t1", "t2"], refuse=set(), expires_in=1)
    transport = httpx2.MockTransport(handle)
    with Client("http://jobport.test", client_id="c", client_secret="s", transport=transport) as jp:
        jp.list_projects()
        jp.list_projects()
        time.sleep(1.0)  # a tenth of its life before the end, the token is not used again
        jp.list_projects()
    assert seen == [("token", "c"), ("api", "t1"), ("api", "t1"), ("token", "c"), ("api", "t2")]


def test_a_refused_token_is_replaced_once_and_the_call_retried() -> None:
    refuse: set[str] = set()
    handle, seen = fake_server(["t1", "t2"], refuse)
    transport = httpx2.MockTransport(handle)
    with Client("http://jobport.test", client_id="c", client_secret="s", transport=transport) as jp:
        jp.list_projects()
        refuse.add("t1")  # the server stops accepting it before it expires
        jp.list_projects()
        jp.list_projects()
    assert seen == [
        ("token", "c"),
        ("api", "t1"),
        ("api", "t1"),  # 401
        ("token", "c"),
        ("api", "t2"),
        ("api", "t2"),
    ]


def test_a_refused_token_fetched_for_that_very_call_is_not_retried() -> None:
    handle, seen = fake_server(["t1", "t2"], refuse={"t1", "t2"})
    transport = httpx2.MockTransport(handle)
    with (
        Client("http://jobport.test", client_id="c", client_secret="s", transport=transport) as jp,
        pytest.raises(Unauthenticated),
    ):
        jp.list_projects()
    assert seen == [("token", "c"), ("api", "t1")]


def test_the_async_client_fetches_and_reuses_tokens_too() -> None:
    handle, seen = fake_server(["t1", "t2"], refuse=set())

    async def scenario() -> None:
        async with AsyncClient(
            "http://jobport.test",
            client_id="c",
            client_secret="s",
            transport=httpx2.MockTransport(handle),
        ) as jp:
            await jp.list_projects()
            await jp.list_projects()

    asyncio.run(scenario())
    assert seen == [("token", "c"), ("api", "t1"), ("api", "t1")]


def test_a_rate_limited_token_request_carries_retry_after() -> None:
    def handle(request: httpx2.Request) -> httpx2.Response:
        body = {"error": "rate_limited", "error_description": "slow", "message": "slow down"}
        return httpx2.Response(429, headers={"Retry-After": "12"}, json=body)

    transport = httpx2.MockTransport(handle)
    with (
        Client("http://jobport.test", client_id="c", client_secret="s", transport=transport) as jp,
        pytest.raises(RateLimited) as limited,
    ):
        jp.list_projects()
    assert limited.value.retry_after == 12.0 and limited.value.code == "rate_limited"


# --- where credentials come from ---------------------------------------------------------------


def recorder() -> tuple[httpx2.MockTransport, list[httpx2.Request]]:
    requests: list[httpx2.Request] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        if request.url.path == "/connect/token":
            return httpx2.Response(200, json={"access_token": "tok", "expires_in": 3600})
        return httpx2.Response(200, json={"items": [], "nextCursor": None})

    return httpx2.MockTransport(handle), requests


def test_the_login_profile_is_used_for_its_own_server_only(
    no_ambient_credentials: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBPORT_URL", raising=False)
    path = save_profile("jobs.example:8080/", "cid", "sec")
    assert path == profile_path() and path.parent == no_ambient_credentials
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_profile() == {
        "url": "http://jobs.example:8080",
        "client_id": "cid",
        "client_secret": "sec",
    }

    transport, requests = recorder()
    with Client(transport=transport) as jp:  # no URL: the profile's
        assert jp.url == "http://jobs.example:8080"
        jp.list_projects()
    token_form = parse_qs(requests[0].content.decode())
    assert requests[0].url.path == "/connect/token" and token_form["client_id"] == ["cid"]
    assert requests[1].headers["authorization"] == "Bearer tok"

    transport, requests = recorder()
    with Client("http://elsewhere:8080", transport=transport) as jp:
        jp.list_projects()
    assert [r.url.path for r in requests] == ["/api/v1/projects"]
    assert "authorization" not in requests[0].headers  # the secret stays with its server


def test_environment_credentials_win_over_the_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    save_profile("http://jobs.example", "cid", "sec")
    monkeypatch.setenv("JOBPORT_KEY", "jpk_from_the_environment")
    transport, requests = recorder()
    with Client("http://jobs.example", transport=transport) as jp:
        jp.list_projects()
    assert requests[0].headers["authorization"] == "Bearer jpk_from_the_environment"

    monkeypatch.delenv("JOBPORT_KEY")
    monkeypatch.setenv("JOBPORT_CLIENT_ID", "env-id")
    with pytest.raises(ValueError, match="both a client id and a client secret"):
        Client("http://jobs.example")
    with pytest.raises(ValueError, match="one credential"):
        Client("http://jobs.example", key="k", token="t")


# --- keys, roles, audit --------------------------------------------------------------------------


def test_key_lifecycle_rotate_with_overlap_then_delete(admin: Client, server: Server) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    key = admin.create_key("lifecycle", expires_at=soon)
    assert key["expiresAt"].startswith(soon.strftime("%Y-%m-%d"))
    assert admin.create_key("never", expires_at=None)["expiresAt"] is None
    default = admin.create_key("default")["expiresAt"]
    assert dt.datetime.fromisoformat(default) > soon  # the server's default: 90 days

    client_id = key["clientId"]
    admin.add_role_member("Viewer", "apiKey", client_id)
    assert admin.update_key(client_id, description="renamed")["description"] == "renamed"
    assert client_id in [k["clientId"] for k in admin.list_keys()]

    rotated = admin.rotate_key(client_id)
    assert rotated["key"] != key["key"] and rotated["previousSecretValidUntil"]
    for secret in (key["key"], rotated["key"]):  # both work during the overlap
        with Client(server.url, key=secret) as jp:
            assert jp.me()["id"] == client_id
    with pytest.raises(ValidationFailed) as past:
        admin.rotate_key(client_id, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert past.value.code == "invalid_rotation"

    admin.delete_key(client_id)
    with Client(server.url, key=rotated["key"]) as jp, pytest.raises(Unauthenticated) as gone:
        jp.me()
    assert gone.value.code == "key_revoked"
    with pytest.raises(NotFound):
        admin.get_key(client_id)


def test_update_key_refuses_to_lock_out_its_caller_unless_forced(
    admin: Client, server: Server
) -> None:
    key = new_key(admin, "Administrator")
    elsewhere = [{"name": "elsewhere", "startIp": "10.9.9.9", "endIp": "10.9.9.9"}]
    with Client(server.url, key=key["key"]) as jp:
        with pytest.raises(Conflict) as locked:
            jp.update_key(key["clientId"], firewall_rules=elsewhere)
        assert locked.value.code == "would_lock_out"
        jp.update_key(key["clientId"], firewall_rules=elsewhere, force=True)
        with pytest.raises(Forbidden) as outside:
            jp.me()
    assert outside.value.code == "ip_not_allowed"
    with pytest.raises(TypeError, match="cannot change"):
        admin.update_key(key["clientId"], colour="red")


def test_add_current_address_allows_the_callers_address(admin: Client) -> None:
    key = new_key(admin, None)
    rules = admin.add_current_address(key["clientId"], name="laptop")["firewallRules"]
    assert rules == [
        {"name": "laptop", "startIp": "127.0.0.1", "endIp": "127.0.0.1", "enabled": True}
    ]


def test_project_roles_give_rights_in_that_project_only(admin: Client, server: Server) -> None:
    mine, other = unique("mine"), unique("other")
    admin.create_project(mine)
    admin.create_project(other)
    role = admin.create_role("readers", ["jobs:read", "projects:read"], "read jobs", project=mine)
    assert role["level"] == "project" and role["scopes"] == ["jobs:read", "projects:read"]
    key = new_key(admin, None)
    admin.add_role_member("readers", "apiKey", key["clientId"], project=mine)
    assert key["clientId"] in [m["id"] for m in admin.get_role("readers", project=mine)["members"]]

    with Client(server.url, key=key["key"]) as jp:
        assert jp.list_jobs(mine) == []
        with pytest.raises(Forbidden) as elsewhere:
            jp.list_jobs(other)
        assert elsewhere.value.code == "project_forbidden"

        admin.remove_role_member("readers", "apiKey", key["clientId"], project=mine)
        with pytest.raises(Forbidden):
            jp.list_jobs(mine)

    renamed = admin.update_role("readers", project=mine, name="lookers", scopes=["jobs:*"])
    assert renamed["name"] == "lookers" and renamed["scopes"] == ["jobs:*"]
    assert "lookers" in [r["name"] for r in admin.list_roles(mine)]
    assert "lookers" not in [r["name"] for r in admin.list_roles()]
    admin.delete_role("lookers", project=mine)
    with pytest.raises(NotFound):
        admin.get_role("lookers", project=mine)


def test_audit_pages_through_who_did_what(admin: Client) -> None:
    key = admin.create_key("audited", expires_at=None)
    admin.delete_key(key["clientId"])
    me = admin.me()
    first = admin.audit(principal=f"apiKey:{me['id']}", action="delete_key", limit=1)
    entry = first["items"][0]
    assert entry["outcome"] == "ok" and entry["status"] == 204
    assert entry["target"] == f"DELETE /api/v1/keys/{key['clientId']}"
    everything = admin.audit(limit=2)
    assert len(everything["items"]) == 2 and everything["nextCursor"]
    following = admin.audit(limit=2, cursor=everything["nextCursor"])
    assert {e["id"] for e in following["items"]}.isdisjoint(e["id"] for e in everything["items"])
