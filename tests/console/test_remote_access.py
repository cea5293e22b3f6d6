"""Remote Access in the browser: Loome's key journey step by step (and the key then works over
HTTP with exactly its role's rights), the lock-out guard, delete, rotate, and what a user
without the rights sees and may force."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import httpx2
from playwright.sync_api import expect

from conftest import Server
from console.conftest import log_in

PASSWORD = "a long enough password for tests"


def _unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def _make_key(server: Server, **body: Any) -> dict[str, Any]:
    with server.client() as api:
        made = api.post("/api/v1/keys", json=body)
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


def _get_key(server: Server, client_id: str) -> httpx2.Response:
    with server.client() as api:
        return api.get(f"/api/v1/keys/{client_id}")


def _keys_described(server: Server, description: str) -> list[dict[str, Any]]:
    with server.client() as api:
        listed = api.get("/api/v1/keys", params={"limit": 500})
    return [k for k in listed.json()["items"] if k["description"] == description]


def _make_user(server: Server, username: str, roles: list[dict[str, Any]]) -> None:
    with server.client() as api:
        made = api.post(
            "/api/v1/users", json={"username": username, "password": PASSWORD, "roles": roles}
        )
    assert made.status_code == 201, made.text


def _session(context: Any, server: Server) -> httpx2.Client:
    """The browser's own session (cookies) for forcing a request the page does not offer."""
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    return httpx2.Client(base_url=server.url, cookies=cookies, follow_redirects=False)


def test_loome_key_journey_then_the_key_works_with_its_role_only(
    server: Server, tab: Any, context: Any
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    description = _unique("nightly loader")
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(days=60)).date()
    log_in(tab, server)

    # 1. Remote Access, then Add API Key.
    tab.get_by_role("navigation", name="Main").get_by_role("link", name="Remote Access").click()
    tab.get_by_role("link", name="Add API Key").click()
    # 2. A description and an expiry date.
    tab.get_by_label("Description").fill(description)
    tab.get_by_label("Expiry date").fill(expiry.isoformat())
    tab.get_by_role("button", name="Add API Key").click()

    # 3. Copy the Client ID and the Secret (shown once, said so).
    expect(tab.get_by_text("The secret will not be shown again")).to_be_visible()
    client_id = tab.locator("#client-id").inner_text()
    secret = tab.locator("#client-secret").inner_text()
    key_string = tab.locator("#key-string").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9]+", client_id) and len(secret) >= 20
    assert key_string.startswith(f"jpk_{client_id}_{secret}")
    tab.get_by_role("button", name="Copy the Client ID").click()
    assert tab.evaluate("navigator.clipboard.readText()") == client_id
    tab.get_by_role("button", name="Copy the Secret").click()
    assert tab.evaluate("navigator.clipboard.readText()") == secret
    stored = _get_key(server, client_id).json()
    assert stored["description"] == description
    assert stored["expiresAt"].startswith(f"{expiry.isoformat()}T23:59:59")

    # A reload shows the key, never the secret again, and makes no second key.
    tab.reload()
    assert tab.url.endswith(f"/console/remote-access/keys/{client_id}")
    assert secret not in tab.content()
    expect(tab.get_by_role("heading", name=f"API key: {description}")).to_be_visible()
    assert len(_keys_described(server, description)) == 1

    # 4. The Networking tab: add my IPv4, and a rule of my own.
    tab.get_by_role("link", name="Networking").click()
    tab.get_by_role("button", name="Add my IP address").click()
    assert tab.get_by_label("Rule 1 start address").input_value() == "127.0.0.1"
    tab.get_by_label("New rule name").fill("office")
    tab.get_by_label("New rule start address").fill("192.0.2.0")
    tab.get_by_label("New rule end address").fill("192.0.2.255")
    # 5. Save.
    tab.get_by_role("button", name="Save").click()
    assert tab.get_by_role("status").inner_text() == "Firewall rules saved."
    rules = _get_key(server, client_id).json()["firewallRules"]
    assert [(r["startIp"], r["endIp"]) for r in rules] == [
        ("127.0.0.1", "127.0.0.1"),
        ("192.0.2.0", "192.0.2.255"),
    ]

    # 6. A role's tab, then Add User, with member type API Keys.
    tab.get_by_role("link", name="Roles").click()
    tab.get_by_role("link", name="Operator", exact=True).click()
    tab.get_by_role("navigation", name="Roles").get_by_role("link", name="Viewer").click()
    tab.get_by_role("link", name="Add User").click()
    tab.get_by_label("Member type").select_option(label="API Keys")
    # 7. Pick the key, then Submit.
    tab.get_by_label("API key").select_option(label=f"{description} ({client_id})")
    tab.get_by_role("button", name="Submit").click()
    expect(tab.get_by_role("heading", name="Viewer")).to_be_visible()
    expect(
        tab.get_by_role("row").filter(has_text=client_id).get_by_text(description)
    ).to_be_visible()

    # The key works, with its role's rights and no others: as Loome's clients call (a token
    # for the Client ID and Secret), and as the one key string.
    with httpx2.Client(base_url=server.url, timeout=30) as raw:
        token = raw.post(
            "/connect/token",
            data={"grant_type": "client_credentials", "scope": "webApi"},
            auth=(client_id, secret),
        )
        assert token.status_code == 200, token.text
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert raw.get("/api/v1/projects", headers=bearer).status_code == 200
        refused = raw.post("/api/v1/projects", headers=bearer, json={"name": "not-allowed"})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "insufficient_scope"
        with_key = {"Authorization": f"Bearer {key_string}"}
        assert raw.get("/api/v1/projects", headers=with_key).status_code == 200
        assert raw.get("/api/v1/keys", headers=with_key).status_code == 403

    # The keys table: its role, when and where it was last used, and the expiry badges.
    soon = _make_key(
        server,
        description=_unique("expiring"),
        expiresAt=(dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat(),
    )
    tab.get_by_role("navigation", name="Main").get_by_role("link", name="Remote Access").click()
    row = tab.get_by_role("row").filter(has_text=client_id)
    expect(row.get_by_role("cell", name="Viewer", exact=True)).to_be_visible()
    assert "from 127.0.0.1" in row.inner_text()
    assert "expires soon" not in row.inner_text()
    assert "enabled" in row.inner_text()
    soon_row = tab.get_by_role("row").filter(has_text=soon["clientId"])
    expect(soon_row.get_by_text("expires soon")).to_be_visible()
    expect(tab.get_by_text("stops working within 14 days")).to_be_visible()


def test_an_edit_that_would_lock_you_out_shows_the_guards_message(server: Server, tab: Any) -> None:
    key = _make_key(
        server,
        description=_unique("guarded"),
        firewallRules=[{"name": "here", "startIp": "127.0.0.1", "endIp": "127.0.0.1"}],
    )
    log_in(tab, server)
    tab.goto(f"{server.url}/console/remote-access/keys/{key['clientId']}/networking")

    # A mistyped address: the domain's reason next to that field, nothing saved.
    tab.get_by_label("New rule name").fill("typo")
    tab.get_by_label("New rule start address").fill("10.0.0.300")
    tab.get_by_label("New rule end address").fill("10.0.0.1")
    tab.get_by_role("button", name="Save").click()
    start = tab.get_by_label("New rule start address")
    assert start.get_attribute("aria-invalid") == "true"
    assert tab.locator("#start-new-error").inner_text() == (
        "'10.0.0.300' is not an IPv4 or IPv6 address"
    )
    assert start.input_value() == "10.0.0.300"  # what was typed stays

    # Moving the only rule away from this address would shut it out: the guard's message.
    start.fill("")
    tab.get_by_label("New rule name").fill("")
    tab.get_by_label("New rule end address").fill("")
    tab.get_by_label("Rule 1 start address").fill("10.0.0.1")
    tab.get_by_label("Rule 1 end address").fill("10.0.0.1")
    tab.get_by_role("button", name="Save").click()
    alert = tab.locator("#rules-error")
    expect(
        alert.get_by_text(
            "this edit would lock you out: the firewall rules would not allow your address "
            "127.0.0.1; send force=true to do it anyway"
        )
    ).to_be_visible()
    assert tab.locator("table.rules").get_attribute("aria-describedby") == "rules-error"
    assert tab.get_by_label("Rule 1 start address").input_value() == "10.0.0.1"
    assert _get_key(server, key["clientId"]).json()["firewallRules"][0]["startIp"] == "127.0.0.1"

    # Saying so saves it; an IPv6 range goes in beside it.
    tab.get_by_label("New rule name").fill("v6 office")
    tab.get_by_label("New rule start address").fill("2001:db8::")
    tab.get_by_label("New rule end address").fill("2001:db8::ffff")
    tab.get_by_label("Save anyway, even though my address is shut out").check()
    tab.get_by_role("button", name="Save").click()
    assert tab.get_by_role("status").inner_text() == "Firewall rules saved."
    rules = _get_key(server, key["clientId"]).json()["firewallRules"]
    assert [(r["startIp"], r["endIp"]) for r in rules] == [
        ("10.0.0.1", "10.0.0.1"),
        ("2001:db8::", "2001:db8::ffff"),
    ]
    # Removing a rule: the key is now shut out here already, so no guard stands in the way.
    tab.get_by_label("Remove rule 1").check()
    tab.get_by_role("button", name="Save").click()
    assert tab.get_by_role("status").inner_text() == "Firewall rules saved."
    rules = _get_key(server, key["clientId"]).json()["firewallRules"]
    assert [r["name"] for r in rules] == ["v6 office"]


def test_delete_asks_first_then_the_key_is_gone(server: Server, tab: Any) -> None:
    key = _make_key(server, description=_unique("doomed"), roles=[{"role": "Viewer"}])
    log_in(tab, server)
    tab.goto(f"{server.url}/console/remote-access/keys/{key['clientId']}")
    tab.get_by_role("link", name="Delete").click()
    expect(tab.get_by_role("heading", name=f"Delete API key {key['clientId']}?")).to_be_visible()
    tab.get_by_role("link", name="Cancel").click()
    assert _get_key(server, key["clientId"]).status_code == 200

    tab.get_by_role("link", name="Delete").click()
    tab.get_by_role("button", name="Delete key").click()
    assert tab.get_by_role("status").inner_text() == f"API key {key['clientId']} was deleted."
    assert tab.get_by_role("row").filter(has_text=key["clientId"]).count() == 0
    assert _get_key(server, key["clientId"]).status_code == 404
    with httpx2.Client(base_url=server.url) as raw:
        gone = raw.get("/api/v1/projects", headers={"Authorization": f"Bearer {key['key']}"})
    assert gone.status_code == 401


def test_rotate_shows_the_new_secret_once_and_the_old_one_works_for_its_grace(
    server: Server, tab: Any
) -> None:
    key = _make_key(server, description=_unique("rotated"), roles=[{"role": "Viewer"}])
    log_in(tab, server)
    tab.goto(f"{server.url}/console/remote-access/keys/{key['clientId']}")
    tab.get_by_role("link", name="Rotate secret").click()
    tab.get_by_role("button", name="Rotate secret").click()

    expect(tab.get_by_text("The secret will not be shown again")).to_be_visible()
    assert tab.locator("#client-id").inner_text() == key["clientId"]
    new_secret = tab.locator("#client-secret").inner_text()
    new_key = tab.locator("#key-string").inner_text()
    assert new_secret != key["clientSecret"]
    grace = tab.get_by_text("The old secret keeps working until")
    expect(grace).to_be_visible()
    until = dt.datetime.fromisoformat(
        _get_key(server, key["clientId"]).json()["previousSecretValidUntil"]
    )
    hours = (until - dt.datetime.now(dt.UTC)).total_seconds() / 3600
    assert 23 < hours <= 24.1  # the default the rotate form offers, in UTC

    with httpx2.Client(base_url=server.url) as raw:
        for credential in (new_key, key["key"]):
            auth = {"Authorization": f"Bearer {credential}"}
            assert raw.get("/api/v1/projects", headers=auth).status_code == 200

    tab.reload()
    assert new_secret not in tab.content()
    expect(tab.get_by_role("heading", name="API key:")).to_be_visible()


def test_rights_decide_what_is_shown_and_a_forced_post_is_refused(
    server: Server, browser: Any
) -> None:
    viewer_name = f"vera-{uuid.uuid4().hex[:6]}"
    reader_name = f"rita-{uuid.uuid4().hex[:6]}"
    _make_user(server, viewer_name, [{"role": "Viewer"}])
    with server.client() as api:
        role = f"key-readers-{uuid.uuid4().hex[:6]}"
        made = api.post("/api/v1/roles", json={"name": role, "scopes": ["keys:read", "roles:read"]})
        assert made.status_code == 201, made.text
    _make_user(server, reader_name, [{"role": role}])
    key = _make_key(
        server,
        description=_unique("looked at"),
        firewallRules=[{"name": "lab", "startIp": "198.51.100.1", "endIp": "198.51.100.9"}],
    )
    before = len(_keys_described(server, "forced"))

    # Viewer: no keys:read, so no Remote Access at all; forcing it is the 403 page.
    context = browser.new_context()
    try:
        tab = context.new_page()
        log_in(tab, server, viewer_name, PASSWORD)
        nav = tab.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Projects")).to_be_visible()
        assert nav.get_by_role("link", name="Remote Access").count() == 0
        tab.goto(f"{server.url}/console/remote-access")
        expect(tab.get_by_role("heading", name="Not allowed")).to_be_visible()
        with _session(context, server) as raw:
            csrf = raw.cookies["jobport_csrf"]
            forced = raw.post(
                "/console/remote-access/keys", data={"csrf": csrf, "description": "forced"}
            )
            assert forced.status_code == 403
            assert "insufficient_scope" in forced.text and "Not allowed" in forced.text
    finally:
        context.close()

    # A reader of keys and roles: sees them, with no action to take; forcing one is refused.
    context = browser.new_context()
    try:
        tab = context.new_page()
        log_in(tab, server, reader_name, PASSWORD)
        tab.get_by_role("navigation", name="Main").get_by_role("link", name="Remote Access").click()
        # Each click loads a page: expect() waits for what it shows (is_visible() would not).
        expect(tab.get_by_role("row").filter(has_text=key["clientId"])).to_be_visible()
        assert tab.get_by_role("link", name="Add API Key").count() == 0
        tab.get_by_role("link", name=key["description"]).click()
        expect(tab.get_by_role("link", name="Networking")).to_be_visible()
        for action in ("Save", "Rotate secret", "Delete"):
            assert tab.get_by_role("button", name=action).count() == 0
            assert tab.get_by_role("link", name=action).count() == 0
        tab.get_by_role("link", name="Networking").click()
        expect(tab.get_by_role("cell", name="198.51.100.1")).to_be_visible()
        assert tab.get_by_role("button").filter(has_text=re.compile("Save|Add my IP")).count() == 0
        tab.get_by_role("link", name="Roles").click()
        tab.get_by_role("link", name="Viewer", exact=True).click()
        assert tab.get_by_role("link", name="Add User").count() == 0
        assert tab.get_by_role("link", name="Remove").count() == 0

        with _session(context, server) as raw:
            csrf = raw.cookies["jobport_csrf"]
            base = "/console/remote-access"
            forced = [
                raw.post(f"{base}/keys", data={"csrf": csrf, "description": "forced"}),
                raw.post(f"{base}/keys/{key['clientId']}/delete", data={"csrf": csrf}),
                raw.post(
                    f"{base}/keys/{key['clientId']}/networking/my-address", data={"csrf": csrf}
                ),
                raw.post(
                    f"{base}/roles/Viewer/members",
                    data={"csrf": csrf, "type": "user", "id": reader_name},
                ),
            ]
            for response in forced:
                assert response.status_code == 403, response.text
                assert "Not allowed" in response.text
            without_token = raw.post(f"{base}/keys/{key['clientId']}/delete", data={})
            assert without_token.status_code == 403 and "csrf_failed" in without_token.text
    finally:
        context.close()
    assert len(_keys_described(server, "forced")) == before
    after = _get_key(server, key["clientId"]).json()
    assert after["firewallRules"] == key["firewallRules"]
    with server.client() as api:
        members = api.get("/api/v1/roles/Viewer").json()["members"]
    assert {"type": "user", "id": reader_name} not in members


def test_a_project_role_gets_a_key_and_loses_it_after_a_confirmation(
    server: Server, tab: Any, project: str
) -> None:
    key = _make_key(server, description=_unique("project runner"))
    with server.client() as api:
        made = api.post(
            f"/api/v1/projects/{project}/roles",
            json={"name": "readers", "scopes": ["jobs:read", "executions:read"]},
        )
        assert made.status_code == 201, made.text
    log_in(tab, server)
    tab.goto(f"{server.url}/console/remote-access/roles")
    tab.get_by_label("Roles of").select_option(label=f"project {project}")
    tab.get_by_role("button", name="Show").click()
    expect(tab.get_by_role("heading", name=f"Roles in project {project}")).to_be_visible()
    readers = tab.get_by_role("row").filter(has_text="readers")
    expect(readers.get_by_text("executions:read")).to_be_visible()
    tab.get_by_role("link", name="Operator", exact=True).click()
    tab.get_by_role("link", name="Add User").click()
    tab.get_by_label("Member type").select_option(label="API Keys")
    picker = tab.get_by_label("API key")
    expect(picker).to_be_visible()  # htmx has swapped the form in (a Submit before: a user)
    tab.get_by_role("button", name="Submit").click()  # nothing picked: said next to the list
    expect(picker).to_have_attribute("aria-invalid", "true")
    assert tab.locator("#member-id-error").inner_text() == "choose one"
    picker.select_option(label=f"{key['description']} ({key['clientId']})")
    tab.get_by_role("button", name="Submit").click()
    expect(tab.get_by_role("heading", name=f"Operator in project {project}")).to_be_visible()

    member = {"type": "apiKey", "id": key["clientId"]}
    with server.client() as api:
        assert member in api.get(f"/api/v1/projects/{project}/roles/Operator").json()["members"]
        assert member not in api.get("/api/v1/roles/Operator").json()["members"]
    tab.get_by_role("link", name=f"Remove {key['clientId']}").click()
    heading = f"Remove api key {key['clientId']} from role Operator?"
    expect(tab.get_by_role("heading", name=heading)).to_be_visible()
    expect(tab.get_by_text(f"in project {project}")).to_be_visible()
    tab.get_by_role("button", name="Remove member").click()
    assert tab.get_by_role("row").filter(has_text=key["clientId"]).count() == 0
    with server.client() as api:
        assert member not in api.get(f"/api/v1/projects/{project}/roles/Operator").json()["members"]


def test_edit_a_key_errors_next_to_the_field_and_an_unchanged_date_keeps_the_expiry(
    server: Server, tab: Any
) -> None:
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=5, minutes=7)).replace(microsecond=0)
    key = _make_key(
        server,
        description=_unique("edited"),
        expiresAt=expires.isoformat(),
        roles=[{"role": "Viewer"}],
    )
    log_in(tab, server)
    tab.goto(f"{server.url}/console/remote-access/keys/{key['clientId']}")
    expect(tab.get_by_text("expires soon")).to_be_visible()
    tab.get_by_label("Expiry date").fill("2020-01-01")
    tab.get_by_role("button", name="Save").click()
    expiry = tab.get_by_label("Expiry date")
    assert "expires-error" in (expiry.get_attribute("aria-describedby") or "")
    assert tab.locator("#expires-error").inner_text() == "in the past"
    assert tab.get_by_role("alert").inner_text() == "expiresAt must be in the future"

    tab.get_by_label("Expiry date").fill(expires.date().isoformat())
    tab.get_by_label("Description").fill("renamed")
    tab.get_by_label("Enabled").uncheck()
    tab.get_by_role("button", name="Save").click()
    assert tab.get_by_role("status").inner_text() == "Saved."
    stored = _get_key(server, key["clientId"]).json()
    assert stored["description"] == "renamed" and stored["enabled"] is False
    assert stored["expiresAt"] == key["expiresAt"]  # the same day: the same expiry
    with httpx2.Client(base_url=server.url) as raw:
        off = raw.get("/api/v1/projects", headers={"Authorization": f"Bearer {key['key']}"})
    assert off.status_code == 401
    tab.get_by_role("navigation", name="Main").get_by_role("link", name="Remote Access").click()
    assert tab.get_by_role("row").filter(has_text=key["clientId"]).get_by_text("disabled").count()
