"""/docs and /redoc on a host without internet: every asset is served by jobport itself.

The browser may reach the server and nothing else (every other request is aborted and noted),
as on an offline host; the pages must still show the API, and none of them may name another
host. The Authorize button of /docs gets a token with the OAuth2 client-credentials flow."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from conftest import Server

URL = re.compile(r"""https?://[^\s'"<>)]+""")


@pytest.fixture
def offline(context: Any, server: Server) -> Iterator[list[str]]:
    """Cut the browser off from every host but the server's; yields the URLs it tried."""
    tried: list[str] = []
    own = urllib.parse.urlsplit(server.url).netloc

    def only_the_server(route: Any) -> None:
        url = urllib.parse.urlsplit(route.request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.netloc != own:
            tried.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", only_the_server)
    yield tried


def a_jobs_operation(server: Server) -> str:
    """The summary of one operation tagged `jobs`, as the OpenAPI document says it."""
    document = httpx2.get(server.url + "/openapi.json", timeout=30).json()
    return next(
        operation["summary"]
        for entry in document["paths"].values()
        for operation in entry.values()
        if "jobs" in operation.get("tags", ()) and operation.get("summary")
    )


def other_hosts(html: str, server: Server) -> list[str]:
    return [u for u in URL.findall(html) if not u.startswith(server.url + "/")]


def served(tab: Any, server: Server, path: str) -> list[str]:
    """Open `path`, noting every response the page got; returns their URLs."""
    responses: list[str] = []
    tab.on("response", lambda r: responses.append(r.url))
    page = tab.goto(server.url + path)
    assert page.status == 200
    assert other_hosts(page.text(), server) == []
    return responses


def test_docs_shows_the_operations_with_nothing_but_the_server_reachable(
    server: Server, tab: Any, offline: list[str]
) -> None:
    responses = served(tab, server, "/docs")
    operation = a_jobs_operation(server)
    assert tab.locator("#operations-tag-jobs").get_by_text("jobs", exact=True).is_visible()
    assert tab.get_by_text(operation, exact=True).first.is_visible()
    assert offline == []
    assert all(url.startswith(server.url + "/") for url in responses), responses
    assert any(url.endswith("/docs/assets/swagger-ui-bundle.js") for url in responses)


def test_redoc_shows_the_title_and_an_operation_with_nothing_but_the_server_reachable(
    server: Server, tab: Any, offline: list[str]
) -> None:
    responses = served(tab, server, "/redoc")
    operation = a_jobs_operation(server)
    heading = tab.get_by_role("heading", level=1)
    heading.wait_for()
    assert heading.inner_text().startswith("jobport")
    assert tab.get_by_role("heading", name=operation).first.is_visible()
    assert offline == []  # the policy keeps Redoc's logo from Redocly's CDN from being tried
    assert all(url.startswith(server.url + "/") for url in responses), responses
    assert any(url.endswith("/docs/assets/redoc.standalone.js") for url in responses)


def test_the_oauth2_redirect_page_is_served_and_names_no_other_host(server: Server) -> None:
    page = httpx2.get(server.url + "/docs/oauth2-redirect", timeout=30)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert other_hosts(page.text, server) == []


def test_authorize_gets_a_token_with_the_client_credentials_flow(
    server: Server, tab: Any, offline: list[str]
) -> None:
    with server.client() as api:
        created = api.post("/api/v1/keys", json={"description": "docs", "roles": []})
    assert created.status_code == 201, created.text
    key = created.json()
    tab.goto(server.url + "/docs")
    tab.get_by_role("button", name="Authorize").first.click()
    flow = tab.locator(".modal-ux .auth-container", has_text="clientCredentials (OAuth2")

    flow.get_by_label("client_id:").fill(key["clientId"])
    flow.get_by_label("client_secret:").fill(key["clientSecret"])
    with tab.expect_response(lambda r: r.url.endswith("/connect/token")) as token:
        flow.get_by_role("button", name="Apply given OAuth2 credentials").click()
    assert token.value.status == 200
    flow.get_by_role("button", name="Remove authorization").wait_for()
    assert flow.get_by_text("Authorized", exact=True).is_visible()
    assert offline == []
