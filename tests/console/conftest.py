"""The console's tests: a real server, driven in Debian's headless Chromium by Playwright.

Chromium is /usr/bin/chromium (Debian's package, which .ci/run installs); Playwright's own
browser downloads are never used. Outside CI a missing Chromium skips these tests with the
reason; under CI=true it fails them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import ADMIN_PASSWORD, Server, service_missing

CHROMIUM = os.environ.get("JOBPORT_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        service_missing("Chromium", f"{CHROMIUM} does not exist (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (no cookies) per test, at a laptop's width."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def tab(context: Any) -> Any:
    return context.new_page()


def log_in(
    tab: Any, server: Server, username: str = "admin", password: str = ADMIN_PASSWORD
) -> None:
    """Sign in through the login page, as a person would."""
    tab.goto(f"{server.url}/console/login")
    tab.get_by_label("User name").fill(username)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(lambda url: "/console/login" not in url)
