"""Plain and accessible: every console page has its labels, one h1 and a language, every
action is reachable with Tab, and nothing scrolls sideways at a phone's width.

The pages are not listed here: they are found as a person finds them, from the home page's
navigation and the links on the pages it leads to, on a server with the demo project and a
finished run, so a new page is checked as soon as it is linked. The login page and an error
page (no session, and a page that does not exist) are checked too."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError

from conftest import Server
from console.conftest import log_in

MAX_PAGES = 16
LINKS_PER_PAGE = 3  # from each page's content, beyond its navigation: enough to reach every kind
PER_SHAPE = 2  # pages of one shape (a path that differs only in its last part): two say enough
PHONE = {"width": 375, "height": 740}

CANDIDATES = """() => {
  const shown = (el) => {
    const closed = el.parentElement && el.parentElement.closest("details:not([open])");
    const own = closed && el.matches("summary") && el.parentElement === closed;
    return (!closed || own) && el.checkVisibility({visibilityProperty: true});
  };
  const found = [];
  const groups = new Set();
  const selector = 'a[href], button, input:not([type="hidden"]), select, textarea, summary';
  for (const el of document.querySelectorAll(selector)) {
    if (el.disabled || !shown(el)) continue;
    if (el.type === "radio") {  // Tab enters a radio group once; arrows move within it
      if (groups.has(el.name)) { el.dataset.a11y = "radio:" + el.name; continue; }
      groups.add(el.name);
    }
    const id = el.type === "radio" ? "radio:" + el.name : "e" + found.length;
    el.dataset.a11y = id;
    found.push({id, html: el.outerHTML.slice(0, 160)});
  }
  return found;
}"""

UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type="hidden"]), select, textarea')].filter((el) => {
  const named = (ids) => ids && ids.split(/\\s+/).every((id) => document.getElementById(id));
  const labelled = [...(el.labels || [])].some((label) => label.textContent.trim());
  return !labelled && !(el.getAttribute("aria-label") || "").trim()
      && !named(el.getAttribute("aria-labelledby"));
}).map((el) => el.outerHTML.slice(0, 160))"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with the demo project and one finished run, so lists have rows to show."""
    workdir: Path = tmp_path_factory.mktemp("accessibility")
    srv = Server(f"sqlite:///{workdir / 'jobport.db'}", workdir).start("--demo")
    with srv.client() as api:
        started = api.post("/api/v1/projects/demo/jobs/noop/execute?wait=30", json={})
        assert started.status_code == 200, started.text
        assert started.json()["status"] == "succeeded", started.text
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def signed_in(browser: Any, demo: Server) -> Iterator[Any]:
    """A browser profile signed in as the admin (at a laptop's width)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(10_000)
    log_in(ctx.new_page(), demo)
    yield ctx
    ctx.close()


def _shape(path: str) -> tuple[str, ...]:
    url = urllib.parse.urlsplit(path)
    parts = url.path.rstrip("/").split("/")
    return (*parts[:-1], str(len(parts)), *sorted(urllib.parse.parse_qs(url.query)))


def _console_path(href: str, base: str) -> str | None:
    url = urllib.parse.urlsplit(urllib.parse.urljoin(base, href))
    if url.netloc != urllib.parse.urlsplit(base).netloc or not url.path.startswith("/console"):
        return None
    if url.path.startswith("/console/static") or url.path.endswith((".txt", ".json")):
        return None
    return url.path + (f"?{url.query}" if url.query else "")


@pytest.fixture(scope="module")
def pages(signed_in: Any, demo: Server) -> list[str]:
    """The console's pages a signed-in admin reaches from home: its navigation on every page,
    and the first few links of each page's content, breadth first, two of each shape."""
    tab = signed_in.new_page()
    found: list[str] = []
    queue = ["/console/"]
    seen = set(queue)
    shapes: dict[tuple[str, ...], int] = {}
    while queue and len(found) < MAX_PAGES:
        path = queue.pop(0)
        try:
            response = tab.goto(demo.url + path)
        except PlaywrightError:  # a download (a log, a collection), not a page
            continue
        if response is None or response.status != 200:
            continue
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        found.append(path)
        nav = tab.locator("header nav a[href]").evaluate_all("els => els.map(e => e.href)")
        content = tab.locator("main a[href]").evaluate_all("els => els.map(e => e.href)")
        taken = 0
        for href in [*nav, *content]:
            target = _console_path(href, tab.url)
            if not target or target in seen or shapes.get(_shape(target), 0) >= PER_SHAPE:
                continue
            if href in nav or taken < LINKS_PER_PAGE:
                seen.add(target)
                shapes[_shape(target)] = shapes.get(_shape(target), 0) + 1
                queue.append(target)
                taken += href not in nav
    tab.close()
    return found


def _every_page(signed_in: Any, browser: Any, demo: Server, pages: list[str]) -> Iterator[Any]:
    """Each page in turn, loaded in a tab: the console's pages, then the login and error pages
    (without a session)."""
    tab = signed_in.new_page()
    for path in pages:
        tab.goto(demo.url + path)
        yield path, tab
    tab.close()
    anonymous = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = anonymous.new_page()
    for path in ("/console/login", "/console/no-such-page"):
        tab.goto(demo.url + path)
        yield path, tab
    anonymous.close()


def test_the_pages_are_found_from_home(pages: list[str]) -> None:
    assert pages[0] == "/console/"
    assert len(pages) >= 2, pages  # home links to its projects and the navigation's pages


def test_every_input_has_a_label_and_every_page_one_h1_and_a_language(
    signed_in: Any, browser: Any, demo: Server, pages: list[str]
) -> None:
    problems: dict[str, Any] = {}
    for path, tab in _every_page(signed_in, browser, demo, pages):
        unlabelled = tab.evaluate(UNLABELLED)
        if unlabelled:
            problems[path + " unlabelled"] = unlabelled
        if tab.locator("h1").count() != 1:
            problems[path + " h1"] = tab.locator("h1").all_inner_texts()
        if not (tab.locator("html").get_attribute("lang") or "").strip():
            problems[path + " lang"] = "no lang on <html>"
    assert problems == {}


def _reached_with_tab(tab: Any) -> tuple[list[dict[str, str]], set[str]]:
    """Tab through the page from its top; returns the elements that should be reached and
    the ids of those that were."""
    candidates = tab.evaluate(CANDIDATES)
    tab.evaluate("document.activeElement && document.activeElement.blur()")
    reached: set[str] = set()
    wanted = {c["id"] for c in candidates}
    for _ in range(2 * len(candidates) + 5):
        tab.keyboard.press("Tab")
        focused = tab.evaluate("document.activeElement && document.activeElement.dataset.a11y")
        if focused:
            reached.add(focused)
        if wanted <= reached:
            break
    return candidates, reached


def test_every_link_button_and_field_is_reachable_with_tab(
    signed_in: Any, browser: Any, demo: Server, pages: list[str]
) -> None:
    problems: dict[str, list[str]] = {}
    for path, tab in _every_page(signed_in, browser, demo, pages):
        candidates, reached = _reached_with_tab(tab)
        assert candidates, f"{path}: nothing to reach?"
        missed = [c["html"] for c in candidates if c["id"] not in reached]
        if missed:
            problems[path] = missed
    assert problems == {}


def test_no_page_scrolls_sideways_at_a_phones_width(
    browser: Any, signed_in: Any, demo: Server, pages: list[str]
) -> None:
    phone = browser.new_context(viewport=PHONE, storage_state=signed_in.storage_state())
    tab = phone.new_page()
    wide: dict[str, tuple[int, int]] = {}
    try:
        for path in [*pages, "/console/login", "/console/no-such-page"]:
            tab.goto(demo.url + path)
            width, viewport = tab.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            if width > viewport + 1:
                wide[path] = (width, viewport)
    finally:
        phone.close()
    assert wide == {}
