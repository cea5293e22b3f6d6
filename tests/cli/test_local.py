"""--local is the SDK over the real API in this process; one error tree; the CLI's layering."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from conftest import ADMIN_PASSWORD, ROOT
from jobport import boot, errors
from jobport.api.app import create_app
from jobport.client import (
    APIError,
    Client,
    Conflict,
    Forbidden,
    InProcessTransport,
    Invalid,
    NotFound,
    RateLimited,
    TransportError,
    Unauthenticated,
    Unauthorized,
    ValidationFailed,
)
from jobport.client._errors import error_from
from jobport.settings import Settings

CLI = ROOT / "src" / "jobport" / "cli"
# What the CLI reaches only through the client (or boot, which builds it).
FORBIDDEN = ("jobport.store", "jobport.api", "jobport.services", "jobport.engine")


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_no_cli_module_imports_the_store_the_api_or_the_services() -> None:
    modules = sorted(CLI.glob("*.py"))
    assert {m.name for m in modules} >= {"__init__.py", "_shared.py", "keys.py", "users.py"}
    wrong = {
        f"{module.name}: {name}"
        for module in modules
        for name in imports_of(module)
        if name.startswith(FORBIDDEN)
    }
    assert wrong == set(), "the CLI talks to a Client; --local gets one from boot.local_client"


# --- the local client --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    database = tmp_path_factory.mktemp("local") / "jobport.db"
    return Settings(database_url=f"sqlite:///{database}", admin_password=ADMIN_PASSWORD)


@pytest.fixture
def local(settings: Settings) -> Iterator[Client]:
    with boot.local_client(settings, user="ann") as client:
        yield client


def test_the_local_client_is_the_api_as_the_local_principal(local: Client) -> None:
    me = local.me()
    assert (me["type"], me["name"], me["authenticatedBy"]) == ("local", "ann", "local")
    assert me["scopes"] == {"application": ["*"]}

    key = local.create_key("made locally", roles=[{"role": "Viewer", "project": None}])
    assert key["createdBy"] == "local:ann" and key["roles"] == [{"role": "Viewer", "project": None}]
    assert key["key"].startswith("jpk_")

    # Audited by the API's own middleware, like any call.
    entry = local.audit(action="create_key", limit=1)["items"][0]
    assert entry["principal"] == "local:ann" and entry["address"] == "local"
    assert (entry["target"], entry["outcome"], entry["status"]) == ("POST /api/v1/keys", "ok", 201)


def test_a_missing_role_makes_no_key(local: Client) -> None:
    before = [k["clientId"] for k in local.list_keys()]
    with pytest.raises(NotFound) as missing:
        local.create_key("never", roles=[{"role": "Viewer"}, {"role": "Nobody"}])
    assert missing.value.code == "role_not_found" and "Nobody" in missing.value.message
    with pytest.raises(NotFound) as elsewhere:
        local.create_key("never", roles=[{"role": "Viewer", "project": "no-such-project"}])
    assert elsewhere.value.code == "project_not_found"
    assert [k["clientId"] for k in local.list_keys()] == before


def test_users_are_created_listed_and_given_passwords(local: Client) -> None:
    made = local.create_user("bob", "bob's password", [{"role": "Viewer"}])
    assert made["username"] == "bob" and made["roles"] == [{"role": "Viewer", "project": None}]
    assert "passwordHash" not in made and "password" not in str(made)
    assert [u["username"] for u in local.list_users()] == ["admin", "bob"]

    with pytest.raises(Conflict) as twice:
        local.create_user("bob", "another password")
    assert twice.value.code == "already_exists"
    with pytest.raises(Invalid) as weak:
        local.create_user("carl", "short")
    assert weak.value.code == "weak_password" and weak.value.status == 422
    with pytest.raises(Invalid) as odd:
        local.create_user("no spaces", "long enough")
    assert odd.value.code == "invalid_username"

    local.set_password("bob", "bob's new password")
    with pytest.raises(NotFound) as nobody:
        local.set_password("nobody", "whatever123")
    assert nobody.value.code == "user_not_found"
    changed = local.audit(action="set_password", outcome="ok", limit=1)["items"][0]
    assert changed["target"] == "PUT /api/v1/users/bob/password"


def test_an_app_not_built_for_local_wants_a_credential(settings: Settings) -> None:
    with boot.local_runtime(settings) as rt:
        app = create_app(settings)
        app.state.runtime = rt
        with (
            Client("http://app", transport=InProcessTransport(app), anonymous=True) as client,
            pytest.raises(Unauthenticated) as refused,
        ):
            client.me()
    assert refused.value.code == "missing_credentials"


def test_an_app_built_for_local_is_never_served(settings: Settings) -> None:
    from jobport.services.access import local_principal

    app = create_app(settings, local_principal=local_principal("ann"))
    sent: list[dict[str, Any]] = []

    async def start() -> None:
        messages = iter([{"type": "lifespan.startup"}])

        async def receive() -> dict[str, Any]:
            return next(messages)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        with pytest.raises(RuntimeError, match="not served"):
            await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)

    asyncio.run(start())
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]


def test_keys_with_roles_need_roles_write_too(local: Client, settings: Settings) -> None:
    local.create_role("key-makers", ["keys:*"])
    maker = local.create_key("makes keys", roles=[{"role": "key-makers"}])
    with boot.local_runtime(settings) as rt:
        app = create_app(settings)
        app.state.runtime = rt
        transport = InProcessTransport(app)
        with Client("http://app", key=maker["key"], transport=transport) as client:
            before = len(client.list_keys())
            assert client.create_key("plain")["roles"] == []
            with pytest.raises(Forbidden) as refused:
                client.create_key("admin", roles=[{"role": "Administrator"}])
            assert refused.value.code == "insufficient_scope"
            assert len(client.list_keys()) == before + 1


def test_a_database_that_cannot_be_opened_is_a_database_error(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/missing/folder/jobport.db")
    with pytest.raises(errors.JobportError) as failed:
        boot.local_client(settings)
    assert failed.value.code == "database_error" and "missing/folder" in failed.value.message


def test_a_json_body_without_a_json_content_type_is_told_so(local: Client) -> None:
    answers = [
        local._http.post("/api/v1/projects", content=b'{"name": "x"}', headers=headers)
        for headers in ({"Content-Type": "application/x-www-form-urlencoded"}, {})
    ]
    for answer, said in zip(answers, ["'application/x-www-form-urlencoded'", "no"], strict=True):
        assert answer.status_code == 422
        body = answer.json()
        assert body["error"] == "invalid_request"
        assert "Content-Type: application/json" in body["message"] and said in body["message"]
    # JSON that is not an object still gets the shape's own words.
    wrong = local._http.post("/api/v1/projects", json=[1])
    assert "valid dictionary" in wrong.json()["message"]


# --- one error tree ----------------------------------------------------------------------------


def test_the_server_and_the_sdk_raise_the_same_classes() -> None:
    assert ValidationFailed is Invalid is errors.Invalid and Unauthorized is Unauthenticated
    for cls in (NotFound, Conflict, Forbidden, RateLimited, Invalid, Unauthenticated):
        assert issubclass(cls, APIError) and cls.__module__ == "jobport.errors"
    assert not issubclass(TransportError, APIError)

    # As a service raises it ...
    raised = errors.Invalid("bad", code="invalid_job", details=[{"field": "x", "reason": "y"}])
    assert (raised.status, raised.code, raised.response) == (422, "invalid_job", None)
    assert errors.RateLimited("slow", retry_after=7).retry_after == 7

    # ... and as the SDK reads it back from the answer.
    answer = httpx2.Response(
        404, json={"error": "job_not_found", "message": "no job 'x'", "details": None}
    )
    read = error_from(answer)
    assert type(read) is errors.NotFound and read.response is answer
    assert (read.status, read.code, read.message) == (404, "job_not_found", "no job 'x'")
    limited = error_from(httpx2.Response(429, headers={"Retry-After": "3"}, json={"error": "x"}))
    assert type(limited) is errors.RateLimited and limited.retry_after == 3.0
    odd = error_from(httpx2.Response(418, text="teapot"))
    assert type(odd) is APIError and odd.status == 418


# --- the in-process transport and the command's name ---------------------------------------------


def test_the_in_process_transport_serves_any_asgi_app() -> None:
    closed: list[bool] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        peer = scope["client"][0].encode()
        await send({"type": "http.response.body", "body": peer + b" " + body})

    transport = InProcessTransport(app, client=("local", 0), on_close=lambda: closed.append(True))
    with httpx2.Client(base_url="http://in", transport=transport) as http:
        assert http.post("/", content=b"hello").text == "local hello"
    assert closed == [True]


def test_the_banner_names_the_jobport_that_works_here(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from jobport.cli import _shared

    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "jobport").write_text("#!/bin/sh\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_shared.sys, "executable", str(bin_ / "python"))
    monkeypatch.setattr(_shared.shutil, "which", lambda name: None)
    assert _shared.command_name() == ".venv/bin/jobport"  # make run: not on PATH
    monkeypatch.setattr(_shared.shutil, "which", lambda name: str(bin_ / "jobport"))
    assert _shared.command_name() == "jobport"  # on PATH, and this very one
