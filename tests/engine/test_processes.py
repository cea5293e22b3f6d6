"""A run's processes are found and killed by the marker in their environment, and only they."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import wait_for
from jobport.engine import processes, reaper
from jobport.engine.processes import find_run_processes, kill_run_processes

REAPER = Path(reaper.__file__)


def alive(pid: int) -> bool:
    """Running, that is: neither gone nor a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@contextlib.contextmanager
def shell(script: str, **env: str) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """`sh -c script` in a session of its own; yields it and the pids the script echoed."""
    proc = subprocess.Popen(
        ["/bin/sh", "-c", script],
        env={"PATH": os.defpath, **env},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        pids = [int(proc.stdout.readline()) for _ in range(script.count("echo $!"))]
        # Until it execs, a child forked by sh carries sh's environment, not its own yet.
        wait_for(lambda: all(command_of(pid) == "sleep" for pid in pids), timeout=5)
        yield proc, pids
    finally:
        for pid in [proc.pid, *pids]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(5)


@pytest.fixture(params=["pidfd", "start time"])
def pinning(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of pinning a process: a pidfd, or (kernels before 5.3) its start time."""
    if request.param == "start time":
        monkeypatch.setattr(processes, "_pidfd_works", False)
    return str(request.param)


def test_a_run_s_processes_die_even_those_that_left_its_group_and_no_other_does(
    pinning: str,
) -> None:
    run, other = f"run-{uuid.uuid4().hex}", f"other-{uuid.uuid4().hex}"
    script = (
        "sleep 300 & echo $!; "  # the run's, in the step's group
        "setsid sleep 300 & echo $!; "  # the run's, in a session of its own
        f"JOBPORT_EXECUTION_ID={other} sleep 300 & echo $!; "  # another run's, same group
        "env -u JOBPORT_EXECUTION_ID sleep 300 & echo $!; "  # nobody's, same group
        "wait"
    )
    with shell(script, JOBPORT_EXECUTION_ID=run, JOBPORT_STEP="s") as (leader, pids):
        ours, escaped, theirs, nobodys = pids
        assert os.getpgid(escaped) != leader.pid
        assert os.getpgid(theirs) == os.getpgid(nobodys) == leader.pid
        assert find_run_processes(run) == sorted([leader.pid, ours, escaped])
        assert find_run_processes(run, "s") == sorted([leader.pid, ours, escaped])
        assert find_run_processes(run, "another step") == []

        started = time.monotonic()
        assert kill_run_processes(run) == []
        took = time.monotonic() - started

        assert not any(alive(pid) for pid in (leader.pid, ours, escaped))
        # Same process group number as the run's leader, but another marker or none.
        assert alive(theirs) and alive(nobodys)
        assert find_run_processes(run) == []
        assert took < 1.0


def test_a_step_s_processes_die_and_those_of_the_run_s_other_steps_do_not() -> None:
    run = f"run-{uuid.uuid4().hex}"
    script = "sleep 300 & echo $!; JOBPORT_STEP=second sleep 300 & echo $!; wait"
    with shell(script, JOBPORT_EXECUTION_ID=run, JOBPORT_STEP="first") as (leader, pids):
        first, second = pids
        assert kill_run_processes(run, "first") == []
        assert not alive(first) and not alive(leader.pid)
        assert alive(second)


def test_nothing_is_killed_for_a_run_that_has_no_process_left() -> None:
    other = f"other-{uuid.uuid4().hex}"
    with shell("sleep 300 & echo $!; wait", JOBPORT_EXECUTION_ID=other) as (leader, pids):
        assert kill_run_processes(f"run-{uuid.uuid4().hex}") == []
        assert alive(leader.pid) and alive(pids[0])


def reaper_for(worker_pid: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-S", str(REAPER), str(worker_pid)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={},
        start_new_session=True,
    )


def test_the_reaper_kills_the_processes_of_the_runs_still_going_when_its_pipe_closes() -> None:
    going, ended, other = (f"{n}-{uuid.uuid4().hex}" for n in ("going", "ended", "other"))
    script = (
        f"JOBPORT_EXECUTION_ID={going} setsid sleep 300 & echo $!; "
        f"JOBPORT_EXECUTION_ID={ended} sleep 300 & echo $!; "
        f"JOBPORT_EXECUTION_ID={other} sleep 300 & echo $!; "
        "wait"
    )
    with shell(script) as (_, (of_going, of_ended, of_other)):
        helper = reaper_for(os.getpid())
        assert helper.stdin is not None
        # Told of `other` by a step that ended: a later process with its marker is left be.
        helper.stdin.write(f"+{going}\n+{ended}\n+{going}\n-{going}\n-{ended}\n".encode())
        helper.stdin.flush()
        time.sleep(0.2)
        assert alive(of_going), "the reaper acted while its worker lived"
        helper.stdin.close()  # as when the worker dies
        assert helper.wait(10) == 0
        assert not alive(of_going)
        assert alive(of_ended) and alive(of_other)
        assert helper.stderr is not None
        assert going in helper.stderr.read().decode()


def test_the_reaper_acts_when_its_worker_dies_even_if_the_pipe_stays_open() -> None:
    run = f"run-{uuid.uuid4().hex}"
    # A stand-in worker that starts the reaper, reports a run, and dies; a child it forked
    # without exec keeps the pipe's write end open.
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            f"r = subprocess.Popen([sys.executable, '-I', '-S', {str(REAPER)!r}, "
            "str(os.getpid())], stdin=subprocess.PIPE, env={}, start_new_session=True)\n"
            f"r.stdin.write(b'+{run}\\n'); r.stdin.flush()\n"
            "child = os.fork()\n"
            "if child == 0:\n    time.sleep(30); os._exit(0)\n"
            "print(r.pid, child, flush=True); time.sleep(0.5); os._exit(9)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    reaper_pid, holder = map(int, worker.stdout.readline().split())
    try:
        with shell("sleep 300 & echo $!; wait", JOBPORT_EXECUTION_ID=run) as (leader, pids):
            worker.wait(10)
            assert alive(holder)
            wait_for(lambda: not alive(pids[0]) and not alive(leader.pid), timeout=5)
            wait_for(lambda: not alive(reaper_pid), timeout=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(holder, signal.SIGKILL)
