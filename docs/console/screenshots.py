"""Screenshots of the console's main pages, as PNGs in docs/console/ (the README shows two).

    .venv/bin/python docs/console/screenshots.py [--out DIR] [--pages home,jobs,...]

It starts `jobport serve --demo` on a free loopback port with a fresh SQLite database in a
temporary folder (as bench/run.py does) and a new admin password, signs in as admin in
headless Chromium (Debian's /usr/bin/chromium, or --chromium / $JOBPORT_TEST_CHROMIUM), makes
a little to look at through the API with that session (a key that expires soon, a schedule,
two finished runs), and visits each page at 1280x800: the viewport only, so each PNG stays
small. A page the console does not have (404) is skipped with a note; any other refusal stops
the script. The server is always stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("JOBPORT_TEST_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 800}
JOBS = "/console/projects/demo/jobs"


def type_a_schedule(tab: Any) -> None:
    """As a person types one: the preview beside the form follows."""
    tab.get_by_label("Name").fill("weekday-mornings")
    tab.get_by_label("Crons").fill("0 9 * * 1-5")
    tab.get_by_label("Time zone").fill("AUS Eastern Standard Time")
    tab.wait_for_timeout(1500)


# name (the PNG's), what it shows, its path from what setup made.
PAGES: list[tuple[str, str, Callable[[dict[str, str]], str]]] = [
    ("login", "the login page", lambda made: "/console/login"),
    ("home", "the projects", lambda made: "/console/"),
    ("remote-access", "Remote Access: the keys", lambda made: "/console/remote-access"),
    ("jobs", "the demo project's jobs", lambda made: JOBS),
    ("job", "a job: definition, parameters, Run", lambda made: f"{JOBS}/top-customers"),
    ("runs", "the runs", lambda made: "/console/runs"),
    ("run", "a run: steps, result, log", lambda made: f"/console/runs/{made['run']}"),
    ("schedules", "a job's schedules", lambda made: f"{JOBS}/hello/schedules"),
    ("schedule", "a schedule", lambda made: f"{JOBS}/hello/schedules/nightly"),
    ("schedule-new", "a new schedule, previewed", lambda made: f"{JOBS}/hello/schedules/-/new"),
]
# What a person does on a page before it is shot.
ACTIONS: dict[str, Callable[[Any], None]] = {"schedule-new": type_a_schedule}


class Failure(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def demo_server(password: str) -> Iterator[str]:
    """`jobport serve --demo` with a fresh SQLite database; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="jobport-screenshots-") as folder:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPORT_")}
        env["JOBPORT_DATABASE_URL"] = f"sqlite:///{Path(folder) / 'jobport.db'}"
        env["JOBPORT_ADMIN_PASSWORD"] = password
        command = [sys.executable, "-m", "jobport.cli", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--demo", "--log-level", "warning"]
        log_path = Path(folder) / "server.log"
        with log_path.open("wb") as log:
            # cwd: the temporary folder, so that no ./jobport.toml changes the settings.
            proc = subprocess.Popen(command, env=env, cwd=folder, stdout=log, stderr=log)
            try:
                wait_healthy(url, proc, log_path)
                yield url
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure(f"the server exited:\n{log_path.read_text(errors='replace')[-3000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url + "/healthz", timeout=1) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.1)
    raise Failure(f"the server did not start:\n{log_path.read_text(errors='replace')[-3000:]}")


def sign_in(tab: Any, url: str, username: str, password: str) -> None:
    tab.goto(f"{url}/console/login")
    tab.get_by_label("User name").fill(username)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(lambda at: "/console/login" not in at)


def set_up(context: Any, url: str) -> dict[str, str]:
    """Something to show, made through the API with the browser's session (its cookie and
    CSRF token): a key that expires soon, a schedule, and two finished runs."""
    csrf = next(c["value"] for c in context.cookies() if c["name"] == "jobport_csrf")
    api = context.request

    def send(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = api.fetch(url + path, method=method, data=body, headers={"X-CSRF-Token": csrf})
        if not answer.ok:
            raise Failure(f"{method} {path}: {answer.status} {answer.text()}")
        return dict(answer.json())

    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=5)
    operator = [{"role": "Operator", "project": "demo"}]
    send(
        "POST",
        "/api/v1/keys",
        {"description": "nightly export", "expiresAt": soon.isoformat(), "roles": operator},
    )
    send("POST", "/api/v1/keys", {"description": "deploys", "roles": [{"role": "Viewer"}]})
    schedule = {"crons": ["0 2 * * *"], "timeZone": "W. Europe Standard Time"}
    send("PUT", "/api/v1/projects/demo/jobs/hello/schedules/nightly", schedule)
    execute = "/api/v1/projects/demo/jobs/{}/execute?wait=30"
    send("POST", execute.format("hello"), {"parameters": {"who": "console"}})
    run = send("POST", execute.format("top-customers"), {"parameters": {"limit": 5}})
    return {"run": str(run["id"])}


def shoot(
    out: Path, names: list[str], chromium: str, url: str, username: str, password: str
) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(15_000)
            tab = context.new_page()
            if "login" in names:
                written += capture(tab, url, out, "login", "/console/login")
            sign_in(tab, url, username, password)
            made = set_up(context, url)
            for name, _what, path in PAGES:
                if name in names and name != "login":
                    written += capture(tab, url, out, name, path(made))
        finally:
            browser.close()
    return written


def capture(tab: Any, url: str, out: Path, name: str, path: str) -> list[Path]:
    answer = tab.goto(url + path)
    status = answer.status if answer is not None else 0
    if status == 404:
        print(f"skipped {name}: {path} answers 404 (no such page yet)")
        return []
    if status != 200:
        raise Failure(f"{name}: {path} answered {status}")
    tab.wait_for_load_state("load")
    tab.wait_for_timeout(400)  # htmx fills previews and live parts just after load
    if name in ACTIONS:
        from playwright.sync_api import Error as PlaywrightError

        try:
            ACTIONS[name](tab)
        except PlaywrightError as exc:
            print(f"{name}: shot as it loaded, the page did not take the input ({exc})")
    target = out / f"{name}.png"
    tab.screenshot(path=str(target), full_page=False)
    print(f"wrote {target} ({target.stat().st_size // 1024} KB): {path}")
    return [target]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNGs")
    parser.add_argument(
        "--pages",
        default=",".join(name for name, _, _ in PAGES),
        help="comma-separated: " + ", ".join(f"{n} ({w})" for n, w, _ in PAGES),
    )
    parser.add_argument("--chromium", default=CHROMIUM, help="the Chromium to drive")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.pages.split(",") if n.strip()]
    unknown = set(names) - {name for name, _, _ in PAGES}
    if unknown:
        parser.error(f"no such page: {', '.join(sorted(unknown))}")
    if not Path(args.chromium).exists():
        parser.error(f"{args.chromium} does not exist (Debian: apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    try:
        with demo_server(password) as url:
            written = shoot(args.out, names, args.chromium, url, "admin", password)
    except Failure as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 1
    print(f"{len(written)} screenshot(s) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
