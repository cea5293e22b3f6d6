"""Shared fixtures: a real jobport server in a subprocess, and throwaway databases."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_ADMIN_URL = os.environ.get(
    "JOBPORT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# Step callables used by the tests live in tests/fixtures_steps.py; workers import them.
TEST_PYTHONPATH = str(ROOT / "tests")


def service_missing(what: str, why: str) -> None:
    """Outside CI a missing service skips the test; under CI=true it fails it."""
    message = f"{what} is not reachable: {why}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: services must be running)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ADMIN_PASSWORD = "admin-password-for-tests"


def admin_key(database_url: str, *, role: str = "Administrator", project: str | None = None) -> str:
    """Create an API key holding `role` directly in the database; returns the key string."""
    from jobport.domain.access import key_string
    from jobport.services import access
    from jobport.services.runtime import Runtime
    from jobport.settings import Settings
    from jobport.store.db import Database

    db = Database(database_url, pool=False)
    try:
        db.upgrade()
        rt = Runtime(Settings(database_url=database_url, admin_password=ADMIN_PASSWORD), db)
        access.bootstrap(rt)
        row, secret = access.create_key(
            rt, description=f"tests: {role}", expires_at=None, roles=[(role, project)]
        )
    finally:
        db.dispose()
    return key_string(row.client_id, secret)


def sqlite_path(database_url: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(database_url.removeprefix(prefix)) if database_url.startswith(prefix) else None


_template: tuple[Path, str] | None = None


def _template_database() -> tuple[Path, str]:
    """A migrated SQLite database with the admin user and an Administrator key, and that key."""
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="jobport-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / "template.db"
        _template = (path, admin_key(f"sqlite:///{path}"))
    return _template


class Server:
    """`jobport serve` in a subprocess on a free port, with its own database."""

    def __init__(self, database_url: str, workdir: Path, **env: Any) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "JOBPORT_DATABASE_URL": database_url,
            "JOBPORT_WORKERS": "2",
            "JOBPORT_CANCEL_GRACE_SECONDS": "2",
            "JOBPORT_HEARTBEAT_INTERVAL": "0.5",
            "JOBPORT_HEARTBEAT_TIMEOUT": "3",
            "JOBPORT_SWEEP_INTERVAL": "0.5",
            "PYTHONPATH": TEST_PYTHONPATH + os.pathsep + os.environ.get("PYTHONPATH", ""),
            **{f"JOBPORT_{k.upper()}": str(v) for k, v in env.items()},
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"server-{self.port}.log"
        self.key: str | None = None  # an Administrator API key, made before the first start

    def prepare(self) -> Server:
        """Migrate the database and make the admin user and an Administrator key (once).

        A new SQLite database starts as a copy of one made once per test process: migrating
        and hashing the admin's password (argon2, on purpose slow) for every server cost a
        second or more each time."""
        if self.key is None:
            path = sqlite_path(self.database_url)
            if path is not None and not path.exists():
                template, self.key = _template_database()
                with (
                    contextlib.closing(sqlite3.connect(template)) as source,
                    contextlib.closing(sqlite3.connect(path)) as copy,
                ):
                    source.backup(copy)
                path.chmod(0o600)
            else:
                self.key = admin_key(self.database_url)
        return self

    @property
    def auth(self) -> dict[str, str]:
        self.prepare()
        return {"Authorization": f"Bearer {self.key}"}

    def start(self, *args: str) -> Server:
        self.prepare()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jobport.cli",
                "serve",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                *args,
            ],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def client(self, *, anonymous: bool = False, **kwargs: Any) -> httpx2.Client:
        """An HTTP client for this server, authenticated as an Administrator unless anonymous."""
        headers = {} if anonymous else dict(self.auth)
        headers.update(kwargs.pop("headers", {}))
        return httpx2.Client(base_url=self.url, timeout=30, headers=headers, **kwargs)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the server and everything in its session, as a crash would."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def make(database_url: str | None = None, **env: Any) -> Server:
        url = database_url or f"sqlite:///{tmp_path / 'jobport.db'}"
        server = Server(url, tmp_path, **env)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One running server per test module (SQLite), for tests that do not restart it."""
    workdir = tmp_path_factory.mktemp("server")
    srv = Server(f"sqlite:///{workdir / 'jobport.db'}", workdir).start()
    yield srv
    srv.stop()


@pytest.fixture
def api(server: Server) -> Iterator[httpx2.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def project(api: httpx2.Client) -> str:
    """A fresh project for one test; returns its name."""
    name = f"p-{uuid.uuid4().hex[:10]}"
    response = api.post("/api/v1/projects", json={"name": name})
    assert response.status_code == 201, response.text
    return name


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Any]:
    """A migrated, empty SQLite file, for tests that drive the store or a worker in this
    process."""
    from jobport.store.db import Database

    db = Database(f"sqlite:///{tmp_path / 'jobport.db'}")
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test run, dropped at the end."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is in the dev extra
        service_missing("PostgreSQL", f"psycopg is not installed ({exc})")
    name = f"jobport_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        service_missing("PostgreSQL", str(exc).strip())
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for(predicate: Any, timeout: float = 20, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def create_postgres_database() -> str:
    """A new empty PostgreSQL database (for module-scoped servers); drop it when done."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
            name = f"jobport_test_{uuid.uuid4().hex[:12]}"
            admin.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # ImportError or psycopg.Error: either way, no PostgreSQL here
        service_missing("PostgreSQL", str(exc).strip())
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_postgres_database(url: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def scrape(client: httpx2.Client, url: str = "/metrics") -> dict[str, list[Any]]:
    """{sample name: [samples]} of one Prometheus scrape."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 if none)."""
    return sum(
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    )
