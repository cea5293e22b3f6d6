"""JOBPORT_STEP_USER: command steps run as another OS user, who cannot read the server's data."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from api.test_execute import execute, final, make_job
from conftest import Server, wait_for
from engine.test_orphans import (
    command,
    grandchildren,
    kill,
    orphans,
    reapers,
    status_when_gone,
    unique_sleep,
    worker_of,
)
from jobport.engine import isolation
from jobport.engine.steps import StepContext, StepFailed
from jobport.engine.steps import command as command_step

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@pytest.fixture(scope="module")
def public_dir() -> Iterator[Path]:
    """A directory anyone may enter, so that only the database file's own mode protects it."""
    path = Path(tempfile.mkdtemp(prefix="jobport-step-user-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server(public_dir: Path) -> Iterator[Server]:
    srv = Server(f"sqlite:///{public_dir / 'jobport.db'}", public_dir, step_user="nobody")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def api(server: Server) -> Iterator[httpx2.Client]:
    with server.client() as client:
        client.post("/api/v1/projects", json={"name": "user"})
        yield client


def run_job(api: httpx2.Client, *steps: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    job = make_job(api, "user", steps=list(steps))
    run = execute(api, "user", job["name"], wait=20).json()
    done = final(api, run["id"])
    lines = api.get(f"/api/v1/executions/{run['id']}/logs").json()["items"]
    return done, [ln["text"] for ln in lines if ln["stream"] in {"stdout", "stderr"}]


def test_a_command_step_runs_as_the_step_user_with_no_other_group_and_its_home(
    api: httpx2.Client,
) -> None:
    script = (
        "echo uid=$(id -u) gid=$(id -g) groups=$(id -G) home=$HOME pwd=$(pwd); "
        "readlink /proc/$$/fd/* || true"  # the glob saw its own directory handle, gone now
    )
    done, lines = run_job(api, command("who", script))
    assert done["status"] == "succeeded"
    assert lines[0] == f"uid={NOBODY} gid={NOBODY} groups={NOBODY} home=/nonexistent pwd=/"
    # Only its own stdin, stdout and stderr: none of the worker's files (the database).
    assert lines[1] == "/dev/null" and len(lines) == 4
    assert lines[2].startswith("pipe:") and lines[3].startswith("pipe:")


def test_the_step_user_cannot_read_the_database(server: Server, api: httpx2.Client) -> None:
    path = server.database_url.removeprefix("sqlite:///")
    done, lines = run_job(api, command("steal", f"cat {path} {path}-wal | head -c 100"))
    assert done["status"] == "succeeded"  # the exit code of `head`
    assert any("Permission denied" in ln for ln in lines), lines
    assert not any("SQLite format" in ln for ln in lines)


def test_the_step_user_enters_its_cwd_as_itself(api: httpx2.Client, public_dir: Path) -> None:
    hidden = Path(tempfile.mkdtemp(dir=public_dir))  # 0700, root's
    (hidden / "open").mkdir(mode=0o755)

    def pwd_in(cwd: Path) -> tuple[dict[str, Any], list[str]]:
        return run_job(
            api, {"name": "pwd", "kind": "command", "config": {"command": "pwd", "cwd": str(cwd)}}
        )

    # Popen's own `cwd` would change directory as root, before the user change, and let
    # the step start in `open`, which its user could never reach.
    for cwd in (hidden, hidden / "open"):
        done, lines = pwd_in(cwd)
        assert done["status"] == "failed"
        message = f"jobport: cannot enter {str(cwd)!r} as the step user: Permission denied"
        assert lines[0] == message
    done, lines = pwd_in(public_dir)
    assert done["status"] == "succeeded" and lines == [str(public_dir)]


def uid_of(pid: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1])


def test_the_step_user_s_processes_are_killed_when_their_worker_dies(
    server: Server, api: httpx2.Client
) -> None:
    sleep = unique_sleep()
    job = make_job(api, "user", steps=[command("nap", grandchildren(sleep))])
    run = execute(api, "user", job["name"]).json()["id"]
    wait_for(lambda: len(orphans(sleep)) == 4)
    assert {uid_of(pid) for pid in orphans(sleep)} == {NOBODY}

    worker = worker_of(server, run)
    kill(reapers([worker]))  # so that only the server, as root, can clean up
    kill([worker])

    assert status_when_gone(api, run, sleep)["error"]["code"] == "worker_lost"


def test_the_server_refuses_to_start_with_a_step_user_that_does_not_exist(
    make_server: Any,
) -> None:
    server = make_server(step_user="no-such-user-here")
    with pytest.raises(RuntimeError, match=r"JOBPORT_STEP_USER='no-such-user-here'.*no such user"):
        server.start()
    said = server.log_path.read_text()
    assert "Traceback" not in said  # one line for the operator, before anything listens
    assert "jobport: JOBPORT_STEP_USER='no-such-user-here'" in said


def test_the_server_refuses_to_start_with_an_encryption_key_that_is_no_fernet_key(
    make_server: Any,
) -> None:
    server = make_server(encryption_key="not-a-fernet-key")
    with pytest.raises(RuntimeError, match=r"the encryption key is not a Fernet key"):
        server.start()
    assert "Traceback" not in server.log_path.read_text()


def test_a_worker_that_may_not_change_user_fails_the_step_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = isolation.StepSetup({"PATH": os.defpath}, isolation.resolve_user("nobody"))
    monkeypatch.setattr(isolation, "_setup", setup)
    monkeypatch.setattr(isolation, "can_switch_user", lambda: False)
    ctx = StepContext("run", "step", lambda stream, text: None, threading.Event(), 1.0)
    with pytest.raises(StepFailed, match="CAP_SETUID"):
        command_step.run({"command": "true"}, ctx)
