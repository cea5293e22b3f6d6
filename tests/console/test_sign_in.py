"""Signing in and out of the console, and what a page without a session does."""

from __future__ import annotations

from typing import Any

import httpx2

from conftest import Server
from console.conftest import log_in


def test_the_root_and_login_lead_to_the_console_and_a_page_asks_for_a_session(
    server: Server, tab: Any
) -> None:
    tab.goto(f"{server.url}/")
    assert "/console/login" in tab.url
    tab.goto(f"{server.url}/console/")
    assert "/console/login?next=/console/" in tab.url
    assert tab.get_by_role("heading", name="Log in").is_visible()


def test_a_wrong_password_is_said_next_to_the_form_and_the_right_one_signs_in(
    server: Server, tab: Any, context: Any
) -> None:
    tab.goto(f"{server.url}/console/login")
    tab.get_by_label("User name").fill("admin")
    tab.get_by_label("Password").fill("not the password")
    tab.get_by_role("button", name="Log in").click()
    assert tab.get_by_role("alert").inner_text() == "wrong username or password"
    assert tab.get_by_label("User name").input_value() == "admin"
    log_in(tab, server)
    assert tab.get_by_role("heading", name="Projects").is_visible()
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["jobport_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    tab.get_by_role("button", name="Log out").click()
    tab.wait_for_url("**/console/login")
    tab.goto(f"{server.url}/console/")
    assert "/console/login" in tab.url


def test_a_form_without_its_csrf_token_is_refused(server: Server, tab: Any, context: Any) -> None:
    log_in(tab, server)
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    with httpx2.Client(base_url=server.url, cookies=cookies) as raw:
        refused = raw.post("/console/logout", data={})
        assert refused.status_code == 403
        assert "csrf_failed" in refused.text
        wrong = raw.post("/console/logout", data={"csrf": "not-the-token"})
        assert wrong.status_code == 403
        done = raw.post("/console/logout", data={"csrf": cookies["jobport_csrf"]})
        assert done.status_code == 303


def test_a_login_posted_from_another_site_is_refused(server: Server) -> None:
    with httpx2.Client(base_url=server.url) as raw:
        response = raw.post(
            "/console/login",
            data={"username": "admin", "password": "x"},
            headers={"Origin": "https://evil.example"},
        )
    assert response.status_code == 403
    assert "jobport_session" not in response.cookies
